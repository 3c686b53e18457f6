"""Message details: one line per message, whatever the user gave."""
import os
import re
import shlex
import shutil
import signal
import subprocess

import bb
from runner_lib import (child_supervise, err_file, err_text, wait_line,
                        wait_status)

Q = shlex.quote
DUR = r"[0-9.]+(?:ns|us|ms|s|m|h)+"
# SYS_setsid by architecture: the supervisor calls it first thing.
SYS_SETSID = {"x86_64": 112, "aarch64": 157}


def stubborn(d):
    """COMMAND: one process (sh, then sleep) that ignores SIGTERM, so that a
    stop stays in its grace; its pid is in d/cmd."""
    return ["sh", "-c", "trap '' TERM; echo $$ > %s; exec sleep 1000"
            % Q(os.path.join(d, "cmd"))]


def wait_cmd(d):
    path = os.path.join(d, "cmd")
    return bb.wait_for(lambda: (bb.pids_in(path) or [None])[0],
                       what="COMMAND's pid")


def lines_of(d):
    return err_text(d).splitlines()


def cancelled_by_us():
    return ("supervise: cancelled by SIGTERM from pid %d; stopping the run "
            "with SIGTERM" % os.getpid())


def test_control_characters_in_a_quoted_value_stay_on_one_line():
    r = bb.run(["-t", "1\n2\x1b[31m", "true"])
    assert r.rc == 125, r
    assert r.err == "supervise: invalid duration '1?2?[31m'\n" + bb.TRY_HELP, r


def test_external_sigalrm_says_who_and_when():
    # COMMAND sends SIGALRM to the supervisor (its parent) after ~0.3 s.
    # "after" counts from when the supervisor noted COMMAND's start, which
    # may trail COMMAND's first instruction on a busy machine: 0.2 s is the
    # bound that leaves room for that and still fails a clock that starts
    # late or at the signal.
    r = bb.run(["--", "sh", "-c", "sleep 0.3; kill -ALRM $PPID; sleep 100"])
    assert r.rc == 124, r
    m = re.fullmatch(r"supervise: timed out by SIGALRM from pid (\d+) after "
                     r"([0-9.]+)(ms|s); stopping the run with SIGTERM\n", r.err)
    assert m, r
    after = float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
    assert after >= 0.2, r


# ------------------------------------------ the front's death, as the user sees it

def test_killed_supervise_is_named_by_its_pid_before_the_start():
    """supervise (the process the caller started) SIGKILLed before
    COMMAND started, while the supervisor is held in its setsid() by
    strace: the supervisor says so, by the pid the caller knows, and
    exits 137 without starting COMMAND."""
    if shutil.which("strace") is None:
        raise bb.Skip("strace is needed")
    nr = SYS_SETSID.get(os.uname().machine)
    if nr is None:
        raise bb.Skip("no setsid number for %s" % os.uname().machine)
    d = bb.tmpdir()
    marker = os.path.join(d, "ran")
    p = subprocess.Popen(
        ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=setsid",
         "-e", "inject=setsid:delay_enter=2000000:when=1",
         bb.SUPERVISE, "--", "touch", marker],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "")
                 + ":detect_leaks=0"))
    front = child_supervise(p.pid)

    def in_setsid():
        for c in bb.children(front):
            if bb.read("/proc/%d/syscall" % c).split(" ")[0] == str(nr):
                return c
        return None
    sup = bb.wait_for(in_setsid, what="the supervisor held in setsid")
    os.kill(front, signal.SIGKILL)
    _, err = p.communicate(timeout=60)
    assert wait_status(sup) == 137, err
    assert err == ("supervise: supervise (pid %d) was killed before the "
                   "command started\n" % front), err
    assert not os.path.exists(marker), "COMMAND ran"


def test_killed_supervise_in_the_grace_skips_it():
    """A runner's SIGTERM, then its SIGKILL of the process it started,
    while the stop waits out its grace: SIGKILL to the run at once, said
    with the pid the runner knows, and never the word "front"."""
    d = bb.tmpdir()
    with err_file(d) as ef:
        front = bb.start(["-k", "60", "--"] + stubborn(d),
                         stdout=subprocess.DEVNULL, stderr=ef)
    cmd = wait_cmd(d)
    sup = bb.supervisor_of(front.pid)
    os.kill(front.pid, signal.SIGTERM)
    wait_line(d, re.escape(cancelled_by_us()))
    front.kill()
    front.wait(timeout=30)
    assert wait_status(sup) == 143, err_text(d)
    bb.assert_gone([cmd])
    assert lines_of(d) == [
        cancelled_by_us(),
        "supervise: supervise (pid %d) was killed; sending SIGKILL to 1 "
        "process now" % front.pid,
    ], err_text(d)


