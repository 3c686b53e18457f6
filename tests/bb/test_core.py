"""Black-box tests of supervise's core: exit statuses, timeouts, the stop
sequence, cancel signals, whole-tree teardown, reaping, inherited signal
state, usage errors, and odd environments (closed stderr, PID namespaces).

Every supervise is started with a clean signal state (all dispositions
default, nothing blocked) unless a test sets one up on purpose, so the
results do not depend on how the runner itself was started.  Timing is
never asserted: conditions are polled with generous bounds.
"""
import os
import re
import signal
import subprocess
import sys

import bb

HERE = os.path.dirname(os.path.abspath(__file__))
SIGPROBE = os.path.join(bb.HELPERS, "sigprobe")
ORPHANS = os.path.join(bb.HELPERS, "core_orphans")
LONE = os.path.join(bb.HELPERS, "lone_thread")
TREE = [sys.executable, os.path.join(HERE, "core_tree.py")]
INHERIT = [sys.executable, os.path.join(HERE, "core_inherit.py")]
TREE_NAMES = ("cmd", "bg", "sess", "daemon")

# Build the C helpers once, at discovery (before the tests fork).
subprocess.run(["make", "-s", "-C", bb.ROOT, "tests/helpers/sigprobe",
                "tests/helpers/core_orphans", "tests/helpers/lone_thread"],
               check=False)


# ---------------------------------------------------------------- helpers


