"""Black-box tests of supervise's teardown (-T, --teardown-on,
--teardown-timeout, --teardown-log): see the TEARDOWN section of the man
page.

Most tests give a teardown that appends one line to a marker file: the
number of lines is the number of teardown runs.  The line carries what the
teardown saw in its environment, so one comparison checks both.

Timing is never asserted: conditions are polled with generous bounds.
"""
import calendar
import os
import random
import re
import shlex
import signal
import subprocess
import threading
import time

import bb
from runner_lib import child_supervise, wait_status

SUP = bb.SUPERVISE
Q = shlex.quote
# A duration as fmt_duration() prints it: 7.86ms, 1s, 1.5s, 2m.
# (sub-ms values as ns/us, compound ones from two minutes on: 2m30s, 26h5m)
DUR = r"(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|\u00b5s|ms|s|m|h))+"

# One line per teardown run: what it was told.
RECORD = 'echo "$SUPERVISE_REASON|$SUPERVISE_EXIT_STATUS|$SUPERVISE_COMMAND_STATUS|$SUPERVISE_PID" >> %s'

# sh: is pid $1 a live (not zombie) process?
ALIVE_FN = ("alive() { s=$(sed 's/.*) //' /proc/$1/stat 2>/dev/null | cut -c1); "
            "[ -n \"$s\" ] && [ \"$s\" != Z ]; }; ")


# ---------------------------------------------------------------- helpers


def record(marker):
    return RECORD % Q(marker)


def lines(path):
    return bb.read(path).splitlines()


def start(d, args, stdin=subprocess.DEVNULL, err_name="err", **kw):
    """Starts supervise ARGS with stderr to d/err_name; returns the Popen."""
    with open(os.path.join(d, err_name), "w") as ef:
        return subprocess.Popen([SUP] + list(args), stdin=stdin,
                                stdout=subprocess.DEVNULL, stderr=ef, **kw)


def err(d, name="err"):
    return bb.read(os.path.join(d, name))


def finish(p, timeout=60):
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("supervise did not exit within %ds" % timeout)


def match_lines(text, patterns):
    """text is exactly these lines, each matching its regex in order."""
    got = text.splitlines()
    assert len(got) == len(patterns) and all(
        re.fullmatch(p, g) for p, g in zip(patterns, got)), \
        "stderr:\n%s\ndoes not match, line by line:\n%s" % (text, "\n".join(patterns))


def has_line(text, pattern):
    assert re.search("^" + pattern + "$", text, re.M), \
        "no stderr line matching %r in:\n%s" % (pattern, text)


def wait_line(d, pattern, name="err", timeout=30):
    return bb.wait_for(lambda: re.search("^" + pattern + "$", err(d, name), re.M),
                       timeout=timeout,
                       what="stderr line %r (have %r)" % (pattern, err(d, name)))


def wait_pid_file(path, timeout=30):
    return bb.wait_for(lambda: (bb.pids_in(path) or [None])[0], timeout=timeout,
                       what="a pid in %s" % path)


def ready_cmd(d, pre=""):
    """COMMAND: sh that writes its pid to d/cmd and then sleeps (exec)."""
    return ["sh", "-c", "%secho $$ > %s; exec sleep 1000" % (pre, Q(os.path.join(d, "cmd")))]


def gated_teardown(d, marker):
    """A teardown that writes 'start', waits (bounded) for d/go, prints a
    line of output, then writes 'end'."""
    go = os.path.join(d, "go")
    return ("echo start >> %s; i=0; while [ ! -e %s ] && [ $i -lt 1200 ]; do "
            "sleep 0.05; i=$((i+1)); done; echo teardown-output-after-go; echo end >> %s"
            % (Q(marker), Q(go), Q(marker)))


def open_gate(d):
    with open(os.path.join(d, "go"), "w"):
        pass


# ------------------------------------------------- the events that run it

@bb.default_signal_state
def test_teardown_on_timeout():
    d = bb.tmpdir()
    m = os.path.join(d, "marker")
    p = start(d, ["-t", "0.3", "-k", "5", "-T", record(m), "--", "sleep", "1000"])
    rc = finish(p)
    assert rc == 124, (rc, err(d))
    assert lines(m) == ["timeout|124|killed by SIGTERM|%d" % p.pid], lines(m)
    match_lines(err(d), [
        r"supervise: timed out after 300ms; stopping the run with SIGTERM",
        r"supervise: teardown started \(reason: timeout\)",
        r"supervise: teardown finished in %s \(exit 0\)" % DUR,
    ])


def _cancel_by(sig, rc_expected):
    d = bb.tmpdir()
    m = os.path.join(d, "marker")
    p = start(d, ["-k", "5", "-T", record(m), "--"] + ready_cmd(d))
    wait_pid_file(os.path.join(d, "cmd"))
    os.kill(p.pid, sig)
    rc = finish(p)
    assert rc == rc_expected, (rc, err(d))
    assert lines(m) == ["cancel|%d|killed by SIGTERM|%d" % (rc_expected, p.pid)], lines(m)
    match_lines(err(d), [
        r"supervise: cancelled by %s from pid %d; stopping the run with SIGTERM"
        % (signal.Signals(sig).name, os.getpid()),
        r"supervise: teardown started \(reason: cancel\)",
        r"supervise: teardown finished in %s \(exit 0\)" % DUR,
    ])


@bb.default_signal_state
def test_teardown_on_cancel_signals():
    bb.check_cases([
        # name, signal to the front, status
        ("SIGTERM", signal.SIGTERM, 143),
        ("SIGINT", signal.SIGINT, 130),
    ], _cancel_by)


@bb.default_signal_state
def test_teardown_on_parent_sigkill_shell():
    """The step's shell (supervise's parent) is SIGKILLed: exactly one
    teardown, reason parent-death, status 129."""
    d = bb.tmpdir()
    m = os.path.join(d, "marker")
    line = "%s -k 5 -T %s -- %s 2>%s; echo $? > %s" % (
        Q(SUP), Q(record(m)), " ".join(Q(a) for a in ready_cmd(d)),
        Q(os.path.join(d, "err")), Q(os.path.join(d, "status")))
    sh = subprocess.Popen(["sh", "-c", line], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL)
    front = child_supervise(sh.pid)
    wait_pid_file(os.path.join(d, "cmd"))
    os.kill(sh.pid, signal.SIGKILL)
    assert sh.wait(timeout=30) == -signal.SIGKILL
    rc = wait_status(front)     # reparented to us, the subreaper
    assert rc == 129, (rc, err(d))
    assert lines(m) == ["parent-death|129|killed by SIGTERM|%d" % front], lines(m)
    match_lines(err(d), [
        r"supervise: parent process %d died; stopping the run with SIGTERM" % sh.pid,
        r"supervise: teardown started \(reason: parent-death\)",
        r"supervise: teardown finished in %s \(exit 0\)" % DUR,
    ])


