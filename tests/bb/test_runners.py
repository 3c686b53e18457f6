"""How real CI runners end a step (see /work/shared/FACTS.md), emulated:
whatever the runner does, the run under supervise must be stopped with
nothing left behind, with the status and message of the spec where
supervise's status can be observed at all.

Where a runner kills the shell that runs supervise, supervise is reparented
to the test process (a child subreaper), which reads its status with
waitpid().
"""
import os
import pty
import re
import select
import shlex
import signal
import subprocess
import threading
import time

import bb
from runner_lib import (assert_line, assert_tree_alive, child_supervise,
                        err_file, err_text, helper, tree_pids, tree_script,
                        wait_line, wait_status)

SUP = shlex.quote(bb.SUPERVISE)
# COMMAND that waits until the test creates file GO, then writes "done" to
# MARKER: "% (GO, MARKER)" (temp paths: no quotes in them).
_AWAIT_GO = "while [ ! -e '%s' ]; do sleep 0.05; done; echo done > '%s'"


def _shell_running_supervise(shell, d, opts, script, **kw):
    """shell -c 'supervise OPTS -- sh -c SCRIPT 2>d/err; echo $? >d/status'
    (a second command, so the shell cannot exec supervise: it stays the
    parent, supervise its foreground child)."""
    line = "%s %s -- sh -c %s 2>%s; echo $? > %s" % (
        SUP, opts, shlex.quote(script), shlex.quote(os.path.join(d, "err")),
        shlex.quote(os.path.join(d, "status")))
    return subprocess.Popen([shell, "-c", line], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, **kw)


# 1. Drone exec runner (and Woodpecker local, older): SIGKILL to the step's
#    /bin/sh pid only.
def test_runners_drone_sigkill_to_shell():
    d = bb.tmpdir()
    sh = _shell_running_supervise("sh", d, "-k 1", tree_script(d))
    pids = tree_pids(d)
    front = child_supervise(sh.pid)
    sup = bb.supervisor_of(front)
    assert_tree_alive(pids)
    os.kill(sh.pid, signal.SIGKILL)
    assert sh.wait(timeout=30) == -signal.SIGKILL
    # The front is now ours (subreaper): its status is observable.
    rc = wait_status(front)
    bb.assert_gone(pids + [sup])
    assert rc == 129, (rc, err_text(d))
    assert_line(d, r"supervise: parent process %d died; stopping the run with SIGTERM" % sh.pid)
    assert bb.read(os.path.join(d, "status")) == "", "the killed shell cannot record"