def clean_signals():
    """In the child before exec: every disposition default, no mask."""
    for s in range(1, 32):
        if s in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(s, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def preexec(extra=None):
    def fn():
        clean_signals()
        if extra is not None:
            extra()
    return fn


def start(args, setup=None, prog=None, **kw):
    """Starts supervise (or prog + args) with a clean signal state."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("text", True)
    argv = (prog if prog is not None else [bb.SUPERVISE]) + list(args)
    return subprocess.Popen(argv, preexec_fn=preexec(setup), **kw)


def finish(p, timeout=30):
    """Waits (bounded) for a started run; returns a bb.Result."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("%r did not end within %ds" % (p.args, timeout))
    return bb.Result(p.returncode, out, err)


def run(args, setup=None, timeout=30, **kw):
    return finish(start(args, setup=setup, **kw), timeout)


def msg(*lines):
    """The exact stderr for these supervise message lines."""
    return "".join("supervise: %s\n" % line for line in lines)


def cancel_msg(sig, stop="SIGTERM", sender=None):
    sender = os.getpid() if sender is None else sender
    return msg("cancelled by %s from pid %d; stopping the run with %s"
               % (sig_name(sig), sender, stop))


def sig_name(sig):
    return signal.Signals(sig).name


def log_lines(path):
    return bb.read(path).splitlines()


def wait_ready(path):
    """Waits for a sigprobe's "ready PID" line; returns PID."""
    def ready():
        for line in log_lines(path):
            if line.startswith("ready "):
                return int(line.split()[1])
        return None
    return bb.wait_for(ready, what="sigprobe ready in %s" % path)


def wait_logged(path, name):
    try:
        bb.wait_for(lambda: name in log_lines(path))
    except AssertionError:
        raise AssertionError("%s never logged in %s: %r" % (name, path, bb.read(path)))


def tree_pids(d):
    return {n: bb.pids_in(os.path.join(d, n))[0] for n in TREE_NAMES}


def wait_tree(d):
    bb.wait_for(lambda: os.path.exists(os.path.join(d, "ready")),
                what="the test tree in %s" % d)
    return tree_pids(d)


def parse_status(text):
    """sigprobe --status output -> {"SigBlk": mask, ...}."""
    out = {}
    for line in text.splitlines():
        k, v = line.split(":")
        out[k] = int(v.strip(), 16)
    assert set(out) == {"SigBlk", "SigIgn", "SigPnd", "ShdPnd"}, text
    return out


def bit(sig):
    return 1 << (int(sig) - 1)


def probe_status(setup=None):
    """COMMAND's inherited signal state, as sigprobe --status reports it."""
    r = run(["--", SIGPROBE, "--status"], setup=setup)
    assert r.rc == 0 and r.err == "", r
    return parse_status(r.out)


def zombies_below(pid):
    """Zombie descendants of pid (bb.descendants leaves zombies out)."""
    out, todo = [], bb.children(pid)
    while todo:
        p = todo.pop()
        st = bb.proc_state(p)
        if st == "Z":
            out.append(p)
        elif st is not None:
            todo += bb.children(p)
    return out


def ppid(pid):
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    return int(data[data.rindex(")") + 2:].split()[1])


def my_zombies():
    return [c for c in bb.children(os.getpid()) if bb.proc_state(c) == "Z"]


def marker_cmd(d):
    """A COMMAND that leaves a marker file if it is ever started."""
    return ["sh", "-c", "touch '%s'" % os.path.join(d, "marker")]


# ------------------------------------------------------ exit statuses

def test_exit_status_passthrough():
    runs = {code: start(["--", "sh", "-c", "echo out; exit %d" % code])
            for code in (0, 1, 2, 127, 255)}
    for code, p in runs.items():
        r = finish(p)
        assert r.rc == code, (code, r)
        assert r.err == "", (code, r)
        assert r.out == "out\n", (code, r)


def test_command_killed_by_its_own_signal():
    sigs = (signal.SIGTERM, signal.SIGKILL, signal.SIGHUP, signal.SIGINT,
            signal.SIGUSR1)
    runs = {s: start(["--", "sh", "-c", "kill -%s $$; sleep 5" % sig_name(s)[3:]])
            for s in sigs}
    for s, p in runs.items():
        r = finish(p)
        assert r.rc == 128 + s, (sig_name(s), r)
        assert r.err == "", (sig_name(s), r)


# ------------------------------------------------------------ timeout

def test_timeout_exit_124_with_message():
    cases = {"1": "1s", "0.5": "500ms", "1500ms": "1.5s"}
    runs = {t: start(["-t", t, "--", "sleep", "100"]) for t in cases}
    for t, p in runs.items():
        r = finish(p)
        assert r.rc == 124, (t, r)
        assert r.err == msg("timed out after %s; stopping the run with SIGTERM"
                            % cases[t]), (t, r)


def test_timeout_message_duration_is_plain_decimal():
    # Just under a second, not a whole number of milliseconds.
    r = run(["-t", "999.9ms", "--", "sleep", "100"])
    assert r.rc == 124, r
    m = re.fullmatch(r"supervise: timed out after ([0-9]+(?:\.[0-9]+)?)(ms|s); "
                     r"stopping the run with SIGTERM\n", r.err)
    assert m, "not a plain duration: %r" % r.err
    seconds = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    assert abs(seconds - 0.9999) <= 0.001, r


def test_preserve_status():
    d = bb.tmpdir()
    log3, log124 = os.path.join(d, "p3"), os.path.join(d, "p124")
    exits3 = start(["--preserve-status", "-t", "2", "--",
                    SIGPROBE, log3, "--exit-on", "TERM=3"])
    killed = start(["--preserve-status", "-t", "1", "--", "sleep", "100"])
    plain = start(["-t", "2", "--", SIGPROBE, log124, "--exit-on", "TERM=3"])

    r = finish(exits3)
    assert r.rc == 3, r
    assert r.err == msg("timed out after 2s; stopping the run with SIGTERM"), r
    assert log_lines(log3)[1:] == ["SIGTERM"], bb.read(log3)

    r = finish(killed)
    assert r.rc == 143, r
    assert r.err == msg("timed out after 1s; stopping the run with SIGTERM"), r

    # Without --preserve-status the same COMMAND gives 124.
    r = finish(plain)
    assert r.rc == 124, r
    assert r.err == msg("timed out after 2s; stopping the run with SIGTERM"), r


def test_term_ignoring_command_killed_after_grace():
    d = bb.tmpdir()
    log = os.path.join(d, "log")
    r = run(["-t", "2", "-k", "0.5", "--", SIGPROBE, log, "--ignore", "TERM"])
    assert r.rc == 124, r
    assert r.err == msg("timed out after 2s; stopping the run with SIGTERM",
                        "grace of 500ms over; sending SIGKILL to 1 process"), r
    lines = log_lines(log)
    assert lines[0].startswith("ready "), lines
    # TERM was ignored; the SIGCONT that follows the stop signal arrived
    # (how often is test_stop_signal_sent_once_to_each_process's matter).
    assert lines[1:] and set(lines[1:]) == {"SIGCONT"}, lines
    bb.assert_gone([int(lines[0].split()[1])])


def test_stop_signal_sent_once_to_each_process():
    # Three probes that log every signal and stop only for SIGKILL: COMMAND,
    # a background child in its group, and a child that left it (setsid).
    # Each gets the stop signal and SIGCONT once, then SIGKILL.  A program
    # that takes a second TERM as "quit now, skip the cleanup" relies on it.
    d = bb.tmpdir()
    logs = [os.path.join(d, n) for n in ("cmd", "bg", "sess")]
    p = start(["-k", "1", "--", "sh", "-c", "'%s' '%s' & setsid '%s' '%s' & exec '%s' '%s'"
               % (SIGPROBE, logs[1], SIGPROBE, logs[2], SIGPROBE, logs[0])])
    pids = [wait_ready(log) for log in logs]
    os.kill(p.pid, signal.SIGTERM)
    r = finish(p)
    assert r.rc == 143, r
    assert r.err == (cancel_msg(signal.SIGTERM) +
                     msg("grace of 1s over; sending SIGKILL to 3 processes")), r
    # SIGCHLD is the kernel's, not supervise's: COMMAND is the parent of
    # the other two, and may see them die before its own SIGKILL.
    got = {os.path.basename(log): [s for s in log_lines(log)[1:] if s != "SIGCHLD"]
           for log in logs}
    assert got == {n: ["SIGTERM", "SIGCONT"] for n in got}, got
    bb.assert_gone(pids)


def test_kill_after_zero_and_signal_kill_kill_at_once():
    d = bb.tmpdir()
    logs = [os.path.join(d, "k0"), os.path.join(d, "sk")]
    runs = [start(["-t", "2", "-k", "0", "--", SIGPROBE, logs[0]]),
            start(["-t", "2", "-s", "KILL", "--", SIGPROBE, logs[1]])]
    for log, p in zip(logs, runs):
        r = finish(p)
        assert r.rc == 124, r
        assert r.err == msg("timed out after 2s; stopping the run with SIGKILL"), r
        lines = log_lines(log)
        # SIGKILL at once: no stop signal, no SIGCONT before it.
        assert len(lines) == 1 and lines[0].startswith("ready "), lines
        bb.assert_gone([int(lines[0].split()[1])])


def test_stop_signal_int_by_name_number_and_lowercase():
    d = bb.tmpdir()
    logs = {v: os.path.join(d, "log%d" % i)
            for i, v in enumerate(("INT", "2", "sigint"))}
    by_timeout = start(["-t", "2", "-s", "INT", "--",
                        SIGPROBE, logs["INT"], "--exit-on", "INT=0"])
    by_number = start(["-s", "2", "--", SIGPROBE, logs["2"],
                       "--exit-on", "INT=0"])
    by_lower = start(["--signal=sigint", "--", SIGPROBE, logs["sigint"],
                      "--exit-on", "INT=0"])
    for p, v in ((by_number, "2"), (by_lower, "sigint")):
        wait_ready(logs[v])
        os.kill(p.pid, signal.SIGTERM)
    r = finish(by_timeout)
    assert r.rc == 124, r
    assert r.err == msg("timed out after 2s; stopping the run with SIGINT"), r
    for p in (by_number, by_lower):
        r = finish(p)
        assert r.rc == 143, r
        assert r.err == cancel_msg(signal.SIGTERM, stop="SIGINT"), r
    for v, log in logs.items():
        lines = log_lines(log)
        assert "SIGINT" in lines and "SIGTERM" not in lines, (v, lines)


# -------------------------------------------------------- cancel

def test_cancel_signals_stop_the_whole_tree():
    sigs = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
    runs = []
    for s in sigs:
        d = bb.tmpdir()
        runs.append((s, d, start(["--"] + TREE + [d])))
    for s, d, p in runs:
        pids = wait_tree(d)
        sup = bb.supervisor_of(p.pid)
        os.kill(p.pid, s)
        r = finish(p)
        assert r.rc == 128 + s, (sig_name(s), r)
        assert r.err == cancel_msg(s), (sig_name(s), r)
        bb.assert_gone(list(pids.values()) + [sup])


def test_second_term_while_stopping_kills_at_once():
    d = bb.tmpdir()
    l1, l2 = os.path.join(d, "l1"), os.path.join(d, "l2")
    script = ("trap '' TERM; '%s' '%s' --ignore TERM & '%s' '%s' --ignore TERM; wait"
              % (SIGPROBE, l1, SIGPROBE, l2))
    p = start(["-k", "60", "--", "sh", "-c", script])
    pids = [wait_ready(l1), wait_ready(l2)]
    os.kill(p.pid, signal.SIGTERM)
    # In the grace now: the stop signal (ignored) and SIGCONT were sent.
    wait_logged(l1, "SIGCONT")
    wait_logged(l2, "SIGCONT")
    assert bb.alive(p.pid)
    os.kill(p.pid, signal.SIGTERM)
    # The 60 s grace must not be waited for.
    r = finish(p, timeout=30)
    assert r.rc == 143, r
    assert r.err == (cancel_msg(signal.SIGTERM) +
                     msg("SIGTERM again; sending SIGKILL to 3 processes now")), r
    bb.assert_gone(pids)


def test_term_to_front_and_supervisor_at_once_counts_once():
    # "pkill supervise": the same TERM reaches the supervisor directly and
    # through the front; that is one cancel, not a second one.
    d = bb.tmpdir()
    log = os.path.join(d, "log")
    p = start(["-k", "0.5", "--", SIGPROBE, log, "--ignore", "TERM"])
    wait_ready(log)
    sup = bb.supervisor_of(p.pid)
    os.kill(p.pid, signal.SIGTERM)
    # Should the test be held up past the grace, the supervisor may be
    # gone by now; what supervise says is the same.
    bb.try_kill(sup, signal.SIGTERM)
    r = finish(p)
    assert r.rc == 143, r
    assert r.err == (cancel_msg(signal.SIGTERM) +
                     msg("grace of 500ms over; sending SIGKILL to 1 process")), r


def test_timeout_stops_setsid_grandchild_and_double_forked_daemon():
    d = bb.tmpdir()
    p = start(["-t", "4", "--"] + TREE + [d])
    pids = wait_tree(d)
    sup = bb.supervisor_of(p.pid)
    # The shape of the tree: both left COMMAND's session; the daemon's
    # parent exited, so the supervisor (a subreaper) adopted it.
    assert os.getsid(pids["sess"]) == pids["sess"], pids
    assert os.getsid(pids["daemon"]) == pids["daemon"], pids
    assert ppid(pids["daemon"]) == sup, (pids, sup)
    r = finish(p)
    assert r.rc == 124, r
    assert r.err == msg("timed out after 4s; stopping the run with SIGTERM"), r
    bb.assert_gone(list(pids.values()))


def test_leftovers_stopped_after_command_exits():
    d = bb.tmpdir()
    r = run(["--"] + TREE + [d, "5"])
    assert r.rc == 5, r
    assert r.err == msg("command exited; stopping 3 leftover processes with SIGTERM"), r
    pids = tree_pids(d)
    bb.assert_gone([pids["bg"], pids["sess"], pids["daemon"]])


def main_thread_gone(pid):
    """/proc shows pid in its main thread's state, Z, yet it lives."""
    return (bb._stat_state("/proc/%d/stat" % pid) == "Z"
            and bb.alive(pid))


def test_process_whose_main_thread_exited_is_stopped_on_cancel():
    """A process of the run (outside COMMAND's group) lives on in a thread
    after its main thread exits; /proc shows it as a zombie, but it must be
    stopped like any process."""
    d = bb.tmpdir()
    f = os.path.join(d, "pid")
    script = "setsid '%s' '%s' & exec sleep 1000" % (LONE, f)
    p = start(["--", "sh", "-c", script])
    pid = bb.wait_for(lambda: bb.pids_in(f), what="lone_thread's pid")[0]
    bb.wait_for(lambda: main_thread_gone(pid), what="the main thread to exit")
    os.kill(p.pid, signal.SIGTERM)
    r = finish(p)
    assert r.rc == 143, r
    assert r.err == cancel_msg(signal.SIGTERM), r
    bb.assert_gone([pid])


def test_leftover_whose_main_thread_exited_is_stopped():
    d = bb.tmpdir()
    f = os.path.join(d, "pid")
    script = ("'%s' '%s' & until [ -s '%s' ] && grep -q '^State:.Z' /proc/$!/status; "
              "do sleep 0.01; done; exit 3" % (LONE, f, f))
    r = run(["--", "sh", "-c", script])
    assert r.rc == 3, r
    assert r.err == msg("command exited; stopping 1 leftover process with SIGTERM"), r
    pid = bb.pids_in(f)[0]
    bb.assert_gone([pid])


def test_term_ignoring_leftover_killed_after_grace():
    d = bb.tmpdir()
    log = os.path.join(d, "log")
    script = ("'%s' '%s' --ignore TERM & "
              "until grep -q ready '%s' 2>/dev/null; do sleep 0.02; done; exit 4"
              % (SIGPROBE, log, log))
    r = run(["-k", "0.5", "--", "sh", "-c", script])
    assert r.rc == 4, r
    assert r.err == msg("command exited; stopping 1 leftover process with SIGTERM",
                        "grace of 500ms over; sending SIGKILL to 1 process"), r
    lines = log_lines(log)
    # Outside COMMAND's group too, the stop signal is followed by SIGCONT.
    assert lines[1:] and set(lines[1:]) == {"SIGCONT"}, lines
    bb.assert_gone([int(lines[0].split()[1])])


# ------------------------------------------------------- reaping

def check_orphans_reaped(cmd):
    """Runs cmd, which forks 2000 orphans, prints "done" and waits for
    end of file on its stdin; checks that every orphan is reaped."""
    d = bb.tmpdir()
    out = os.path.join(d, "out")
    with open(out, "w") as f:
        p = start(["--"] + cmd, stdin=subprocess.PIPE, stdout=f)
    bb.wait_for(lambda: bb.read(out) == "done\n", timeout=150,
                what="the command to fork its 2000 orphans")
    sup = bb.supervisor_of(p.pid)
    # Every orphan ends at once: soon nothing but COMMAND is left below
    # the supervisor, and no zombie anywhere under the front.
    try:
        bb.wait_for(lambda: len(bb.descendants(sup)) == 1 and
                    not zombies_below(p.pid), timeout=30)
    except AssertionError:
        raise AssertionError("orphans not reaped: %d zombies, %d live below the "
                             "supervisor" % (len(zombies_below(p.pid)),
                                             len(bb.descendants(sup))))
    p.stdin.close()
    p.stdin = None
    r = finish(p)
    assert r.rc == 0, r
    assert r.err == "", r
    assert my_zombies() == [], "zombies passed on to the caller: %s" % my_zombies()


@bb.time_limit(300)
def test_2000_double_forked_orphans_reaped():
    check_orphans_reaped([ORPHANS, "2000"])


@bb.time_limit(300)
def test_2000_background_trues_orphaned_by_a_shell_loop_reaped():
    check_orphans_reaped(["sh", "-c", "i=0; while [ $i -lt 2000 ]; do (true &); "
                          "i=$((i+1)); done; echo done; exec cat"])


# ------------------------------------------------- other signals

def test_usr1_usr2_winch_forwarded_to_command_group():
    d = bb.tmpdir()
    l1, l2 = os.path.join(d, "l1"), os.path.join(d, "l2")
    p = start(["--", "sh", "-c",
               "'%s' '%s' --exit-on TERM=0 & exec '%s' '%s' --exit-on TERM=0"
               % (SIGPROBE, l1, SIGPROBE, l2)])
    wait_ready(l1)
    wait_ready(l2)
    sup = bb.supervisor_of(p.pid)
    for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH):
        os.kill(p.pid, s)
        wait_logged(l1, sig_name(s))
        wait_logged(l2, sig_name(s))
    # The run goes on.
    assert p.poll() is None and bb.alive(sup)
    os.kill(p.pid, signal.SIGTERM)
    r = finish(p)
    assert r.rc == 143, r
    assert r.err == cancel_msg(signal.SIGTERM), r
    for log in (l1, l2):
        assert log_lines(log)[1:] == ["SIGUSR1", "SIGUSR2", "SIGWINCH",
                                      "SIGTERM"], bb.read(log)