@bb.default_signal_state
def test_teardown_on_parent_sigkill_python():
    """The parent is a Python process that started supervise with Popen and
    is SIGKILLed."""
    d = bb.tmpdir()
    m = os.path.join(d, "marker")
    r, w = os.pipe()
    mid = os.fork()
    if mid == 0:
        try:
            os.close(r)
            p = start(d, ["-k", "5", "-T", record(m), "--"] + ready_cmd(d))
            os.write(w, b"%d\n" % p.pid)
            time.sleep(1000)
        except BaseException as e:
            os.write(w, ("error %r\n" % e).encode())
        finally:
            os._exit(3)
    os.close(w)
    got = os.read(r, 4096).decode()
    os.close(r)
    assert got.strip().isdigit(), "the parent could not start supervise: %r" % got
    front = int(got)
    wait_pid_file(os.path.join(d, "cmd"))
    os.kill(mid, signal.SIGKILL)
    assert os.waitpid(mid, 0)[1] == signal.SIGKILL
    rc = wait_status(front)
    assert rc == 129, (rc, err(d))
    assert lines(m) == ["parent-death|129|killed by SIGTERM|%d" % front], lines(m)
    has_line(err(d), r"supervise: parent process %d died; stopping the run with SIGTERM" % mid)
    has_line(err(d), r"supervise: teardown started \(reason: parent-death\)")
    has_line(err(d), r"supervise: teardown finished in %s \(exit 0\)" % DUR)


@bb.default_signal_state
def test_teardown_on_group_sigkill():
    """A runner SIGKILLs the step's whole process group (the shell and the
    front): the supervisor, in its own session, cancels and runs the
    teardown (reason cancel, its status 137)."""
    d = bb.tmpdir()
    m = os.path.join(d, "marker")
    line = "%s -k 5 -T %s -- %s 2>%s; echo $? > %s" % (
        Q(SUP), Q(record(m)), " ".join(Q(a) for a in ready_cmd(d)),
        Q(os.path.join(d, "err")), Q(os.path.join(d, "status")))
    sh = subprocess.Popen(["sh", "-c", line], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, process_group=0)
    front = child_supervise(sh.pid)
    sup = bb.supervisor_of(front)
    cmd = wait_pid_file(os.path.join(d, "cmd"))
    os.killpg(sh.pid, signal.SIGKILL)
    assert sh.wait(timeout=30) == -signal.SIGKILL
    rc = wait_status(sup)       # the front died; the supervisor is ours now
    assert rc == 137, (rc, err(d))
    bb.assert_gone([front, cmd])
    assert lines(m) == ["cancel|137|killed by SIGTERM|%d" % front], lines(m)
    match_lines(err(d), [
        r"supervise: supervise \(pid %d\) was killed; stopping the run with SIGTERM" % front,
        r"supervise: teardown started \(reason: cancel\)",
        r"supervise: teardown finished in %s \(exit 0\)" % DUR,
    ])
    assert bb.read(os.path.join(d, "status")) == ""


@bb.default_signal_state
def test_teardown_on_supervisor_sigkill_run_by_front():
    """The supervisor is SIGKILLed while COMMAND runs: the front stops the
    orphaned tree (a setsid'd grandchild included), then runs the teardown
    (reason cancel, SUPERVISE_EXIT_STATUS=125) and exits 125."""
    d = bb.tmpdir()
    m = os.path.join(d, "marker")
    orphan_f = os.path.join(d, "orphan")
    probe = os.path.join(d, "probe")
    script = ("echo $$ > %s; setsid sh -c 'echo $$ > %s; exec sleep 1000' & wait"
              % (Q(os.path.join(d, "cmd")), Q(orphan_f)))
    td = (ALIVE_FN + "if alive $(cat %s); then echo orphan-alive >> %s; fi; " % (Q(orphan_f), Q(probe))
          + record(m))
    p = start(d, ["-k", "5", "-T", td, "--", "sh", "-c", script])
    cmd = wait_pid_file(os.path.join(d, "cmd"))
    orphan = wait_pid_file(orphan_f)
    sup = bb.supervisor_of(p.pid)
    os.kill(sup, signal.SIGKILL)
    rc = finish(p)
    assert rc == 125, (rc, err(d))
    assert not bb.alive(orphan) and not bb.alive(cmd)
    assert lines(m) == ["cancel|125|killed by SIGKILL|%d" % p.pid], (lines(m), err(d))
    assert bb.read(probe) == "", "the teardown started before the orphan was gone"
    match_lines(err(d), [
        r"supervise: supervisor process %d died \(SIGKILL\); stopping [12] orphaned "
        r"process(es)? with SIGTERM" % sup,
        r"supervise: teardown started \(reason: cancel\)",
        r"supervise: teardown finished in %s \(exit 0\)" % DUR,
    ])


@bb.default_signal_state
def test_teardown_supervisor_sigkill_during_teardown():
    """The supervisor dies while its teardown runs: the front lets it finish
    (its last line is written, its output still reaches stderr), it runs
    once, and the front exits 125."""
    d = bb.tmpdir()
    m = os.path.join(d, "marker")
    p = start(d, ["-k", "5", "-T", gated_teardown(d, m), "--"] + ready_cmd(d))
    wait_pid_file(os.path.join(d, "cmd"))
    sup = bb.supervisor_of(p.pid)
    os.kill(p.pid, signal.SIGTERM)
    bb.wait_for(lambda: lines(m) == ["start"], timeout=30, what="the teardown to start")
    os.kill(sup, signal.SIGKILL)
    wait_line(d, r"supervise: supervisor process %d died \(SIGKILL\) during the "
              r"teardown; the teardown goes on" % sup)
    assert p.poll() is None, "the front left before the teardown ended"
    open_gate(d)
    rc = finish(p)
    assert rc == 125, (rc, err(d))
    assert lines(m) == ["start", "end"], lines(m)
    e = err(d)
    has_line(e, r"teardown-output-after-go")
    has_line(e, r"supervise: teardown finished in %s \(exit 0\)" % DUR)
    assert e.count("teardown started") == 1, e