# 1b. The same, the parent being a Python process that started supervise
#     with subprocess.Popen and then ends with os._exit().
def test_runners_python_parent_exits():
    d = bb.tmpdir()
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    mid = os.fork()
    if mid == 0:
        try:
            os.close(r)
            os.close(go_w)
            with err_file(d) as ef:
                p = subprocess.Popen([bb.SUPERVISE, "-k", "1", "--", "sh", "-c", tree_script(d)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=ef)
            os.write(w, b"%d\n" % p.pid)
            os.read(go_r, 1)
        finally:
            os._exit(3)
    os.close(w)
    os.close(go_r)
    front = int(os.read(r, 64).split()[0])
    os.close(r)
    pids = tree_pids(d)
    sup = bb.supervisor_of(front)
    assert_tree_alive(pids)
    os.close(go_w)            # the intermediate parent exits now
    assert wait_status(mid) == 3
    rc = wait_status(front)
    bb.assert_gone(pids + [sup])
    assert rc == 129, (rc, err_text(d))
    assert_line(d, r"supervise: parent process %d died; stopping the run with SIGTERM" % mid)


# 2. Woodpecker local >= 3.15: the step shell in its own process group, the
#    whole group SIGKILLed at once (the front included).
def test_runners_woodpecker_group_sigkill():
    d = bb.tmpdir()
    sh = _shell_running_supervise("sh", d, "-k 1", tree_script(d), process_group=0)
    pids = tree_pids(d)
    front = child_supervise(sh.pid)
    sup = bb.supervisor_of(front)
    assert os.getpgid(front) == sh.pid
    assert_tree_alive(pids)
    os.killpg(sh.pid, signal.SIGKILL)
    assert sh.wait(timeout=30) == -signal.SIGKILL
    # Killed with the shell (which may have reaped it as it died).
    bb.assert_gone([front])
    # The supervisor survived the group SIGKILL and stops the run.
    rc = wait_status(sup)
    bb.assert_gone(pids)
    assert rc == 128 + signal.SIGKILL, (rc, err_text(d))
    assert_line(d, r"supervise: supervise \(pid %d\) was killed; stopping the run with SIGTERM" % front)


# 3. GitHub Actions on a host (and older Woodpecker local): SIGINT to the
#    step's bash pid only, then SIGTERM, then SIGKILL (delays shortened).
def test_runners_github_sigint_sigterm_sigkill_to_bash():
    d = bb.tmpdir()
    bash = _shell_running_supervise("bash", d, "-k 1", tree_script(d))
    pids = tree_pids(d)
    front = child_supervise(bash.pid)
    sup = bb.supervisor_of(front)
    assert_tree_alive(pids)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        bb.try_kill(bash, sig)    # bash may have ended at the one before
        time.sleep(0.5)
    rcb = bash.wait(timeout=30)
    assert rcb in (-signal.SIGTERM, -signal.SIGKILL), rcb
    rc = wait_status(front)
    bb.assert_gone(pids + [sup])
    assert rc == 129, (rc, err_text(d))
    assert_line(d, r"supervise: parent process %d died; stopping the run with SIGTERM" % bash.pid)


# 4. GitLab shell executor: bash with `trap 'exit 1' TERM`, in a process
#    group of its own, runs supervise in the foreground; SIGTERM to the group.
#    bash defers the trap until supervise exits: supervise must hear the
#    group's SIGTERM and finish the cancel at once (not wait for the group
#    SIGKILL ten minutes later).
def test_runners_gitlab_group_sigterm():
    d = bb.tmpdir()
    q = lambda n: shlex.quote(os.path.join(d, n))  # noqa: E731
    line = ("trap 'echo $? > %s; exit 1' TERM\n"
            "%s -k 1 -- sh -c %s 2>%s\n"
            "echo after > %s\n") % (q("status"), SUP, shlex.quote(tree_script(d)),
                                    q("err"), q("after"))
    bash = subprocess.Popen(["bash", "-c", line], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, process_group=0)
    pids = tree_pids(d)
    front = child_supervise(bash.pid)
    sup = bb.supervisor_of(front)
    assert_tree_alive(pids)
    os.killpg(bash.pid, signal.SIGTERM)
    try:
        rcb = bash.wait(timeout=30)
    except subprocess.TimeoutExpired:
        bb.try_killpg(bash.pid, signal.SIGKILL)
        bash.wait()
        raise AssertionError("bash still waits 30s after the group SIGTERM; stderr: %r"
                             % err_text(d))
    bb.assert_gone(pids + [front, sup])
    assert rcb == 1, rcb
    assert bb.read(os.path.join(d, "status")).strip() == "143", \
        (bb.read(os.path.join(d, "status")), err_text(d))
    assert bb.read(os.path.join(d, "after")) == ""
    assert_line(d, r"supervise: cancelled by SIGTERM from pid %d; stopping the run with SIGTERM"
                % os.getpid())


# 5. The supervisor process SIGKILLed: the front stops the orphaned tree.
def test_runners_supervisor_sigkilled():
    d = bb.tmpdir()
    with err_file(d) as ef:
        front = bb.start(["-k", "1", "--", "sh", "-c", tree_script(d)],
                         stdout=subprocess.DEVNULL, stderr=ef)
    pids = tree_pids(d)
    sup = bb.supervisor_of(front.pid)
    assert_tree_alive(pids)
    os.kill(sup, signal.SIGKILL)
    rc = front.wait(timeout=30)
    bb.assert_gone(pids + [sup])
    assert rc == 125, (rc, err_text(d))
    m = assert_line(d, r"supervise: supervisor process %d died \(SIGKILL\); stopping (\d+) "
                    r"orphaned process(es)? with SIGTERM" % sup)
    # bg, sid and ign at least were alive and orphaned to the front.
    assert int(m.group(1)) >= 3, m.group(0)


# 6. The front process SIGKILLed alone: the supervisor stops the run.
def test_runners_front_sigkilled():
    d = bb.tmpdir()
    with err_file(d) as ef:
        front = bb.start(["-k", "1", "--", "sh", "-c", tree_script(d)],
                         stdout=subprocess.DEVNULL, stderr=ef)
    pids = tree_pids(d)
    sup = bb.supervisor_of(front.pid)
    assert_tree_alive(pids)
    front.kill()
    assert front.wait(timeout=30) == -signal.SIGKILL
    rc = wait_status(sup)
    bb.assert_gone(pids)
    assert rc == 137, (rc, err_text(d))
    assert_line(d, r"supervise: supervise \(pid %d\) was killed; stopping the run with SIGTERM" % front.pid)


# 7. The parent *thread* that started supervise ends, the parent process
#    lives on: not a parent death.
def test_runners_parent_thread_ends():
    d = bb.tmpdir()
    marker = os.path.join(d, "marker")
    go = os.path.join(d, "go")
    box = {}

    def starter():
        with err_file(d) as ef:
            box["p"] = bb.start(["-v", "--", "sh", "-c", _AWAIT_GO % (go, marker)],
                                stdout=subprocess.DEVNULL, stderr=ef)
        # Until COMMAND runs, the front has armed its parent-death signal.
        wait_line(d, r"supervise: started 'sh' as pid \d+")

    t = threading.Thread(target=starter)
    t.start()
    t.join()
    p = box["p"]
    wait_line(d, r"supervise: a thread of parent process %d ended; the process lives on"
              % os.getpid())
    time.sleep(0.5)
    assert p.poll() is None, (p.returncode, err_text(d))
    assert bb.read(marker) == ""
    open(go, "w").close()     # COMMAND completes normally now
    rc = p.wait(timeout=60)
    assert rc == 0, (rc, err_text(d))
    assert bb.read(marker) == "done\n", err_text(d)
    assert "died" not in err_text(d), err_text(d)
    assert "stopping" not in err_text(d), err_text(d)


# 8. The parent dies right after starting supervise (--parent-pid names it):
#    before, during or after supervise's start, it is a parent death.
@bb.time_limit(300)
def test_runners_parent_dies_at_once():
    orphan = helper("runner_orphan")
    d = bb.tmpdir()
    for i in range(50):
        # At once, or after 0.6 .. 14.4 ms: before, during and after the start.
        delay = 0 if i % 2 == 0 else (i // 2) * 600
        pf = os.path.join(d, "pids%d" % i)
        ef_path = os.path.join(d, "err%d" % i)
        with open(ef_path, "w") as ef:
            mid = subprocess.Popen(
                [orphan, str(delay), bb.SUPERVISE, "-k", "1", "--parent-pid=%PARENT%", "--",
                 "sh", "-c", "echo $$ >> %s; exec sleep 100" % shlex.quote(pf)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=ef)
            front = int(mid.stdout.readline())     # not to EOF: supervise holds it
            mid.stdout.close()
            assert mid.wait(timeout=30) == 0
        rc = wait_status(front)
        err = bb.read(ef_path)
        ctx = "iteration %d (delay %dus): rc %r, stderr %r" % (i, delay, rc, err)
        assert rc == 129, ctx
        assert re.fullmatch(r"supervise: parent process %d died( before the command started|"
                            r"; stopping the run with SIGTERM)\n" % mid.pid, err), ctx
        cmd = bb.pids_in(pf)
        if "before the command started" in err:
            assert cmd == [], ctx
        bb.assert_gone(cmd)
        bb.wait_for(lambda: not bb.descendants(), timeout=30,
                    what="nothing left after %s: %s" % (ctx, bb.descendants()))
        bb.reap()


# 9. --parent-pid naming a live process that is not an ancestor: refused.
def test_runners_parent_pid_not_an_ancestor():
    d = bb.tmpdir()
    marker = os.path.join(d, "marker")
    other = subprocess.Popen(["sleep", "60"])   # alive, a sibling
    try:
        r = bb.run(["--parent-pid=%d" % other.pid, "--", "sh", "-c",
                    "echo started > %s" % shlex.quote(marker)], timeout=30)
    finally:
        other.kill()
        other.wait()
    assert r.rc == 125, r
    assert r.err == ("supervise: --parent-pid: process %d is not an ancestor "
                     "of supervise\n" % other.pid), r
    assert not os.path.exists(marker), "COMMAND was started"
    # A process that has died: as if the parent had died, 129.
    dead = bb.dead_pid()
    r = bb.run(["--parent-pid=%d" % dead, "--", "sh", "-c",
                "echo started > %s" % shlex.quote(marker)], timeout=30)
    assert r.rc == 129, r
    assert r.err == ("supervise: parent process %d died before the command "
                     "started\n" % dead), r
    assert not os.path.exists(marker), "COMMAND was started"


# 10. --ignore-parent-death: the parent SIGKILLed, the run goes on.
def test_runners_ignore_parent_death():
    d = bb.tmpdir()
    q = lambda n: shlex.quote(os.path.join(d, n))  # noqa: E731
    script = "echo $$ > %s; " % q("cmd") + _AWAIT_GO % (
        os.path.join(d, "go"), os.path.join(d, "marker"))
    sh = _shell_running_supervise("sh", d, "--ignore-parent-death", script)
    cmd = bb.wait_for(lambda: bb.pids_in(os.path.join(d, "cmd")), what="COMMAND to start")
    front = child_supervise(sh.pid)
    os.kill(sh.pid, signal.SIGKILL)
    assert sh.wait(timeout=30) == -signal.SIGKILL
    time.sleep(0.5)
    assert bb.alive(cmd[0]), "COMMAND stopped after the parent died: %r" % err_text(d)
    assert bb.alive(front)
    open(os.path.join(d, "go"), "w").close()     # COMMAND completes normally now
    rc = wait_status(front, timeout=60)
    assert rc == 0, (rc, err_text(d))
    assert bb.read(os.path.join(d, "marker")) == "done\n"
    assert err_text(d) == ""


class _Pty:
    """supervise ARGS on a new pseudo-terminal, in its foreground process
    group (pty.fork: setsid + controlling terminal); stderr to d/err."""

    def __init__(self, d, args):
        self.buf = b""
        ef = os.open(os.path.join(d, "err"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.dup2(ef, 2)
                os.execv(bb.SUPERVISE, [bb.SUPERVISE] + list(args))
            finally:
                os._exit(127)
        os.close(ef)
        self.pid, self.fd = pid, fd

    def drain(self):
        while select.select([self.fd], [], [], 0)[0]:
            try:
                data = os.read(self.fd, 4096)
            except OSError:       # EIO: no slave end open any more
                return
            if not data:
                return
            self.buf += data

    def wait_output(self, s, timeout=30):
        def seen():
            self.drain()
            return s in self.buf
        bb.wait_for(seen, timeout=timeout, what="%r on the terminal (have %r)" % (s, self.buf))

    def wait(self, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            got, st = os.waitpid(self.pid, os.WNOHANG)
            if got == self.pid:
                self.drain()
                os.close(self.fd)
                return os.waitstatus_to_exitcode(st)
            if time.monotonic() > deadline:
                raise AssertionError("supervise on the terminal did not exit; output %r"
                                     % self.buf)
            time.sleep(0.01)


# 11. Ctrl-C under a pseudo-terminal.
def test_runners_pty_ctrl_c():
    d = bb.tmpdir()
    t = _Pty(d, ["-k", "1", "--", "sh", "-c", tree_script(d)])
    pids = tree_pids(d)
    sup = bb.supervisor_of(t.pid)
    assert os.tcgetpgrp(t.fd) == t.pid, "supervise is not in the foreground group"
    assert_tree_alive(pids)
    os.write(t.fd, b"\x03")
    rc = t.wait()
    bb.assert_gone(pids + [sup])
    assert rc == 130, (rc, err_text(d), t.buf)
    assert_line(d, r"supervise: cancelled by SIGINT( from pid \d+)?; stopping the run with SIGTERM")


def test_runners_pty_foreground_read_and_ctrl_c():
    d = bb.tmpdir()
    script = tree_script(d, tail="read x; echo got $x; wait")
    t = _Pty(d, ["--foreground", "-k", "1", "--", "sh", "-c", script])
    pids = tree_pids(d)
    assert os.tcgetpgrp(t.fd) == t.pid
    assert os.getpgid(pids[0]) == t.pid, "COMMAND left supervise's group with --foreground"
    os.write(t.fd, b"hello\n")
    t.wait_output(b"got hello")
    assert_tree_alive(pids)
    os.write(t.fd, b"\x03")
    rc = t.wait()
    bb.assert_gone(pids)
    assert rc == 130, (rc, err_text(d), t.buf)
    assert_line(d, r"supervise: cancelled by SIGINT( from pid \d+)?; stopping the run with SIGTERM")


# 12. docker stop: supervise as PID 1 of a PID namespace, SIGTERM from the
#     parent namespace.
def test_runners_docker_stop_pid1():
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if probe.returncode != 0:
        raise bb.Skip("unshare --pid --fork --mount-proc not permitted here: %s"
                      % probe.stderr.strip())
    d = bb.tmpdir()
    with err_file(d) as ef:
        u = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", bb.SUPERVISE,
                              "-k", "1", "--", "sh", "-c", tree_script(d)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=ef)
    tree_pids(d)           # pids inside the namespace: only to know it is ready
    front = child_supervise(u.pid)
    # Seen from here (global pids): front, supervisor, cmd, bg, sid, ign.
    everything = bb.descendants(u.pid)
    assert len(everything) >= 6, [bb.cmdline(p) for p in everything]
    os.kill(front, signal.SIGTERM)
    rc = u.wait(timeout=30)
    bb.assert_gone(everything)
    assert rc == 143, (rc, err_text(d))
    assert_line(d, r"supervise: cancelled by SIGTERM; stopping the run with SIGTERM")


# 13. SIGHUP to the front (the terminal closed).
def test_runners_sighup_to_front():
    d = bb.tmpdir()
    with err_file(d) as ef:
        front = bb.start(["-k", "1", "--", "sh", "-c", tree_script(d)],
                         stdout=subprocess.DEVNULL, stderr=ef)
    pids = tree_pids(d)
    sup = bb.supervisor_of(front.pid)
    assert_tree_alive(pids)
    front.send_signal(signal.SIGHUP)
    rc = front.wait(timeout=30)
    bb.assert_gone(pids + [sup])
    assert rc == 129, (rc, err_text(d))
    assert_line(d, r"supervise: cancelled by SIGHUP from pid %d; stopping the run with SIGTERM"
                % os.getpid())