def test_external_sigalrm_times_out():
    d = bb.tmpdir()
    log = os.path.join(d, "log")
    p = start(["--", SIGPROBE, log, "--exit-on", "TERM=0"])
    wait_ready(log)
    os.kill(p.pid, signal.SIGALRM)
    r = finish(p)
    assert r.rc == 124, r
    # The text after "timed out" is not specified for an external SIGALRM.
    assert re.fullmatch(r"supervise: timed out[^\n]*; stopping the run with SIGTERM\n",
                        r.err), r
    # Not forwarded: COMMAND got the stop signal only.
    assert log_lines(log)[1:] == ["SIGTERM"], bb.read(log)


# ------------------------------------------- inherited signal state

def test_inherited_ignored_sigpipe_kept_by_command():
    st = probe_status(lambda: signal.signal(signal.SIGPIPE, signal.SIG_IGN))
    assert st["SigIgn"] & bit(signal.SIGPIPE), st


def test_default_sigpipe_stays_default_in_command():
    st = probe_status()
    # supervise ignores SIGPIPE for itself; COMMAND must not inherit that.
    assert st["SigIgn"] == 0, "SigIgn %x" % st["SigIgn"]


def test_inherited_blocked_sigalrm_still_times_out():
    def block():
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])
    r = run(["-t", "1", "--", "sleep", "100"], setup=block)
    assert r.rc == 124, r
    assert r.err == msg("timed out after 1s; stopping the run with SIGTERM"), r