@bb.default_signal_state
def test_teardown_supervisor_sigkill_keeps_deadline():
    """The front takes over a hanging teardown from a dead supervisor and
    still kills it at its (original) deadline.  On a loaded machine the
    deadline may pass, and the supervisor end by itself, before the
    SIGKILL: then the supervisor's own report is checked and the run is
    tried again."""
    for _ in range(3):
        d = bb.tmpdir()
        m = os.path.join(d, "marker")
        p = start(d, ["-k", "0.3", "--teardown-timeout=2", "-T",
                      "echo start >> %s; sleep 1000" % Q(m), "--"] + ready_cmd(d))
        wait_pid_file(os.path.join(d, "cmd"))
        sup = bb.supervisor_of(p.pid)
        os.kill(p.pid, signal.SIGTERM)
        bb.wait_for(lambda: lines(m) == ["start"], timeout=30, what="the teardown to start")
        killed = bb.try_kill(sup, signal.SIGKILL)
        rc = finish(p)
        head = [
            r"supervise: cancelled by SIGTERM from pid %d; stopping the run with SIGTERM"
            % os.getpid(),
            r"supervise: teardown started \(reason: cancel\)",
        ]
        tail = [
            r"supervise: teardown timed out after 2s; stopping it with SIGTERM",
            r"supervise: teardown timed out in %s \(killed by SIGTERM\)" % DUR,
        ]
        assert lines(m) == ["start"], lines(m)
        if killed:
            assert rc == 125, (rc, err(d))
            match_lines(err(d), head + [
                r"supervise: supervisor process %d died \(SIGKILL\) during the teardown; "
                r"the teardown goes on" % sup] + tail)
            return
        assert rc == 143, (rc, err(d))
        match_lines(err(d), head + tail)
    raise bb.Skip("three times the teardown's deadline (2s) passed before the test "
                  "could SIGKILL the supervisor: too loaded a machine")


@bb.default_signal_state
def test_teardown_supervisor_sigkill_during_stop_keeps_reason():
    """The run timed out; the supervisor is SIGKILLed while it stops the
    tree (COMMAND ignores SIGTERM, long grace): the front runs the teardown
    with the run's reason, timeout (spec: "reason = the run's reason if the
    supervisor had recorded one"), so --teardown-on=timeout runs it."""
    for events in ("timeout", None):
        d = bb.tmpdir()
        m = os.path.join(d, "marker")
        args = ["-t", "0.3", "-k", "20", "-T", record(m)]
        if events:
            args.append("--teardown-on=" + events)
        p = start(d, args + ["--"] + ready_cmd(d, pre="trap '' TERM; "))
        wait_pid_file(os.path.join(d, "cmd"))
        sup = bb.supervisor_of(p.pid)
        wait_line(d, r"supervise: timed out after 300ms; stopping the run with SIGTERM")
        assert bb.try_kill(sup, signal.SIGKILL), \
            "the supervisor ended in its 20s grace, before the SIGKILL: %r" % err(d)
        rc = finish(p)
        assert rc == 125, (rc, err(d))
        assert lines(m) == ["timeout|125|killed by SIGKILL|%d" % p.pid], \
            "--teardown-on=%s: marker %r, stderr:\n%s" % (events, lines(m), err(d))
        match_lines(err(d), [
            r"supervise: timed out after 300ms; stopping the run with SIGTERM",
            r"supervise: supervisor process %d died \(SIGKILL\); (stopping [12] orphaned "
            r"process(es)? with SIGTERM|no orphaned process is left)" % sup,
            r"supervise: teardown started \(reason: timeout\)",
            r"supervise: teardown finished in %s \(exit 0\)" % DUR,
        ])


def _sup_kill_once(i, rng, base):
    d = os.path.join(base, "it%d" % i)
    os.mkdir(d)
    m = os.path.join(d, "marker")
    td = "echo start >> %s; sleep 0.1; echo end >> %s" % (Q(m), Q(m))
    p = start(d, ["-k", "1", "--teardown-on=always", "-T", td, "--", "sh", "-c",
                  "echo $$ > %s; sleep 0.05" % Q(os.path.join(d, "cmd"))])
    try:
        # On a loaded machine the run may be over before the test looks,
        # or before the SIGKILL: then the supervisor ended by itself.
        sup = bb.supervisor_of(p.pid, gone_ok=True)
        cmd = wait_pid_file(os.path.join(d, "cmd"))
        delay = rng.random() * 0.15
        time.sleep(delay)
        # Only while the front runs: the supervisor's pid cannot have been
        # reused yet (the front reaps it just before it exits).
        killed = sup is not None and bb.alive(p.pid) and bb.try_kill(sup, signal.SIGKILL)
        rc = finish(p)
    except BaseException as e:
        p.kill()
        p.wait()
        return ["iteration %d: %s; stderr %r" % (i, e, err(d))]
    out = []
    e = err(d)
    what = ("iteration %d (SIGKILL %s %.0fms after COMMAND started): rc %r, marker %r, "
            "stderr:\n%s" % (i, "sent" if killed else "not sent, the supervisor had ended",
                             delay * 1000, rc, lines(m), e))
    if lines(m) != ["start", "end"]:
        out.append("the teardown did not run exactly once to its end: " + what)
    elif e.count("supervise: teardown started") != 1 and not (
            # SIGKILL during the supervisor's announcement: the line can
            # be lost, and the front says it adopted the teardown.
            killed and e.count("supervise: teardown started") == 0 and
            "died (SIGKILL) during the teardown; the teardown goes on" in e):
        out.append("not one 'teardown started' line: " + what)
    elif rc not in ((0, 125) if killed else (0,)) or "timed out" in e or "failed" in e:
        out.append("unexpected status or report: " + what)
    if bb.alive(cmd):
        out.append("COMMAND %d outlived supervise: %s" % (cmd, what))
    return out


@bb.time_limit(240)
@bb.default_signal_state
def test_teardown_supervisor_sigkill_at_random_moments():
    """The supervisor SIGKILLed at a random moment around the end of the run
    and the start of the teardown (--teardown-on=always): whoever runs it,
    the teardown runs exactly once and to its end, and is not reported as
    failed or timed out."""
    base = bb.tmpdir()
    seed = int(os.environ.get("SUPERVISE_STORM_SEED", str(int(time.time() * 1000))))
    master = random.Random(seed)
    problems = []
    for i in range(0, 80, 4):
        results = {}
        threads = []
        for n in range(i, i + 4):
            rng = random.Random(master.random())

            def job(n=n, rng=rng):
                results[n] = _sup_kill_once(n, rng, base)
            threads.append(threading.Thread(target=job))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for n in sorted(results):
            problems += results[n]
        left = bb.leftovers(timeout=10)
        if left:
            problems.append("after iterations %d-%d: processes left behind: %s" % (i, i + 3, left))
            bb.kill_descendants()
    assert not problems, "seed %d: %d problems, the first:\n%s" % (
        seed, len(problems), "\n".join(problems[:5]))


