"""What stands between supervise and the runner: a cancel that kills an
ancestor rather than the parent (--parent-pid), and a reader of the
step's output that goes away (--cancel-on-hangup)."""
import fcntl
import os
import shlex
import signal
import subprocess
import time

import bb

SUP = bb.SUPERVISE
Q = shlex.quote


def load(path):
    return bb.read_status(path)


def wait_pid_file(path):
    return bb.wait_for(lambda: (bb.pids_in(path) or [None])[0],
                       what="pid file %s" % path)


def comm(pid):
    return bb.read("/proc/%d/comm" % pid).strip()


# A runner (here a Python process) runs a step as the string command
# `sh -c '...'`: dash does not exec the last command, so supervise's
# parent is that shell, and $PPID in it is the runner.
RUNNER = ("import subprocess, sys; "
          "subprocess.run(['sh', '-c', sys.argv[1]])")


def start_step(d, sup_args):
    """Starts runner -> sh -c -> supervise SUP_ARGS -- COMMAND (which
    writes its pid to d/cmd and sleeps).  Returns (runner, sh pid, front
    pid, COMMAND pid)."""
    line = ("%s %s -- sh -c 'echo $$ > %s; exec sleep 60' 2>%s; "
            "echo $? > %s" % (Q(SUP), " ".join(sup_args),
                              Q(os.path.join(d, "cmd")),
                              Q(os.path.join(d, "err")),
                              Q(os.path.join(d, "rc"))))
    runner = subprocess.Popen(["python3", "-c", RUNNER, line],
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL)
    sh = bb.wait_for(lambda: ([c for c in bb.children(runner.pid)
                               if comm(c) == "sh"] or [None])[0],
                     what="the step's shell")
    front = bb.wait_for(lambda: ([c for c in bb.children(sh)
                                  if comm(c) == "supervise"] or [None])[0],
                        what="supervise under the step's shell")
    cmd = wait_pid_file(os.path.join(d, "cmd"))
    return runner, sh, front, cmd


def test_parent_pid_ancestor_death_cancels_the_run():
    """The runner (an ancestor, not the parent) is SIGKILLed: nobody
    signals supervise and its parent shell lives on, reparented.
    --parent-pid=$PPID names the runner, whose death cancels the run:
    the tree is stopped, the teardown runs, exit 129, and the status file
    names the ancestor."""
    d = bb.tmpdir()
    st, once = os.path.join(d, "st.json"), os.path.join(d, "once")
    runner, sh, front, cmd = start_step(d, [
        "--parent-pid=$PPID", "--status-file=%s" % Q(st),
        "-T", Q("echo td >> %s" % once)])
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    rc = bb.wait_for(lambda: bb.read(os.path.join(d, "rc")).strip(),
                     what="the step to end")
    assert rc == "129", (rc, bb.read(os.path.join(d, "err")))
    bb.assert_gone([cmd])
    assert bb.read(once) == "td\n"
    err = bb.read(os.path.join(d, "err"))
    assert ("supervise: ancestor process %d died; stopping the run with "
            "SIGTERM\n" % runner.pid) in err, err
    rec = load(st)
    assert rec["reason"] == "parent-death", rec
    assert rec["cause"] == {"process": runner.pid, "ancestor": True}, rec
    assert rec["exit_status"] == 129, rec


def test_parent_pid_keeps_the_parent_watched():
    """Naming an ancestor adds a watch: the direct parent's death still
    cancels the run."""
    d = bb.tmpdir()
    st = os.path.join(d, "st.json")
    runner, sh, front, cmd = start_step(d, [
        "--parent-pid=$PPID", "--status-file=%s" % Q(st)])
    try:
        os.kill(sh, signal.SIGKILL)
        rc = bb.wait_for(lambda: not bb.alive(front), what="supervise to end")
        bb.assert_gone([cmd])
        rec = bb.wait_for(lambda: os.path.exists(st) and load(st))
        assert rec["reason"] == "parent-death", rec
        assert rec["cause"] == {"process": sh, "ancestor": False}, rec
    finally:
        runner.kill()
        runner.wait()