def test_inherited_blocked_sigusr1_kept_own_blocked_signals_not_leaked():
    st = probe_status(lambda: signal.pthread_sigmask(signal.SIG_BLOCK,
                                                     [signal.SIGUSR1]))
    assert st["SigBlk"] == bit(signal.SIGUSR1), "SigBlk %x" % st["SigBlk"]
    assert st["SigPnd"] == 0 and st["ShdPnd"] == 0, st
    # Nothing inherited: nothing blocked (TERM, INT, HUP, QUIT, ALRM, CHLD,
    # USR1, USR2, WINCH and the real-time signals supervise reads are not).
    st = probe_status()
    assert st["SigBlk"] == 0, "SigBlk %x" % st["SigBlk"]
    assert st["SigIgn"] == 0 and st["SigPnd"] == 0 and st["ShdPnd"] == 0, st


def test_inherited_ignored_sigchld():
    def ign():
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    r = run(["--", "sh", "-c", "exit 7"], setup=ign)
    assert r.rc == 7, r
    assert r.err == "", r
    st = probe_status(ign)
    assert st["SigIgn"] == bit(signal.SIGCHLD), "SigIgn %x" % st["SigIgn"]
    # The tree is still stopped and reaped.
    d = bb.tmpdir()
    pidfile = os.path.join(d, "pids")
    r = run(["-t", "2", "--", "sh", "-c",
             "echo $$ > '%s'; sleep 100 & echo $! >> '%s'; wait" % (pidfile, pidfile)],
            setup=ign)
    assert r.rc == 124, r
    assert r.err == msg("timed out after 2s; stopping the run with SIGTERM"), r
    assert len(bb.pids_in(pidfile)) == 2, bb.read(pidfile)
    bb.assert_gone(bb.pids_in(pidfile))