@bb.default_signal_state
def test_teardown_run_by_front_logs_signals_and_parent_death():
    """When the front has taken over the teardown, it treats what arrives
    as the spec says for the teardown: SIGTERM and SIGALRM logged and
    ignored, the parent's death logged; the teardown completes."""
    d = bb.tmpdir()
    m = os.path.join(d, "marker")
    line = "%s -k 5 -T %s -- %s 2>%s; echo $? > %s" % (
        Q(SUP), Q(gated_teardown(d, m)), " ".join(Q(a) for a in ready_cmd(d)),
        Q(os.path.join(d, "err")), Q(os.path.join(d, "status")))
    sh = subprocess.Popen(["sh", "-c", line], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL)
    front = child_supervise(sh.pid)
    sup = bb.supervisor_of(front)
    wait_pid_file(os.path.join(d, "cmd"))
    os.kill(front, signal.SIGTERM)
    bb.wait_for(lambda: lines(m) == ["start"], timeout=30, what="the teardown to start")
    os.kill(sup, signal.SIGKILL)
    wait_line(d, r"supervise: supervisor process %d died \(SIGKILL\) during the "
              r"teardown; the teardown goes on" % sup)
    try:
        os.kill(front, signal.SIGTERM)
        wait_line(d, r"supervise: SIGTERM during the teardown; ignored")
        os.kill(sh.pid, signal.SIGKILL)
        assert sh.wait(timeout=30) == -signal.SIGKILL
        os.kill(front, signal.SIGALRM)
        time.sleep(0.5)
        assert bb.alive(front)
        problems = []
        for pat in (r"supervise: parent process %d died; the teardown goes on" % sh.pid,
                    r"supervise: SIGALRM during the teardown; ignored"):
            if not re.search("^" + pat + "$", err(d), re.M):
                problems.append(pat)
    finally:
        open_gate(d)
    rc = wait_status(front)
    assert rc == 125, (rc, err(d))
    assert lines(m) == ["start", "end"], lines(m)
    assert not problems, "missing stderr lines %r in:\n%s" % (problems, err(d))


@bb.default_signal_state
def test_teardown_not_after_success_by_default():
    d = bb.tmpdir()
    m = os.path.join(d, "marker")
    p = start(d, ["-T", record(m), "--", "true"])
    assert finish(p) == 0, err(d)
    assert not os.path.exists(m)
    assert err(d) == ""


@bb.default_signal_state
def test_teardown_not_run_when_command_never_started():
    """--parent-pid names a process that has died: parent death before
    COMMAND started -> 129, COMMAND not started, so no teardown (even
    though cancel is in --teardown-on)."""
    d = bb.tmpdir()
    m = os.path.join(d, "marker")
    touched = os.path.join(d, "touched")
    p = start(d, ["--parent-pid=%d" % bb.dead_pid(), "-T", record(m), "--",
                  "touch", touched])
    assert finish(p) == 129, err(d)
    assert not os.path.exists(touched)
    assert not os.path.exists(m), lines(m)


# ------------------------------------------------------------ selections

def _run_sel(events, cmd, timeout=None):
    d = bb.tmpdir()
    m = os.path.join(d, "marker")
    args = ["-k", "5", "-T", record(m)]
    if events is not None:
        args.append("--teardown-on=" + events)
    if timeout:
        args += ["-t", timeout]
    p = start(d, args + ["--"] + cmd)
    rc = finish(p)
    return rc, lines(m), err(d), p.pid


NO_SUCH = "supervise-test-no-such-command"
STARTED_EXIT = r"supervise: teardown started \(reason: exit\)"
FINISHED_0 = r"supervise: teardown finished in %s \(exit 0\)" % DUR

# --teardown-on=EVENTS, COMMAND, -t: the status, the teardown's one
# marker line (its pid left out; None: it did not run) and, unless None,
# stderr line by line ([]: empty).
SELECTIONS = [
    # name, events, COMMAND, -t, status, marker, stderr
    ("always, success", "always", ["true"], None,
     0, "exit|0|exited 0", [STARTED_EXIT, FINISHED_0]),
    ("always, failure", "always", ["sh", "-c", "exit 3"], None,
     3, "exit|3|exited 3", None),
    ("always, timeout", "always", ["sleep", "1000"], "0.2",
     124, "timeout|124|killed by SIGTERM", None),
    ("failure, exit 1", "failure", ["sh", "-c", "exit 1"], None,
     1, "exit|1|exited 1", None),
    ("failure, killed by a signal", "failure", ["sh", "-c", "kill -KILL $$"], None,
     137, "exit|137|killed by SIGKILL", None),
    # Could not be executed: counts as failure, "not started".
    ("failure, not executed", "failure", [NO_SUCH], None,
     127, "exit|127|not started",
     [r"supervise: cannot run '%s': No such file or directory" % NO_SUCH,
      STARTED_EXIT, FINISHED_0]),
    # Not on success, and a timeout is its own event, not a failure.
    ("failure, success", "failure", ["true"], None, 0, None, []),
    ("failure, timeout", "failure", ["sleep", "1000"], "0.2", 124, None, None),
    ("success, success", "success", ["true"], None, 0, "exit|0|exited 0", None),
    ("success, exit 1", "success", ["sh", "-c", "exit 1"], None, 1, None, []),
    ("success, not executed", "success", [NO_SUCH], None, 127, None, None),
    ("success, timeout", "success", ["sleep", "1000"], "0.2", 124, None, None),
    # Only cancel: a timeout does not run it.
    ("cancel, timeout", "cancel", ["sleep", "1000"], "0.2", 124, None, None),
    # timeout,cancel,failure: a failed run does.
    ("timeout,cancel,failure, exit 7", "timeout,cancel,failure", ["sh", "-c", "exit 7"],
     None, 7, "exit|7|exited 7", None),
]


def _check_selection(events, cmd, timeout, rc_want, marker, stderr):
    rc, ml, e, pid = _run_sel(events, cmd, timeout)
    want = [] if marker is None else ["%s|%d" % (marker, pid)]
    assert rc == rc_want and ml == want, (rc, ml, e)
    if stderr is not None:
        match_lines(e, stderr)


@bb.default_signal_state
def test_teardown_on_selections():
    """Which outcomes run the teardown, for each --teardown-on."""
    bb.check_cases(SELECTIONS, _check_selection)


@bb.default_signal_state
def test_teardown_on_timeout_not_on_cancel():
    # Only timeout: a cancel does not run it.
    d = bb.tmpdir()
    m = os.path.join(d, "marker")
    p = start(d, ["-k", "5", "--teardown-on=timeout", "-T", record(m), "--"] + ready_cmd(d))
    wait_pid_file(os.path.join(d, "cmd"))
    os.kill(p.pid, signal.SIGTERM)
    assert finish(p) == 143, err(d)
    assert lines(m) == [], lines(m)