def test_killed_supervise_during_the_teardown_lets_it_finish():
    d = bb.tmpdir()
    go = os.path.join(d, "go")
    td = ("echo $$ > %s; while [ ! -e %s ]; do sleep 0.05; done"
          % (Q(os.path.join(d, "td")), Q(go)))
    with err_file(d) as ef:
        front = bb.start(["-T", td, "--teardown-on=failure", "--",
                          "sh", "-c", "exit 3"],
                         stdout=subprocess.DEVNULL, stderr=ef)
    sup = bb.supervisor_of(front.pid)
    bb.wait_for(lambda: bb.pids_in(os.path.join(d, "td")),
                what="the teardown to start")
    front.kill()
    front.wait(timeout=30)
    wait_line(d, r"supervise: supervise \(pid %d\) was killed; the "
              r"teardown goes on" % front.pid)
    open(go, "w").close()
    assert wait_status(sup) == 3, err_text(d)
    got = lines_of(d)
    assert len(got) == 3 and \
        got[0] == "supervise: teardown started (reason: exit)" and \
        got[1] == "supervise: supervise (pid %d) was killed; the teardown " \
        "goes on" % front.pid and \
        re.fullmatch(r"supervise: teardown finished in %s \(exit 0\)" % DUR,
                     got[2]), err_text(d)


# ------------------------------------------------------- Ctrl-C, or not

def test_sigint_without_a_terminal_gets_no_ctrl_c_hint():
    """A runner's SIGINT (GitHub Actions sends one first) with stderr a
    pipe: the cancel, and no word of Ctrl-C (test_jobs.py has the
    terminal); a second SIGINT still skips the grace."""
    d = bb.tmpdir()
    with err_file(d) as ef:
        p = bb.start(["-k", "60", "--"] + stubborn(d),
                     stdout=subprocess.DEVNULL, stderr=ef)
    cmd = wait_cmd(d)
    os.kill(p.pid, signal.SIGINT)
    cancelled = ("supervise: cancelled by SIGINT from pid %d; stopping the "
                 "run with SIGTERM" % os.getpid())
    wait_line(d, re.escape(cancelled))
    os.kill(p.pid, signal.SIGINT)
    assert p.wait(timeout=30) == 130, err_text(d)
    bb.assert_gone([cmd])
    assert lines_of(d) == [
        cancelled,
        "supervise: SIGINT again; sending SIGKILL to 1 process now",
    ], err_text(d)


# ------------------------------------ a death or a hangup while stopping

def _parent_dies_while_stopping(ancestor):
    """supervise under sh (under another sh, named by --parent-pid, with
    ancestor): cancelled, and while the grace runs, that shell dies."""
    d = bb.tmpdir()
    status = os.path.join(d, "status")
    line = "%s %s-k 60 -- %s 2>%s; echo $? > %s" % (
        Q(bb.SUPERVISE), "--parent-pid=$PPID " if ancestor else "",
        " ".join(Q(a) for a in stubborn(d)), Q(os.path.join(d, "err")),
        Q(status))
    if ancestor:
        line = "sh -c %s; echo" % Q(line)
    top = subprocess.Popen(["sh", "-c", line], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL)
    if ancestor:
        parent = bb.wait_for(lambda: (bb.children(top.pid) or [None])[0])
    else:
        parent = top.pid
    front = child_supervise(parent)
    cmd = wait_cmd(d)
    os.kill(front, signal.SIGTERM)
    wait_line(d, re.escape(cancelled_by_us()))
    top.kill()
    top.wait(timeout=30)
    which = "ancestor" if ancestor else "parent"
    said = "supervise: %s process %d died; already stopping the run" % (
        which, top.pid)
    wait_line(d, re.escape(said))
    os.kill(front, signal.SIGTERM)
    if ancestor:
        # The shell in between lives on, reaps supervise and says how it
        # ended; then it ends too, reparented to us.
        assert wait_status(parent) == 0, err_text(d)
        assert bb.read(status) == "143\n", err_text(d)
    else:
        assert wait_status(front) == 143, err_text(d)
    bb.assert_gone([cmd])
    assert lines_of(d) == [
        cancelled_by_us(), said,
        "supervise: SIGTERM again; sending SIGKILL to 1 process now",
    ], err_text(d)


def test_parent_death_while_stopping_names_the_parent():
    _parent_dies_while_stopping(False)


def test_ancestor_death_while_stopping_names_the_ancestor():
    _parent_dies_while_stopping(True)