def test_inherited_ignored_sigint_does_not_cancel():
    def ign():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    d = bb.tmpdir()
    log = os.path.join(d, "log")
    p = start(["--", SIGPROBE, log, "--exit-on", "TERM=0"], setup=ign)
    wait_ready(log)
    sup = bb.supervisor_of(p.pid)
    os.kill(p.pid, signal.SIGINT)
    os.kill(sup, signal.SIGINT)
    # A forwarded signal sent after it arrives: the run went on.
    os.kill(p.pid, signal.SIGUSR1)
    wait_logged(log, "SIGUSR1")
    assert p.poll() is None and bb.alive(sup)
    os.kill(p.pid, signal.SIGTERM)
    r = finish(p)
    assert r.rc == 143, r
    assert r.err == cancel_msg(signal.SIGTERM), r
    assert "SIGINT" not in log_lines(log), bb.read(log)
    # COMMAND inherits the ignored SIGINT.
    st = probe_status(ign)
    assert st["SigIgn"] == bit(signal.SIGINT), "SigIgn %x" % st["SigIgn"]


def test_inherited_child_not_mistaken_for_command():
    d = bb.tmpdir()
    child = os.path.join(d, "child")
    done = os.path.join(d, "done")
    # COMMAND outlives the inherited child: it ends only once that child
    # is gone for good (reaped, not a zombie), then exits 5.
    script = ("while [ ! -s '%s' ]; do sleep 0.02; done; c=$(cat '%s'); "
              "while kill -0 $c 2>/dev/null; do sleep 0.02; done; "
              "touch '%s'; exit 5" % (child, child, done))
    p = start([d, "0.3", bb.SUPERVISE, "--", "sh", "-c", script], prog=INHERIT)
    r = finish(p)
    assert r.rc == 5, r
    assert r.err == "", r
    assert os.path.exists(done)

    # An inherited child that outlives the run is not part of it: left alone.
    d = bb.tmpdir()
    child = os.path.join(d, "child")
    p = start([d, "60", bb.SUPERVISE, "--", "sh", "-c",
               "while [ ! -s '%s' ]; do sleep 0.02; done; exit 3" % child],
              prog=INHERIT)
    r = finish(p)
    assert r.rc == 3, r
    assert r.err == "", r
    c = bb.pids_in(child)[0]
    try:
        assert bb.alive(c), "the inherited child %d was stopped" % c
    finally:
        bb.try_kill(c, signal.SIGKILL)