# ------------------------------------------- environment, directory, stdin

@bb.default_signal_state
def test_teardown_environment_and_stdin():
    d = bb.tmpdir()
    work = os.path.join(d, "work")
    os.mkdir(work)
    envf, pwdf, stdinf, sessf, dataf = (os.path.join(d, n) for n in
                                        ("env", "pwd", "stdin", "sess", "data"))
    td = ("cat /proc/$$/environ > %s; pwd -P > %s; readlink /proc/self/fd/0 > %s; cat > %s; "
          "echo $$ $(sed 's/.*) //' /proc/$$/stat | cut -d' ' -f4) > %s"
          % (Q(envf), Q(pwdf), Q(stdinf), Q(dataf), Q(sessf)))
    env = dict(os.environ, SUPERVISE_TEST_CALLER_VAR="hello world",
               SUPERVISE_REASON="stale", SUPERVISE_PID="1")
    # stdin a pipe we keep open: a teardown reading it would hang.
    p = start(d, ["-t", "0.3", "-k", "5", "--teardown-timeout=30", "-T", td,
                  "--", "sleep", "1000"], stdin=subprocess.PIPE, cwd=work, env=env)
    try:
        rc = finish(p)
    finally:
        p.stdin.close()
    assert rc == 124, (rc, err(d))
    has_line(err(d), r"supervise: teardown finished in %s \(exit 0\)" % DUR)
    # The environment exactly as supervise gave it (before sh reads it).
    with open(envf, "rb") as f:
        entries = [x.decode(errors="replace") for x in f.read().split(b"\0") if x]
    got = [ln for ln in entries if ln.startswith("SUPERVISE_")]
    vals = {}
    for ln in entries:
        k, _, v = ln.partition("=")
        vals.setdefault(k, []).append(v)
    assert vals.get("SUPERVISE_REASON") == ["timeout"], got
    assert vals.get("SUPERVISE_EXIT_STATUS") == ["124"], got
    assert vals.get("SUPERVISE_COMMAND_STATUS") == ["killed by SIGTERM"], got
    assert vals.get("SUPERVISE_PID") == [str(p.pid)], (got, p.pid)
    assert vals.get("SUPERVISE_TEST_CALLER_VAR") == ["hello world"], got
    assert vals.get("PATH") == [os.environ["PATH"]]
    assert bb.read(pwdf).strip() == os.path.realpath(work)
    assert bb.read(stdinf).strip() == "/dev/null"
    assert bb.read(dataf) == ""
    pid, sid = bb.read(sessf).split()
    assert pid == sid, "the teardown is not in a session of its own: %s" % bb.read(sessf)


@bb.default_signal_state
def test_teardown_cwd_is_root_when_start_dir_removed():
    d = bb.tmpdir()
    work = os.path.join(d, "work")
    os.mkdir(work)
    with open(os.path.join(work, "some-file"), "w") as f:
        f.write("x\n")
    m = os.path.join(d, "marker")
    script = "cd / && rm -rf %s && echo $$ > %s; exec sleep 1000" % (
        Q(work), Q(os.path.join(d, "cmd")))
    p = start(d, ["-k", "5", "-T", "pwd -P >> %s" % Q(m), "--", "sh", "-c", script], cwd=work)
    wait_pid_file(os.path.join(d, "cmd"))
    assert not os.path.exists(work)
    os.kill(p.pid, signal.SIGTERM)
    rc = finish(p)
    assert rc == 143, (rc, err(d))
    assert lines(m) == ["/"], (lines(m), err(d))
    has_line(err(d), r"supervise: teardown finished in %s \(exit 0\)" % DUR)


# ---------------------------------------------------- ordering and bounds

@bb.default_signal_state
def test_teardown_starts_after_whole_tree_gone():
    """COMMAND's tree has a TERM-ignoring setsid grandchild that writes
    "alive" every 50 ms: the teardown starts only once it is dead (its pid
    is not alive, and the file does not grow in the next 300 ms)."""
    d = bb.tmpdir()
    m = os.path.join(d, "marker")
    alive_f, gpid_f, probe = (os.path.join(d, n) for n in ("alive", "gpid", "probe"))
    inner = ("trap '' TERM; echo $$ > %s; while :; do echo alive >> %s; sleep 0.05; done"
             % (Q(gpid_f), Q(alive_f)))
    script = "(setsid sh -c %s &); echo $$ > %s; exec sleep 1000" % (
        Q(inner), Q(os.path.join(d, "cmd")))
    td = (ALIVE_FN +
          "g=$(cat %s); if alive $g; then st=alive; else st=dead; fi; "
          "s1=$(stat -c %%s %s); sleep 0.3; s2=$(stat -c %%s %s); "
          "echo \"$st $s1 $s2\" > %s; " % (Q(gpid_f), Q(alive_f), Q(alive_f), Q(probe))
          + record(m))
    p = start(d, ["-k", "0.5", "-T", td, "--", "sh", "-c", script])
    wait_pid_file(os.path.join(d, "cmd"))
    g = wait_pid_file(gpid_f)
    bb.wait_for(lambda: len(lines(alive_f)) >= 3, what="the grandchild to write")
    os.kill(p.pid, signal.SIGTERM)
    rc = finish(p)
    assert rc == 143, (rc, err(d))
    assert not bb.alive(g)
    assert lines(m) == ["cancel|143|killed by SIGTERM|%d" % p.pid], lines(m)
    st, s1, s2 = bb.read(probe).split()
    assert st == "dead", "the grandchild %d was alive when the teardown started" % g
    assert s1 == s2, "the grandchild wrote during the teardown (%s -> %s bytes)" % (s1, s2)
    match_lines(err(d), [
        r"supervise: cancelled by SIGTERM from pid %d; stopping the run with SIGTERM" % os.getpid(),
        r"supervise: grace of 500ms over; sending SIGKILL to \d+ process(es)?",
        r"supervise: teardown started \(reason: cancel\)",
        r"supervise: teardown finished in %s \(exit 0\)" % DUR,
    ])


