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


def tmux(*args, server="supervise-test"):
    return subprocess.run(["tmux", "-L", server] + list(args),
                          capture_output=True, text=True, timeout=30)


def screen(server="supervise-test"):
    return tmux("capture-pane", "-p", "-S", "-200", "-t", "t",
                server=server).stdout


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


# Its own tmux server: tests run in parallel.
HINT_SERVER = "supervise-test-hint"
HINT = "supervise: press Ctrl-C again to kill the run at once"


def hint_keys(*keys):
    tmux("send-keys", "-t", "t", *keys, server=HINT_SERVER)


def after(marker):
    """The screen's lines after the line that is just marker (COMMAND's
    first output), with the terminal's echo of Ctrl-C ("^C") taken out."""
    lines = [x.replace("^C", "").rstrip()
             for x in screen(HINT_SERVER).splitlines()]
    while lines and lines[-1] == "":
        lines.pop()     # the rest of the pane
    return lines[lines.index(marker) + 1:] if marker in lines else []


def stubborn_cmd(marker):
    """A COMMAND line that prints marker and then ignores the stop signal:
    the stop waits out its grace."""
    return ("-- sh -c %s" %
            Q("trap '' TERM; echo %s; exec sleep 1000" % marker))


def upto_status(marker, status):
    """after(marker) up to the line that shows the status (the prompt
    after it may not be drawn yet)."""
    lines = after(marker)
    return lines[:lines.index(status) + 1] if status in lines else lines


def supervise_under(shell):
    return bb.wait_for(lambda: [c for c in bb.children(shell)
                                if bb.cmdline(c).startswith(SUP)],
                       what="supervise under bash")[0]


def ask_status(front):
    """Once supervise has exited (so that the typed line is bash's, not
    echoed over the end of the run), asks bash for its status."""
    bb.wait_for(lambda: not bb.alive(front), what="supervise to end")
    hint_keys("echo rc=$?", "Enter")


def has(marker, line):
    return lambda: line in after(marker)


@bb.time_limit(120)
def test_ctrl_c_in_a_terminal_tells_what_a_second_one_does():
    """In bash in a terminal, Ctrl-C starts a stop with a grace of more
    than a second: one line says that a second Ctrl-C kills the run at
    once, and it does.  Not with a grace of a second, and not for a
    SIGTERM from elsewhere (a runner), though stderr is the terminal."""
    if shutil.which("tmux") is None or shutil.which("bash") is None:
        raise bb.Skip("tmux and bash are needed")
    tmux("kill-server", server=HINT_SERVER)
    tmux("new-session", "-d", "-s", "t", "-x", "150", "-y", "50",
         "env PS1='$ ' bash --norc --noprofile -i", server=HINT_SERVER)
    try:
        shell = int(tmux("display-message", "-p", "-t", "t", "#{pane_pid}",
                         server=HINT_SERVER).stdout)
        cancelled = ("supervise: cancelled by SIGINT; stopping the run "
                     "with SIGTERM")

        # A grace of 5 s: the hint, once; a second Ctrl-C kills at once.
        hint_keys("%s -k 5 %s" % (Q(SUP), stubborn_cmd("one")), "Enter")
        bb.wait_for(lambda: "one" in screen(HINT_SERVER).splitlines(),
                    what="COMMAND")
        front = supervise_under(shell)
        hint_keys("C-c")
        bb.wait_for(has("one", HINT), what="the hint:\n" +
                    screen(HINT_SERVER))
        hint_keys("C-c")
        again = "supervise: SIGINT again; sending SIGKILL to 1 process now"
        bb.wait_for(has("one", again), what="the kill:\n" +
                    screen(HINT_SERVER))
        ask_status(front)
        bb.wait_for(has("one", "rc=130"), what="status 130:\n" +
                    screen(HINT_SERVER))
        assert upto_status("one", "rc=130") == [
            cancelled, HINT, again, "$ echo rc=$?", "rc=130"], \
            screen(HINT_SERVER)

        # A grace of 1 s: no hint; the grace runs out by itself.
        hint_keys("%s -k 1 %s" % (Q(SUP), stubborn_cmd("two")), "Enter")
        bb.wait_for(lambda: "two" in screen(HINT_SERVER).splitlines(),
                    what="COMMAND")
        front = supervise_under(shell)
        hint_keys("C-c")
        over = "supervise: grace of 1s over; sending SIGKILL to 1 process"
        bb.wait_for(has("two", over), what="the grace:\n" +
                    screen(HINT_SERVER))
        ask_status(front)
        bb.wait_for(has("two", "rc=130"), what="status 130:\n" +
                    screen(HINT_SERVER))
        assert upto_status("two", "rc=130") == [
            cancelled, over, "$ echo rc=$?", "rc=130"], screen(HINT_SERVER)

        # SIGTERM from another process, stderr on the terminal: no hint.
        hint_keys("%s -k 5 %s" % (Q(SUP), stubborn_cmd("three")), "Enter")
        bb.wait_for(lambda: "three" in screen(HINT_SERVER).splitlines(),
                    what="COMMAND")
        front = supervise_under(shell)
        os.kill(front, signal.SIGTERM)
        term = ("supervise: cancelled by SIGTERM from pid %d; stopping the "
                "run with SIGTERM" % os.getpid())
        bb.wait_for(has("three", term), what="the cancel:\n" +
                    screen(HINT_SERVER))
        os.kill(front, signal.SIGTERM)
        ask_status(front)
        bb.wait_for(has("three", "rc=143"), what="status 143:\n" +
                    screen(HINT_SERVER))
        assert HINT not in after("three"), screen(HINT_SERVER)
    finally:
        tmux("kill-server", server=HINT_SERVER)