# --------------------------------------------------- exec failures

def test_exec_failures():
    d = bb.tmpdir()
    with open(os.path.join(d, "x"), "w") as f:
        f.write("#!/bin/sh\ntouch '%s/marker'\n" % d)
    os.chmod(os.path.join(d, "x"), 0o644)

    def check(cmd, cwd, rc, err):
        r = run(["--"] + cmd, cwd=cwd)
        assert (r.rc, r.err) == (rc, err), r
        assert not os.path.exists(os.path.join(d, "marker")), "COMMAND ran"
    bb.check_cases([
        # name, COMMAND, directory, status, stderr
        ("not found", ["nosuch"], d, 127,
         "supervise: cannot run 'nosuch': No such file or directory\n"),
        ("not executable", ["./x"], d, 126,
         "supervise: cannot run './x': Permission denied\n"),
        ("a directory", [d], None, 126,
         "supervise: cannot run '%s': Permission denied\n" % d),
    ], check)


# ---------------------------------------------------- usage errors

def test_usage_errors():
    d = bb.tmpdir()
    cmd = marker_cmd(d)
    cases = []
    for v in ("abc", "-1", "1e3", "5x", "", " 1", "1 ", "+1", ".", "1.2.3", "0x10"):
        cases.append((["-t", v, "--"] + cmd, "invalid duration '%s'" % v))
        cases.append((["-k", v] + cmd, "invalid duration '%s'" % v))
    cases += [
        (["--timeout=abc"] + cmd, "invalid duration 'abc'"),
        (["--timeout="] + cmd, "invalid duration ''"),
        (["--kill-after", "1e3"] + cmd, "invalid duration '1e3'"),
    ]
    for v in ("foo", "SIGFOO", "", "SIG", "65", "-1", "RTMIN+99", "1x", "TERM "):
        cases.append((["-s", v] + cmd, "invalid signal '%s'" % v))
    cases.append((["--signal=foo"] + cmd, "invalid signal 'foo'"))
    for v in ("STOP", "SIGSTOP", "stop", "19", "TSTP", "TTIN", "TTOU", "CONT", "0"):
        cases.append((["-s", v] + cmd, "signal '%s' cannot be the stop signal" % v))
    cases += [
        (["-x"] + cmd, "unknown option '-x'"),
        (["-qx"] + cmd, "unknown option '-x'"),
        (["--bogus"] + cmd, "unknown option '--bogus'"),
        (["--bogus=1"] + cmd, "unknown option '--bogus'"),
        (["-t"], "option '-t' requires an argument"),
        (["-k"], "option '-k' requires an argument"),
        (["-s"], "option '-s' requires an argument"),
        (["--timeout"], "option '--timeout' requires an argument"),
        (["--kill-after"], "option '--kill-after' requires an argument"),
        (["--signal"], "option '--signal' requires an argument"),
        (["--parent-pid"], "option '--parent-pid' requires an argument"),
        ([], "missing command"),
        (["--"], "missing command"),
        (["-t", "1"], "missing command"),
        (["-v", "-q", "--"], "missing command"),
        (["--parent-pid=x"] + cmd, "invalid process id 'x'"),
    ]
    bad = []
    for args, line in cases:
        r = run(args)
        if (r.rc, r.err, r.out) != (125, "supervise: %s\n%s" % (line, bb.TRY_HELP), ""):
            bad.append((args, "expected 125 %r" % line, r))
        if os.path.exists(os.path.join(d, "marker")):
            bad.append((args, "COMMAND was started"))
            os.unlink(os.path.join(d, "marker"))
    assert not bad, "\n".join(repr(b) for b in bad)