@bb.default_signal_state
def test_teardown_hanging_is_killed_at_deadline():
    d = bb.tmpdir()
    tpid_f, tg_f = os.path.join(d, "tpid"), os.path.join(d, "tgpid")
    td = ("echo $$ > %s; setsid sh -c \"trap '' TERM; echo \\$\\$ > %s; exec sleep 1000\" & "
          "while [ ! -s %s ]; do sleep 0.01; done; sleep 1000" % (Q(tpid_f), Q(tg_f), Q(tg_f)))
    p = start(d, ["-t", "0.2", "-k", "0.5", "--teardown-timeout=1", "-T", td,
                  "--", "sleep", "1000"])
    rc = finish(p)
    tpid, tg = bb.pids_in(tpid_f), bb.pids_in(tg_f)
    assert tpid and tg, "the teardown did not start its grandchild: %r" % err(d)
    # Nothing of the teardown outlives supervise.
    assert not bb.alive(tpid[0]) and not bb.alive(tg[0]), "the teardown's tree outlived supervise"
    assert rc == 124, (rc, err(d))
    match_lines(err(d), [
        r"supervise: timed out after 200ms; stopping the run with SIGTERM",
        r"supervise: teardown started \(reason: timeout\)",
        r"supervise: teardown timed out after 1s; stopping it with SIGTERM",
        r"supervise: teardown timed out in %s \(killed by SIGTERM\)" % DUR,
    ])


@bb.default_signal_state
def test_teardown_hanging_after_success_gives_123():
    d = bb.tmpdir()
    p = start(d, ["-k", "0.2", "--teardown-on=success", "--teardown-timeout=0.5",
                  "-T", "trap '' TERM; sleep 1000", "--", "true"])
    rc = finish(p)
    assert rc == 123, (rc, err(d))
    match_lines(err(d), [
        r"supervise: teardown started \(reason: exit\)",
        r"supervise: teardown timed out after 500ms; stopping it with SIGTERM",
        # SIGKILL unless the deadline came before its trap (a loaded machine).
        r"supervise: teardown timed out in %s \(killed by SIG(KILL|TERM)\)" % DUR,
    ])


@bb.default_signal_state
def test_teardown_failure_reported_and_status():
    def check(args, rc_want, stderr, whole):
        d = bb.tmpdir()
        rc = finish(start(d, args))
        assert rc == rc_want, (rc, err(d))
        if whole:
            match_lines(err(d), stderr)
        else:
            has_line(err(d), stderr[0])
    bb.check_cases([
        # name, arguments, status, stderr: the whole of it, or a line in it
        ("a successful run whose teardown fails: 123",
         ["--teardown-on=success", "-T", "echo oops; exit 3", "--", "true"], 123,
         [r"supervise: teardown started \(reason: exit\)", r"oops",
          r"supervise: teardown failed in %s \(exit 3\)" % DUR], True),
        ("killed by a signal is a failure too",
         ["--teardown-on=success", "-T", "kill -KILL $$", "--", "true"], 123,
         [r"supervise: teardown failed in %s \(killed by SIGKILL\)" % DUR], False),
        ("a failed run keeps its own status",
         ["--teardown-on=failure", "-T", "exit 4", "--", "sh", "-c", "exit 5"], 5,
         [r"supervise: teardown started \(reason: exit\)",
          r"supervise: teardown failed in %s \(exit 4\)" % DUR], True),
        ("so does a timed-out one",
         ["-t", "0.2", "-T", "exit 4", "--", "sleep", "1000"], 124,
         [r"supervise: teardown failed in %s \(exit 4\)" % DUR], False),
    ], check)


@bb.default_signal_state
def test_teardown_leftovers_stopped_when_main_exits():
    d = bb.tmpdir()
    m = os.path.join(d, "marker")
    bg1, bg2 = os.path.join(d, "bg1"), os.path.join(d, "bg2")
    # A plain background child, and a setsid'd one that ignores SIGTERM.
    td = ("sleep 1000 & echo $! > %s; "
          "setsid sh -c \"trap '' TERM; echo \\$\\$ > %s; exec sleep 1000\" & "
          "i=0; while [ ! -s %s ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done; "
          "echo done >> %s" % (Q(bg1), Q(bg2), Q(bg2), Q(m)))
    p = start(d, ["-t", "0.2", "-k", "0.5", "-T", td, "--", "sleep", "1000"])
    rc = finish(p)
    assert rc == 124, (rc, err(d))
    assert lines(m) == ["done"]
    pids = bb.pids_in(bg1) + bb.pids_in(bg2)
    assert len(pids) == 2, pids
    assert not [x for x in pids if bb.alive(x)], "teardown leftovers outlived supervise"
    match_lines(err(d), [
        r"supervise: timed out after 200ms; stopping the run with SIGTERM",
        r"supervise: teardown started \(reason: timeout\)",
        r"supervise: teardown finished in %s \(exit 0\)" % DUR,
    ])