def test_parent_pid_ancestor_death_while_waiting_for_a_lock():
    """The ancestor dies while supervise waits for a lock: the wait ends,
    exit 129, COMMAND never started."""
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    fd = os.open(lk, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        line = ("%s --parent-pid=$PPID -l %s -- touch %s 2>%s; echo $? > %s"
                % (Q(SUP), Q(lk), Q(os.path.join(d, "ran")),
                   Q(os.path.join(d, "err")), Q(os.path.join(d, "rc"))))
        runner = subprocess.Popen(["python3", "-c", RUNNER, line],
                                  stdin=subprocess.DEVNULL)
        bb.wait_for(lambda: "waiting for lock" in bb.read(
            os.path.join(d, "err")), what="the wait for the lock")
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
        rc = bb.wait_for(lambda: bb.read(os.path.join(d, "rc")).strip(),
                         what="the step to end")
    finally:
        os.close(fd)
    assert rc == "129", (rc, bb.read(os.path.join(d, "err")))
    assert not os.path.exists(os.path.join(d, "ran"))
    assert ("supervise: ancestor process %d died while waiting for lock %s\n"
            % (runner.pid, lk)) in bb.read(os.path.join(d, "err"))


# ------------------------------------------------ nobody reads the output


def test_cancel_on_hangup_when_the_reader_goes():
    """The reader of supervise's stdout (or stderr) closes the pipe: with
    --cancel-on-hangup the run is cancelled (129, reason hangup, the
    stream named), the teardown runs; without it the run goes on."""
    for stream in ("stdout", "stderr"):
        d = bb.tmpdir()
        st, once = os.path.join(d, "st.json"), os.path.join(d, "once")
        errf = os.path.join(d, "err")
        kw = {"stdout": subprocess.PIPE} if stream == "stdout" else \
            {"stderr": subprocess.PIPE, "stdout": subprocess.DEVNULL}
        other = open(errf, "w") if stream == "stdout" else None
        if other:
            kw["stderr"] = other
        p = subprocess.Popen([SUP, "--cancel-on-hangup", "--status-file", st,
                              "-T", "echo td >> %s" % Q(once), "--", "sh",
                              "-c", "echo $$ > %s; exec sleep 60"
                              % Q(os.path.join(d, "cmd"))],
                             stdin=subprocess.DEVNULL, **kw)
        cmd = wait_pid_file(os.path.join(d, "cmd"))
        getattr(p, stream).close()
        rc = p.wait(timeout=60)
        if other:
            other.close()
        assert rc == 129, (stream, rc, bb.read(errf))
        bb.assert_gone([cmd])
        assert bb.read(once) == "td\n", stream
        rec = load(st)
        assert rec["reason"] == "hangup", rec
        assert rec["cause"] == {"stream": stream}, rec
        assert rec["exit_status"] == 129, rec
        assert rec["teardown"]["reason"] == "hangup", rec
        if stream == "stdout":
            assert bb.read(errf) == (
                "supervise: nobody reads standard output any more; stopping "
                "the run with SIGTERM\nsupervise: teardown started (reason: "
                "hangup)\n") + bb.read(errf).split("hangup)\n", 1)[1], \
                bb.read(errf)


def test_hangup_is_ignored_without_the_option():
    """`supervise ... | head -1` closes the pipe on purpose: without
    --cancel-on-hangup the run goes on to its end."""
    p = subprocess.Popen([SUP, "-t", "1", "--", "sh", "-c",
                          "echo one; exec sleep 30"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True)
    assert p.stdout.readline() == "one\n"
    p.stdout.close()
    rc = p.wait(timeout=60)
    assert rc == 124, (rc, p.stderr.read())


def test_cancel_on_hangup_while_waiting_for_a_lock():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    fd = os.open(lk, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    errf = os.path.join(d, "err")
    try:
        with open(errf, "w") as ef:
            p = subprocess.Popen([SUP, "--cancel-on-hangup", "-l", lk, "--",
                                  "touch", os.path.join(d, "ran")],
                                 stdout=subprocess.PIPE, stderr=ef,
                                 stdin=subprocess.DEVNULL)
        bb.wait_for(lambda: "waiting for lock" in bb.read(errf))
        p.stdout.close()
        rc = p.wait(timeout=60)
    finally:
        os.close(fd)
    assert rc == 129, (rc, bb.read(errf))
    assert not os.path.exists(os.path.join(d, "ran"))
    assert ("supervise: nobody reads standard output any more while waiting "
            "for lock %s\n" % lk) in bb.read(errf)


def voluntary_switches(pid):
    for line in bb.read("/proc/%d/status" % pid).splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return None


def test_watches_cost_no_wake_ups_while_idle():
    """With an ancestor watched and --cancel-on-hangup, an idle run does
    not wake supervise up: neither process switches in voluntarily."""
    p = subprocess.Popen([SUP, "--cancel-on-hangup",
                          "--parent-pid=%d" % os.getppid(), "--", "sh", "-c",
                          "exec sleep 60"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    try:
        sup = bb.supervisor_of(p.pid)
        bb.wait_for(lambda: [c for c in bb.children(sup)
                             if comm(c) == "sleep"])
        time.sleep(0.2)     # let both settle in poll()
        before = (voluntary_switches(p.pid), voluntary_switches(sup))
        time.sleep(1.0)
        after = (voluntary_switches(p.pid), voluntary_switches(sup))
        assert before == after, (before, after)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