def test_valid_and_huge_durations():
    # Accepted forms; 0 is no timeout.
    runs = [start(args + ["--", "sh", "-c", "sleep 1; exit 3"]) for args in (
        ["-t", "99999999999d"],
        ["-t", "18446744073709551616"],
        ["-t", "999999999999999999999999999999ms"],
        ["-k", "99999999999d", "-t", "99999999999d"],
        ["-t", "0"],
        ["-t", "20.", "-k", ".5"],
        ["--timeout=1.5h", "--kill-after=0.5m"],
    )]
    for p in runs:
        r = finish(p)
        assert r.rc == 3, (p.args, r)
        assert r.err == "", (p.args, r)


def test_command_arguments_arrive_untouched():
    r = run(["sh", "-c", 'echo "$@"', "sh", "-t", "5"])
    assert (r.rc, r.out, r.err) == (0, "-t 5\n", ""), r
    r = run(["-t", "5", "--", "sh", "-c", 'printf "[%s]" "$@"', "sh",
             "-v", "--", "--timeout=1", "-q", ""])
    assert (r.rc, r.out, r.err) == (0, "[-v][--][--timeout=1][-q][]", ""), r
    # "supervise sleep -t 5": -t goes to sleep, which rejects it.
    r = run(["sleep", "-t", "5"])
    assert r.rc == 1, r
    assert r.err.startswith("sleep:") and "supervise" not in r.err, r


def test_help_and_version():
    for opt in ("--help", "-h"):
        r = run([opt])
        assert r.rc == 0 and r.err == "", r
        assert r.out.startswith("Usage: supervise"), r
        for long_opt in ("--timeout", "--kill-after", "--signal", "--foreground",
                         "--preserve-status", "--parent-pid",
                         "--ignore-parent-death", "--quiet", "--verbose",
                         "--help", "--version"):
            assert long_opt in r.out, (opt, long_opt)
    for opt in ("--version", "-V"):
        r = run([opt])
        assert (r.rc, r.out, r.err) == (0, "supervise 0.1.0\n", ""), r


def test_quiet_silences_messages_not_errors():
    r = run(["-q", "-t", "1", "--", "sleep", "100"])
    assert (r.rc, r.err) == (124, ""), r
    d = bb.tmpdir()
    r = run(["-q", "--", "nosuch"], cwd=d)
    assert r.rc == 127, r
    assert r.err == "supervise: cannot run 'nosuch': No such file or directory\n", r
    r = run(["-q", "-t", "abc", "--", "true"])
    assert (r.rc, r.err) == (125, "supervise: invalid duration 'abc'\n" +
                             bb.TRY_HELP), r
    log = os.path.join(d, "log")
    p = start(["-q", "--", SIGPROBE, log, "--exit-on", "TERM=0"])
    wait_ready(log)
    os.kill(p.pid, signal.SIGTERM)
    r = finish(p)
    assert (r.rc, r.err) == (143, ""), r