@bb.default_signal_state
def test_teardown_survives_broken_stderr():
    """supervise's stderr is a pipe whose reader is gone: a teardown that
    writes a lot still completes, supervise exits with the run's status,
    and the log file gets all of the output."""
    d = bb.tmpdir()
    m, log = os.path.join(d, "marker"), os.path.join(d, "log")
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.Popen([SUP, "-t", "0.2", "-k", "5", "--teardown-log", log,
                              "-T", "seq 1 200000; seq 1 200000 >&2; echo done >> %s" % Q(m),
                              "--", "sleep", "1000"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=w)
    finally:
        os.close(w)
    rc = finish(p)
    assert rc == 124, rc
    assert lines(m) == ["done"], lines(m)
    ll = lines(log)
    assert ll.count("200000") == 2, "the log lost output (%d lines)" % len(ll)
    assert re.fullmatch(r"supervise: teardown finished in %s \(exit 0\)" % DUR, ll[-1]), ll[-1]


@bb.default_signal_state
def test_teardown_quiet():
    d = bb.tmpdir()
    m = os.path.join(d, "marker")
    p = start(d, ["-q", "-t", "0.2", "-T", record(m), "--", "sleep", "1000"])
    assert finish(p) == 124, err(d)
    assert lines(m) == ["timeout|124|killed by SIGTERM|%d" % p.pid]
    assert err(d) == "", err(d)
    # Failures are not hidden.
    p = start(d, ["-q", "--teardown-on=success", "-T", "exit 3", "--", "true"])
    assert finish(p) == 123, err(d)
    match_lines(err(d), [r"supervise: teardown failed in %s \(exit 3\)" % DUR])
    p = start(d, ["-q", "-k", "0.2", "--teardown-on=success", "--teardown-timeout=0.3",
                  "-T", "sleep 1000", "--", "true"])
    assert finish(p) == 123, err(d)
    match_lines(err(d), [
        r"supervise: teardown timed out after 300ms; stopping it with SIGTERM",
        r"supervise: teardown timed out in %s \(killed by SIGTERM\)" % DUR,
    ])


# ------------------------------------------------ signals during the teardown

@bb.default_signal_state
def test_teardown_signals_during_teardown_ignored():
    d = bb.tmpdir()
    m = os.path.join(d, "marker")
    p = start(d, ["-k", "5", "-T", gated_teardown(d, m), "--"] + ready_cmd(d))
    wait_pid_file(os.path.join(d, "cmd"))
    os.kill(p.pid, signal.SIGTERM)
    bb.wait_for(lambda: lines(m) == ["start"], timeout=30, what="the teardown to start")
    os.kill(p.pid, signal.SIGTERM)
    wait_line(d, r"supervise: SIGTERM during the teardown; ignored")
    os.kill(p.pid, signal.SIGINT)
    wait_line(d, r"supervise: SIGINT during the teardown; ignored")
    os.kill(p.pid, signal.SIGALRM)
    wait_line(d, r"supervise: SIGALRM during the teardown; ignored")
    assert p.poll() is None
    open_gate(d)
    rc = finish(p)
    assert rc == 143, (rc, err(d))
    assert lines(m) == ["start", "end"], lines(m)
    match_lines(err(d), [
        r"supervise: cancelled by SIGTERM from pid %d; stopping the run with SIGTERM" % os.getpid(),
        r"supervise: teardown started \(reason: cancel\)",
        r"supervise: SIGTERM during the teardown; ignored",
        r"supervise: SIGINT during the teardown; ignored",
        r"supervise: SIGALRM during the teardown; ignored",
        r"teardown-output-after-go",
        r"supervise: teardown finished in %s \(exit 0\)" % DUR,
    ])


@bb.default_signal_state
def test_teardown_parent_death_during_teardown():
    d = bb.tmpdir()
    m = os.path.join(d, "marker")
    line = "%s -k 5 -T %s -- %s 2>%s; echo $? > %s" % (
        Q(SUP), Q(gated_teardown(d, m)), " ".join(Q(a) for a in ready_cmd(d)),
        Q(os.path.join(d, "err")), Q(os.path.join(d, "status")))
    sh = subprocess.Popen(["sh", "-c", line], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL)
    front = child_supervise(sh.pid)
    wait_pid_file(os.path.join(d, "cmd"))
    os.kill(front, signal.SIGTERM)
    bb.wait_for(lambda: lines(m) == ["start"], timeout=30, what="the teardown to start")
    os.kill(sh.pid, signal.SIGKILL)
    assert sh.wait(timeout=30) == -signal.SIGKILL
    wait_line(d, r"supervise: parent process %d died; the teardown goes on" % sh.pid)
    open_gate(d)
    rc = wait_status(front)
    assert rc == 143, (rc, err(d))
    assert lines(m) == ["start", "end"], lines(m)
    has_line(err(d), r"supervise: teardown finished in %s \(exit 0\)" % DUR)


# ------------------------------------------------------------ the log file

@bb.default_signal_state
def test_teardown_log_content_appended():
    d = bb.tmpdir()
    log = os.path.join(d, "td.log")
    umask = lambda: os.umask(0o022)  # noqa: E731
    t0 = time.time()
    p1 = start(d, ["-t", "0.2", "-k", "5", "--teardown-log=" + log,
                   "-T", "echo first-out; echo first-err >&2", "--", "sleep", "1000"],
               preexec_fn=umask)
    assert finish(p1) == 124, err(d)
    assert os.stat(log).st_mode & 0o777 == 0o644, oct(os.stat(log).st_mode)
    p2 = start(d, ["-k", "5", "--teardown-log=" + log, "-T", "echo second-out; exit 2",
                   "--"] + ready_cmd(d))
    wait_pid_file(os.path.join(d, "cmd"))
    os.kill(p2.pid, signal.SIGTERM)
    assert finish(p2) == 143, err(d)
    t1 = time.time()
    ll = lines(log)
    ts = r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"
    pats = [
        r"supervise: teardown started at %s \(reason: timeout, pid %d, command killed by SIGTERM\)"
        % (ts, p1.pid),
        r"first-(out|err)",
        r"first-(out|err)",
        r"supervise: teardown finished in %s \(exit 0\)" % DUR,
        r"supervise: teardown started at %s \(reason: cancel, pid %d, command killed by SIGTERM\)"
        % (ts, p2.pid),
        r"second-out",
        r"supervise: teardown failed in %s \(exit 2\)" % DUR,
    ]
    match_lines("\n".join(ll), pats)
    assert sorted(ll[1:3]) == ["first-err", "first-out"], ll
    for i in (0, 4):
        stamp = re.search(ts, ll[i]).group(1)
        t = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
        assert t0 - 2 <= t <= t1 + 2, "timestamp %s is not the time (UTC) of the run" % stamp
    # What goes to the log also goes to stderr.
    has_line(err(d), r"second-out")


@bb.default_signal_state
def test_teardown_log_unopenable():
    d = bb.tmpdir()
    log = os.path.join(d, "no-such-dir", "td.log")
    touched = os.path.join(d, "touched")
    r = bb.run(["--teardown-log=" + log, "-T", "true", "--", "touch", touched])
    assert r.rc == 125, r
    assert r.err == "supervise: cannot open teardown log '%s': No such file or directory\n" % log, r
    assert not os.path.exists(touched), "COMMAND ran"


@bb.default_signal_state
def test_teardown_on_bad_event_words():
    d = bb.tmpdir()
    touched = os.path.join(d, "touched")

    def check(opt, word):
        r = bb.run(opt + ["-T", "true", "--", "touch", touched])
        assert r.rc == 125, r
        assert r.err == ("supervise: invalid teardown event '%s'\n" % word +
                         bb.TRY_HELP), r
        assert not os.path.exists(touched), "COMMAND ran"
    bb.check_cases([
        # name, option, the word the message names
        ("bogus", ["--teardown-on=bogus"], "bogus"),
        ("empty word inside", ["--teardown-on=timeout,,cancel"], ""),
        ("empty", ["--teardown-on="], ""),
        ("bogus after a good one", ["--teardown-on=timeout,bogus"], "bogus"),
        ("trailing comma", ["--teardown-on=timeout,"], ""),
        ("case matters", ["--teardown-on=Timeout"], "Timeout"),
        ("separate argument", ["--teardown-on", "bogus"], "bogus"),
    ], check)


# ------------------------------------------------------------ signal storm

STORM_SIGS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM, signal.SIGUSR1)
STORM_ITERATIONS = 200
STORM_PARALLEL = 4
REASON_OF = {124: "timeout", 129: "cancel", 130: "cancel", 143: "cancel", 0: "exit"}
# Every line supervise may print in the storm (anything else is a failure).
# The core's own stop messages are matched loosely (their wording is the
# core tests' business); the teardown's exactly.
STORM_OK = [
    r"supervise: timed out .*; stopping the run with SIG(TERM|KILL)",
    r"supervise: cancelled by SIG(TERM|INT|HUP)( from pid \d+)?; stopping the run with SIG(TERM|KILL)",
    r"supervise: SIG(TERM|INT|HUP) again; sending SIGKILL to \d+ process(es)? now",
    r"supervise: SIG(TERM|INT|HUP|ALRM) while stopping; ignored",
    r"supervise: grace of .* over; sending SIGKILL to \d+ process(es)?",
    r"supervise: command exited; stopping \d+ leftover process(es)? with SIGTERM",
    r"supervise: SIG(TERM|INT|HUP|ALRM) during the teardown; ignored",
    r"supervise: teardown started \(reason: (timeout|cancel|exit)\)",
    r"supervise: teardown finished in %s \(exit 0\)" % DUR,
]


