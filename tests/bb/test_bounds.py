"""No wait without a bound: cases where a signal or a reader that
supervise relied on is taken away, and supervise must still end the run
within its documented bound."""
import fcntl
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time

import bb
from runner_lib import helper

SUP = bb.SUPERVISE
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def need_tool(name):
    if shutil.which(name) is None:
        raise bb.Skip("%s is not installed" % name)


def stage(*paths, mode=0o755):
    """Copies of paths in a fresh directory that every user can reach (the
    checkout may be private); returns the directory."""
    d = bb.tmpdir()
    os.chmod(d, mode)
    for p in paths:
        shutil.copy2(p, d)
    return d


# ------------------------------------------------ the supervisor is lost


def test_front_stops_a_command_that_outlived_the_supervisor():
    """COMMAND changed credentials (setpriv), so the kernel cleared its
    parent-death signal: when the supervisor is SIGKILLed, COMMAND lives
    on.  The front takes the run over: it stops COMMAND, runs the teardown
    once and exits, answering a SIGTERM meanwhile, instead of waiting for
    COMMAND to end by itself."""
    bb.require_root()
    need_tool("setpriv")
    d = bb.tmpdir()
    once, err = os.path.join(d, "once"), os.path.join(d, "err")
    with open(err, "w") as ef:
        p = bb.start(["-k", "5", "-T", "echo td >> %s" % once, "--"] +
                     AS_NOBODY + ["--", "sleep", "60"], stderr=ef)
    sup = bb.supervisor_of(p.pid)
    cmd = bb.wait_for(lambda: [c for c in bb.children(sup)
                               if comm(c) == "sleep"],
                      what="COMMAND to run as nobody")[0]
    os.kill(sup, signal.SIGKILL)
    bb.wait_for(lambda: not bb.alive(sup), what="the supervisor to die")
    bb.try_kill(p.pid, signal.SIGTERM) if hasattr(bb, "try_kill") else \
        os.kill(p.pid, signal.SIGTERM)
    try:
        rc = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        raise AssertionError("the front waited for COMMAND: %r" % bb.read(err))
    assert rc == 125, (rc, bb.read(err))
    bb.assert_gone([cmd])
    assert bb.read(once) == "td\n", bb.read(once)
    assert ("supervise: supervisor process %d died (SIGKILL); stopping 1 "
            "orphaned process with SIGTERM\n" % sup) in bb.read(err), bb.read(err)


# ------------------------------------------------ a process we may not signal


def test_process_that_refuses_signals_is_given_up_on():
    """An unprivileged supervise whose COMMAND became root may not signal
    it.  The refusal is reported once, the stop gives up on it when
    SIGKILL is due, and the exit status (122) and the status file say so;
    supervise does not re-sweep for as long as that process lives."""
    bb.require_root()
    need_tool("setpriv")
    prog = stage(SUP, helper("become_root"))
    os.chmod(os.path.join(prog, "become_root"), 0o4755)
    work = bb.tmpdir()
    os.chmod(work, 0o777)
    st, pidf = os.path.join(work, "st.json"), os.path.join(work, "pid")
    errf = os.path.join(work, "err")
    with open(errf, "w") as ef:
        # The root process keeps any pipe open: stderr goes to a file.
        p = subprocess.Popen(AS_NOBODY + [
            os.path.join(prog, "supervise"), "-t", "0.5", "-k", "1",
            "--status-file", st, "--",
            os.path.join(prog, "become_root"), pidf],
            stdout=subprocess.DEVNULL, stderr=ef)
    try:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("supervise never gave up: %r" % bb.read(errf))
        err = bb.read(errf)
    finally:
        for pid in bb.pids_in(pidf):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    root_pid = bb.pids_in(pidf)[0]
    assert p.returncode == 122, (p.returncode, err)
    lines = err.splitlines()
    assert "supervise: timed out after 500ms; stopping the run with SIGTERM" \
        in lines, err
    refusal = ("supervise: cannot stop process %d (become_root): Operation "
               "not permitted; giving up on it when the grace is over"
               % root_pid)
    assert lines.count(refusal) == 1, err
    assert "supervise: gave up on 1 process that could not be stopped" in \
        lines, err
    rec = bb.read_status(st)
    assert rec["reason"] == "timeout", rec
    assert rec["exit_status"] == 122, rec
    assert rec["stop"]["unstoppable"] == 1, rec


# ------------------------------------------------ the teardown's cleanup


def test_teardown_cleanup_spares_inherited_children():
    """supervise exec'd by a shell that has a background job inherits that
    job as a child.  The run's stop leaves it alone, and so does the
    teardown's cleanup of its own leftovers."""
    d = bb.tmpdir()
    pf = os.path.join(d, "bg")
    script = ("sleep 60 >/dev/null 2>&1 & echo $! > %s; exec %s --foreground "
              "--teardown-on=always -T 'sleep 0.1 &' -- true" % (pf, SUP))
    r = subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r
    bg = bb.pids_in(pf)[0]
    try:
        assert bb.alive(bg), "the inherited child was stopped: %r" % r.stderr
    finally:
        os.kill(bg, signal.SIGKILL)
    lines = r.stderr.splitlines()
    assert len(lines) == 2 and lines[0] == \
        "supervise: teardown started (reason: exit)" and \
        lines[1].startswith("supervise: teardown finished in "), r.stderr