def test_verbose_messages():
    r = run(["-v", "--", "sh", "-c", "echo $$; exit 3"])
    assert r.rc == 3, r
    m = re.fullmatch(r"supervise: containment: (cgroup /\S+|process sweep "
                     r"\([^\n]*\))\n"
                     r"supervise: started 'sh' as pid (\d+)\n"
                     r"supervise: command exited with status 3 after \S+\n"
                     r"supervise: exiting with status 3\n", r.err)
    assert m, r
    assert int(m.group(2)) == int(r.out), r


# ------------------------------------------------- odd environments

def test_stderr_broken_or_closed():
    def script(pf):
        return ("echo $$ > '%s'; readlink /proc/$$/fd/2 > '%s.fd2'; "
                "sleep 100 & echo $! >> '%s'; sleep 100" % (pf, pf, pf))
    runs = []

    pf = os.path.join(bb.tmpdir(), "pids")
    rfd, wfd = os.pipe()
    os.close(rfd)
    runs.append(("broken pipe", pf, start(["-t", "2", "--", "sh", "-c", script(pf)],
                                          stdout=subprocess.DEVNULL, stderr=wfd)))
    os.close(wfd)

    pf = os.path.join(bb.tmpdir(), "pids")
    runs.append(("fd 2 closed", pf, start(["-t", "2", "--", "sh", "-c", script(pf)],
                                          setup=lambda: os.close(2),
                                          stdout=subprocess.DEVNULL, stderr=None)))

    pf = os.path.join(bb.tmpdir(), "pids")
    runs.append(("sh 2>&-", pf, start(
        ["-c", 'exec "$@" 2>&-', "sh", bb.SUPERVISE, "-t", "2", "--",
         "sh", "-c", script(pf)], prog=["sh"], stdout=subprocess.DEVNULL, stderr=None)))

    for what, pf, p in runs:
        try:
            rc = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("%s: supervise did not end" % what)
        assert rc == 124, (what, rc)
        assert len(bb.pids_in(pf)) == 2, (what, bb.read(pf))
        bb.assert_gone(bb.pids_in(pf))
        if what != "broken pipe":
            # A closed stderr is reopened on /dev/null, and COMMAND gets that.
            assert bb.read(pf + ".fd2").strip() == "/dev/null", (what, bb.read(pf + ".fd2"))


def require_pidns():
    try:
        r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                           capture_output=True, text=True, timeout=30)
    except OSError as e:
        raise bb.Skip("unshare cannot run: %s" % e)
    if r.returncode != 0:
        raise bb.Skip("unshare --pid --fork --mount-proc fails here: %s"
                      % r.stderr.strip())


UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc"]


def test_as_pid1_of_a_pid_namespace():
    require_pidns()
    r = run([bb.SUPERVISE, "-t", "1", "--", "sh", "-c", "sleep 100 & sleep 100"],
            prog=UNSHARE)
    assert r.rc == 124, r
    assert r.err == msg("timed out after 1s; stopping the run with SIGTERM"), r

    # A TERM from outside the namespace reaches supervise (PID 1 there).
    p = start([bb.SUPERVISE, "--", "sh", "-c", "sleep 100 & sleep 100"], prog=UNSHARE)

    def sleeps():
        s = [q for q in bb.descendants(p.pid) if bb.cmdline(q) == "sleep 100"]
        return s if len(s) == 2 else None
    pids = bb.wait_for(sleeps, what="the two sleeps in the namespace")
    front = [c for c in bb.children(p.pid) if bb.cmdline(c).startswith(bb.SUPERVISE)]
    assert len(front) == 1, [bb.cmdline(c) for c in bb.children(p.pid)]
    os.kill(front[0], signal.SIGTERM)
    r = finish(p)
    assert r.rc == 143, r
    # The sender is outside the namespace: its pid is not known there.
    assert r.err == msg("cancelled by SIGTERM; stopping the run with SIGTERM"), r
    bb.assert_gone(pids + front)


def test_parent_is_pid1_of_a_pid_namespace():
    require_pidns()
    r = run(["sh", "-c", "'%s' -- true; exit $?" % bb.SUPERVISE], prog=UNSHARE)
    assert (r.rc, r.err) == (0, ""), r
    r = run(["sh", "-c", "'%s' -- sh -c 'sleep 0.5; exit 5'; exit $?" % bb.SUPERVISE],
            prog=UNSHARE)
    assert (r.rc, r.err) == (5, ""), r