def test_hangup_while_stopping_and_during_the_teardown():
    """--cancel-on-hangup: nobody reads standard output any more while
    the run is being stopped, or while its teardown runs; said as what
    happened, not as a SIGHUP."""
    d = bb.tmpdir()
    with err_file(d) as ef:
        p = bb.start(["--cancel-on-hangup", "-k", "60", "--"] + stubborn(d),
                     stdout=subprocess.PIPE, stderr=ef)
    cmd = wait_cmd(d)
    os.kill(p.pid, signal.SIGTERM)
    wait_line(d, re.escape(cancelled_by_us()))
    p.stdout.close()
    said = ("supervise: nobody reads standard output any more; already "
            "stopping the run")
    wait_line(d, re.escape(said))
    os.kill(p.pid, signal.SIGTERM)
    assert p.wait(timeout=30) == 143, err_text(d)
    bb.assert_gone([cmd])
    assert lines_of(d) == [
        cancelled_by_us(), said,
        "supervise: SIGTERM again; sending SIGKILL to 1 process now",
    ], err_text(d)

    d = bb.tmpdir()
    go = os.path.join(d, "go")
    td = ("echo $$ > %s; while [ ! -e %s ]; do sleep 0.05; done"
          % (Q(os.path.join(d, "td")), Q(go)))
    with err_file(d) as ef:
        p = bb.start(["--cancel-on-hangup", "-T", td, "--teardown-on=failure",
                      "--", "sh", "-c", "exit 3"],
                     stdout=subprocess.PIPE, stderr=ef)
    bb.wait_for(lambda: bb.pids_in(os.path.join(d, "td")),
                what="the teardown to start")
    p.stdout.close()
    said = ("supervise: nobody reads standard output any more; the "
            "teardown goes on")
    wait_line(d, re.escape(said))
    open(go, "w").close()
    assert p.wait(timeout=30) == 3, err_text(d)
    got = lines_of(d)
    assert len(got) == 3 and \
        got[0] == "supervise: teardown started (reason: exit)" and \
        got[1] == said and \
        re.fullmatch(r"supervise: teardown finished in %s \(exit 0\)" % DUR,
                     got[2]), err_text(d)


# ------------------------------------------------ how COMMAND ended, with -v

def _verbose_end(script):
    r = bb.run(["-v", "--", "sh", "-c", script])
    ends = [x for x in r.err.splitlines()
            if x.startswith("supervise: command ")]
    assert len(ends) == 1, r
    return r, ends[0]


def test_verbose_says_killed_by_a_signal():
    r, end = _verbose_end("kill -TERM $$")
    assert r.rc == 143, r
    assert re.fullmatch(r"supervise: command killed by SIGTERM after %s"
                        % DUR, end), r


def test_verbose_says_exited_for_a_real_exit_of_143():
    """A shell that reports its child's SIGTERM as its own exit 143 exited:
    what waitid() says, not what the number suggests."""
    for script in ("exit 143", "sleep 100 & kill $!; wait $!"):
        r, end = _verbose_end(script)
        assert r.rc == 143, r
        assert re.fullmatch(r"supervise: command exited with status 143 "
                            r"after %s" % DUR, end), (script, r)


def test_verbose_says_core_dumped_as_the_kernel_does():
    """A core dump is mentioned exactly when the kernel reports one for
    the same COMMAND run directly (that depends on core_pattern)."""
    d = bb.tmpdir()
    script = "ulimit -c unlimited 2>/dev/null; kill -SEGV $$"
    pid = os.spawnvp(os.P_NOWAIT, "sh", ["sh", "-c", "cd %s; %s" % (Q(d), script)])
    _, ws = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(ws) and os.WTERMSIG(ws) == signal.SIGSEGV, ws
    r = bb.run(["-v", "--", "sh", "-c", script], cwd=d)
    assert r.rc == 139, r
    ends = [x for x in r.err.splitlines()
            if x.startswith("supervise: command ")]
    assert len(ends) == 1 and re.fullmatch(
        r"supervise: command killed by SIGSEGV%s after %s"
        % (r" \(core dumped\)" if os.WCOREDUMP(ws) else "", DUR),
        ends[0]), (os.WCOREDUMP(ws), r)
    shutil.rmtree(d)


# ---------------------------------------- a duration where COMMAND belongs

def test_duration_as_command_gets_a_hint():
    d = bb.tmpdir()
    bb.check_cases([
        ("minutes and a script", ["30m", "./deploy.sh"],
         "supervise: cannot run '30m': No such file or directory\n"
         "supervise: did you mean 'supervise -t 30m ./deploy.sh'?\n"),
        ("seconds, arguments", ["10", "make", "-j4", "test"],
         "supervise: cannot run '10': No such file or directory\n"
         "supervise: did you mean 'supervise -t 10 make ...'?\n"),
        ("fraction, after options", ["-k", "5", "--", "1.5h"],
         "supervise: cannot run '1.5h': No such file or directory\n"
         "supervise: did you mean 'supervise -t 1.5h COMMAND'?\n"),
        ("not a duration", ["30x", "cmd"],
         "supervise: cannot run '30x': No such file or directory\n"),
    ], lambda args, err: _check_run(args, d, 127, err))
    shutil.rmtree(d)


def _check_run(args, cwd, rc, err, env=None):
    r = bb.run(args, cwd=cwd, env=env)
    assert (r.rc, r.err) == (rc, err), r


def test_program_named_like_a_duration_runs():
    """A real program called "10" on PATH runs; one that is there but
    cannot be run gets no hint either."""
    d = bb.tmpdir()
    prog = os.path.join(d, "10")
    with open(prog, "w") as f:
        f.write("#!/bin/sh\necho ten \"$@\"\n")
    os.chmod(prog, 0o755)
    env = dict(os.environ, PATH=d + ":" + os.environ.get("PATH", ""))
    r = bb.run(["10", "x"], env=env)
    assert (r.rc, r.out, r.err) == (0, "ten x\n", ""), r
    os.chmod(prog, 0o644)
    _check_run(["10", "x"], d, 126,
               "supervise: cannot run '10': Permission denied\n", env=env)
    shutil.rmtree(d)