def _storm_once(i, rng, base):
    """One run under a storm of signals; returns a list of problems."""
    d = os.path.join(base, "it%d" % i)
    os.mkdir(d)
    m = os.path.join(d, "marker")
    cmdf = os.path.join(d, "cmd")
    kind = i % 4
    td = "sleep 0.%03d; %s" % (rng.randint(0, 50), record(m))
    ign_term = "trap '' TERM; " if rng.random() < 0.3 else ""
    args = ["-k", "0.1", "-T", td]
    if kind == 0:
        # Default events; COMMAND runs until stopped: always due.
        if rng.random() < 0.6:
            args += ["-t", "0.%03d" % rng.randint(20, 400)]
        script = "trap '' USR1; %secho $$ > %s; exec sleep 1000" % (ign_term, Q(cmdf))
        ok_rc = {124, 129, 130, 143}
    elif kind == 1:
        # Only timeout: due exactly when the timeout (or SIGALRM) ended it.
        args += ["--teardown-on=timeout", "-t", "0.%03d" % rng.randint(20, 400)]
        script = "trap '' USR1; %secho $$ > %s; exec sleep 1000" % (ign_term, Q(cmdf))
        ok_rc = {124, 129, 130, 143}
    elif kind == 2:
        # always; COMMAND may exit 0 by itself while signals fly: always due.
        if rng.random() < 0.5:
            args += ["-t", "0.%03d" % rng.randint(20, 400)]
        args.append("--teardown-on=always")
        script = "trap '' USR1; %secho $$ > %s; sleep 0.%03d; exit 0" % (
            ign_term, Q(cmdf), rng.randint(0, 200))
        ok_rc = {0, 124, 129, 130, 143}
    else:
        # Only timeout; COMMAND exits 0 leaving a TERM-ignoring leftover,
        # and the storm starts once supervise has said so (the run has
        # ended by itself): never due, status 0.
        args += ["-k", "0.3", "--teardown-on=timeout", "-t", "30"]
        lf = Q(os.path.join(d, "leftover"))
        script = ("trap '' USR1; sh -c \"trap '' TERM; echo > %s; exec sleep 1000\" & "
                  "i=0; while [ ! -e %s ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done; "
                  "echo $$ > %s; exit 0" % (lf, lf, Q(cmdf)))
        ok_rc = {0}
    errname = "err"
    p = start(d, args + ["--", "sh", "-c", script], err_name=errname)
    problems = []
    try:
        if kind == 3:
            wait_line(d, r"supervise: command exited; stopping 1 leftover process with SIGTERM")
        # COMMAND has started, unless a short timeout ended the run first.
        bb.wait_for(lambda: bb.pids_in(cmdf) or bb.proc_state(p.pid) in (None, "Z"),
                    timeout=30, what="COMMAND to start")
        cmd = (bb.pids_in(cmdf) or [None])[0]
        time.sleep(rng.random() * 0.15)
        gap = rng.choice((0.002, 0.01, 0.03, 0.08))
        sent = []
        while True:
            s = rng.choice(STORM_SIGS)
            if not bb.try_kill(p, s):
                break       # supervise has exited
            sent.append(signal.Signals(s).name[3:])
            time.sleep(rng.random() * gap)
        rc = finish(p)
    except BaseException as e:
        p.kill()
        p.wait()
        return ["iteration %d (kind %d): %s; stderr %r" % (i, kind, e, err(d))]
    ml = lines(m)
    e = err(d)
    what = "iteration %d (kind %d, args %r, sent %s): rc %r, marker %r, stderr:\n%s" % (
        i, kind, args, ",".join(sent), rc, ml, e)
    if rc not in ok_rc:
        problems.append("unexpected status: " + what)
    if kind == 1:
        due = rc == 124
    elif kind == 3:
        due = False
    else:
        due = True
    if due:
        want = ["%s|%d|" % (REASON_OF.get(rc, "?"), rc)]
        if len(ml) != 1 or not ml[0].startswith(want[0]) or not ml[0].endswith("|%d" % p.pid):
            problems.append("expected one teardown %s...: %s" % (want[0], what))
    elif ml:
        problems.append("teardown ran though not due: " + what)
    if e.count("teardown started") != len(ml):
        problems.append("'teardown started' lines do not match the runs: " + what)
    # supervise's own lines (COMMAND's sh may say "Killed" about its sleep).
    bad = [ln for ln in e.splitlines() if ln.startswith("supervise")
           and not any(re.fullmatch(pat, ln) for pat in STORM_OK)]
    if bad:
        problems.append("unexpected stderr lines %r: %s" % (bad, what))
    if cmd is not None and bb.alive(cmd):
        problems.append("COMMAND %d outlived supervise: %s" % (cmd, what))
    return problems


@bb.time_limit(300)
@bb.default_signal_state
def test_teardown_signal_storm():
    """TERM, INT, HUP, ALRM and USR1 at random moments to the front, from
    the run until supervise exits (across the stop and the teardown), 200
    runs in batches of 4: exactly one teardown when due, none when not,
    only documented statuses and messages, nothing left behind."""
    base = bb.tmpdir()
    seed = int(os.environ.get("SUPERVISE_STORM_SEED", str(int(time.time() * 1000))))
    master = random.Random(seed)
    problems = []
    i = 0
    t0 = time.monotonic()
    while i < STORM_ITERATIONS:
        batch = []
        results = {}
        for k in range(STORM_PARALLEL):
            n = i + k
            rng = random.Random(master.random())

            def job(n=n, rng=rng):
                results[n] = _storm_once(n, rng, base)
            batch.append(threading.Thread(target=job))
        for t in batch:
            t.start()
        for t in batch:
            t.join()
        for n in sorted(results):
            problems += results[n]
        left = bb.leftovers(timeout=10)
        if left:
            problems.append("after iterations %d-%d: processes left behind: %s"
                            % (i, i + STORM_PARALLEL - 1, left))
            bb.kill_descendants()
        i += STORM_PARALLEL
        if len(problems) > 10:
            break
    assert not problems, "seed %d, %d iterations in %.0fs:\n%s" % (
        seed, i, time.monotonic() - t0, "\n".join(problems[:10]))
