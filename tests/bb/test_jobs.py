"""Job control: Ctrl-Z (SIGTSTP) stops the whole run and then the front;
fg/bg (SIGCONT) resumes it; the timeout does not count meanwhile."""
import os
import shlex
import shutil
import signal
import subprocess
import time

import bb

SUP = bb.SUPERVISE
Q = shlex.quote


def state(pid):
    return bb.proc_state(pid)


def frozen(pid):
    """Whether pid is in a frozen cgroup v2 (--cgroup: job control freezes
    the run's cgroup instead of sending SIGSTOP)."""
    line = [x for x in bb.read("/proc/%d/cgroup" % pid).splitlines()
            if x.startswith("0::")]
    if not line:
        return False
    for mnt in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        ev = bb.read(mnt + line[0][3:] + "/cgroup.events")
        if ev:
            return "frozen 1" in ev
    return False


def stopped(pids):
    return all(state(p) == "T" or frozen(p) for p in pids)


def test_tstp_stops_the_run_and_cont_resumes_it():
    """SIGTSTP to the front (as a terminal sends it to the foreground
    group) stops COMMAND and its children, then the front; the timeout
    does not fire while the run is stopped; SIGCONT resumes all, and the
    rest of the timeout then runs out."""
    for sig in (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU):
        d = bb.tmpdir()
        cmdf = os.path.join(d, "cmd")
        p = bb.start(["-t", "1.5", "--", "sh", "-c",
                      "echo $$ > %s; sleep 60 & wait" % Q(cmdf)],
                     stderr=subprocess.DEVNULL)
        cmd = bb.wait_for(lambda: (bb.pids_in(cmdf) or [None])[0])
        kid = bb.wait_for(lambda: (bb.children(cmd) or [None])[0])
        os.kill(p.pid, sig)
        bb.wait_for(lambda: stopped([cmd, kid, p.pid]),
                    what="the run and the front stopped by %s" % sig)
        # Well past the timeout: stopped, not timed out.
        time.sleep(2.0)
        assert p.poll() is None and stopped([cmd, kid]), sig
        os.kill(p.pid, signal.SIGCONT)
        bb.wait_for(lambda: not stopped([cmd]), what="COMMAND resumed")
        assert p.wait(timeout=30) == 124, sig
        bb.assert_gone([cmd, kid])


def test_cancel_while_stopped_ends_the_run():
    """A cancel sent to the supervisor while the run is stopped: the run
    is stopped for good (its processes get SIGCONT with the stop signal),
    and the front goes on to report it."""
    d = bb.tmpdir()
    cmdf = os.path.join(d, "cmd")
    p = bb.start(["--", "sh", "-c", "echo $$ > %s; exec sleep 60" % Q(cmdf)],
                 stderr=subprocess.DEVNULL)
    cmd = bb.wait_for(lambda: (bb.pids_in(cmdf) or [None])[0])
    sup = bb.supervisor_of(p.pid)
    os.kill(p.pid, signal.SIGTSTP)
    bb.wait_for(lambda: stopped([cmd, p.pid]))
    os.kill(sup, signal.SIGTERM)
    assert p.wait(timeout=30) == 143
    bb.assert_gone([cmd])


def test_foreground_keeps_job_control_to_the_terminal():
    """With --foreground COMMAND shares our process group: SIGTSTP stops
    supervise itself by default, as before, and COMMAND is not touched by
    supervise."""
    d = bb.tmpdir()
    cmdf = os.path.join(d, "cmd")
    p = bb.start(["--foreground", "--", "sh", "-c",
                  "echo $$ > %s; exec sleep 60" % Q(cmdf)],
                 stderr=subprocess.DEVNULL)
    cmd = bb.wait_for(lambda: (bb.pids_in(cmdf) or [None])[0])
    os.kill(p.pid, signal.SIGTSTP)
    bb.wait_for(lambda: state(p.pid) == "T", what="supervise stopped")
    assert state(cmd) != "T"
    os.kill(p.pid, signal.SIGCONT)
    bb.wait_for(lambda: state(p.pid) != "T")
    os.kill(p.pid, signal.SIGTERM)
    assert p.wait(timeout=30) == 143


# ------------------------------------------------------------ a real terminal


def tmux(*args):
    return subprocess.run(["tmux", "-L", "supervise-test"] + list(args),
                          capture_output=True, text=True, timeout=30)


def screen():
    return tmux("capture-pane", "-p", "-S", "-200", "-t", "t").stdout


@bb.time_limit(120)
def test_ctrl_z_in_a_terminal_stops_the_whole_run():
    """In bash in a terminal: Ctrl-Z stops the run (COMMAND prints no more
    over the prompt), fg resumes it, Ctrl-C cancels it with status 130."""
    if shutil.which("tmux") is None or shutil.which("bash") is None:
        raise bb.Skip("tmux and bash are needed")
    tmux("kill-server")
    tmux("new-session", "-d", "-s", "t", "-x", "150", "-y", "50",
         "env PS1='$ ' bash --norc --noprofile -i")
    try:
        tick = ("%s -k 1 -- sh -c 'i=0; while :; do i=$((i+1)); "
                "echo tick$i; sleep 0.1; done'" % Q(SUP))
        tmux("send-keys", "-t", "t", tick, "Enter")
        bb.wait_for(lambda: "tick3" in screen(), what="ticks")
        tmux("send-keys", "-t", "t", "C-z")
        bb.wait_for(lambda: "Stopped" in screen(), what="bash: Stopped")
        count = screen().count("tick")
        time.sleep(1.0)
        assert screen().count("tick") == count, \
            "COMMAND went on printing after Ctrl-Z:\n" + screen()
        tmux("send-keys", "-t", "t", "fg", "Enter")
        bb.wait_for(lambda: screen().count("tick") > count + 3,
                    what="ticks after fg")
        tmux("send-keys", "-t", "t", "C-c")
        tmux("send-keys", "-t", "t", "echo rc=$?", "Enter")
        bb.wait_for(lambda: "rc=130" in screen(), what="status 130:\n" +
                    screen())
    finally:
        tmux("kill-server")