# ------------------------------------------------ signals from the start

# pipe2, which supervise calls while it prepares the teardown (after its
# signals are set up), by architecture.
SYS_PIPE2 = {"x86_64": 293, "aarch64": 59}


def test_signal_during_setup_waits_for_the_loop():
    """A SIGTERM that arrives while supervise is still preparing the run
    (held there by strace's delay on pipe2, deterministically) must not
    kill it with the default action: it is read by the loop, and the run
    ends as cancelled, with its status file."""
    need_tool("strace")
    nr = SYS_PIPE2.get(os.uname().machine)
    if nr is None:
        raise bb.Skip("no pipe2 number for %s" % os.uname().machine)
    d = bb.tmpdir()
    st = os.path.join(d, "st.json")
    p = subprocess.Popen(
        ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=pipe2",
         "-e", "inject=pipe2:delay_enter=3000000:when=1",
         SUP, "--status-file", st, "-T", "true", "--", "sleep", "30"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        # LeakSanitizer cannot work under ptrace (make asan).
        env=dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "")
                 + ":detect_leaks=0"))

    def in_pipe2():
        for c in bb.children(p.pid):
            if bb.read("/proc/%d/syscall" % c).split(" ")[0] == str(nr):
                return c
        return None
    sup = bb.wait_for(in_pipe2, what="supervise to be held in pipe2")
    os.kill(sup, signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143, (p.returncode, err)
    rec = bb.read_status(st)
    assert rec["reason"] == "cancel" and rec["signal"] == "SIGTERM", rec
    assert rec["exit_status"] == 143, rec


# ------------------------------------------------ two names, one lock


def test_two_names_of_one_lock_file_are_one_lock():
    """A hard link, a path through a symbolic link to the directory and
    './x' next to 'x' all name one file: supervise takes it once and
    never waits for a lock it holds itself."""
    d = bb.tmpdir()
    a = os.path.join(d, "a.lock")
    open(a, "w").close()
    os.link(a, os.path.join(d, "hard.lock"))
    os.symlink(d, os.path.join(d, "link"))
    cases = {
        "hard link": [a, os.path.join(d, "hard.lock")],
        "symlinked directory": [a, os.path.join(d, "link", "a.lock")],
        "./x and x": ["a.lock", "./a.lock"],
    }
    for name, paths in cases.items():
        args = ["-w", "2"]
        for path in paths:
            args += ["-l", path]
        t0 = time.monotonic()
        r = bb.run(args + ["--", "true"], cwd=d)
        assert r.rc == 0 and r.err == "", (name, r)
        assert time.monotonic() - t0 < 2, (name, "waited for itself")


def test_bind_mounted_lock_directory_is_one_lock():
    """The same directory bind-mounted at a second place: one lock."""
    bb.require_root()
    need_tool("unshare")
    d = bb.tmpdir()
    one, two = os.path.join(d, "one"), os.path.join(d, "two")
    os.mkdir(one)
    os.mkdir(two)
    script = ("mount --bind %s %s && exec %s -w 2 -l %s/x -l %s/x -- true"
              % (one, two, SUP, one, two))
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh",
                        "-c", script], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0 and "mount" in r.stderr and "supervise" not in \
            r.stderr:
        raise bb.Skip("cannot bind-mount here: %s" % r.stderr.strip())
    assert r.returncode == 0 and r.stderr == "", r


# ------------------------------------------------ nobody reads stderr


def full_pipe():
    """A pipe whose buffer is full and whose reader never reads: a runner
    that stopped reading the step's log.  Returns (read end, write end);
    the write end is blocking, as a runner's would be."""
    r, w = os.pipe()
    fl = fcntl.fcntl(w, fcntl.F_GETFL)
    fcntl.fcntl(w, fcntl.F_SETFL, fl | os.O_NONBLOCK)
    try:
        while True:
            os.write(w, b"x" * 4096)
    except BlockingIOError:
        pass
    fcntl.fcntl(w, fcntl.F_SETFL, fl)
    return r, w


def test_full_stderr_never_stalls_the_run():
    """stderr is a full pipe that nobody reads.  supervise's messages and
    the teardown's output are dropped, never waited for: the timeout, the
    stop and the teardown happen on time, and the status file counts the
    dropped bytes."""
    d = bb.tmpdir()
    st = os.path.join(d, "st.json")
    r, w = full_pipe()
    try:
        p = subprocess.Popen(
            [SUP, "-v", "-t", "0.2", "-k", "1", "--status-file", st,
             "-T", "head -c 200000 /dev/zero", "--", "sleep", "30"],
            stdout=subprocess.DEVNULL, stderr=w)
        os.close(w)
        try:
            rc = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("supervise waited for its stderr")
    finally:
        os.close(r)
    assert rc == 124, rc
    rec = bb.read_status(st)
    assert rec["reason"] == "timeout", rec
    assert rec["teardown"]["exit"] == 0, rec
    assert rec["output_dropped_bytes"] >= 200000, rec
