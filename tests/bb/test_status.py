"""Black-box tests of supervise's status record (--status-file): see the
"STATUS FILE" section of the man page.

Every record is parsed strictly and validated against the schema
(bb.read_status()), and every field is checked (check_record()): exact
key set, types, and values against what the test knows independently
(the front's pid from Popen, COMMAND's pid from a file COMMAND wrote
itself, the exit status supervise returned, the wall clock around the
run).

Timing is never asserted as an upper bound on speed: conditions are polled
with generous bounds; the only timing asserted are lower bounds (a lock
that was waited for shows at least the wait) and that the record's times
lie within the wall-clock interval around the run (with slack).
"""
import calendar
import fcntl
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import threading
import time

import bb
from runner_lib import child_supervise, wait_status

SUP = bb.SUPERVISE
Q = shlex.quote
TIME_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
KEYS = {"version", "supervise_version", "command", "pid", "command_pid",
        "started_at", "ended_at", "duration_s", "reason", "signal",
        "exit_status", "command_status", "stop", "teardown", "locks",
        "output_dropped_bytes", "cause", "containment"}
REASONS = {"exit", "timeout", "cancel", "parent-death", "hangup", "lock-timeout",
           "lock-lost",
           "exec-failed", "error"}
# Slack (seconds) for comparing the record's times with the wall clock.
CLOCK_SLACK = 1.0


def _version():
    out = subprocess.run([SUP, "--version"], capture_output=True, text=True).stdout
    m = re.fullmatch(r"supervise (\S+)\n", out)
    assert m, "unexpected --version output %r" % out
    return m.group(1)


# ---------------------------------------------------------------- helpers


def start(d, args, err_name="err", **kw):
    """Starts supervise ARGS with stderr to d/err_name; returns the Popen."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("stdout", subprocess.DEVNULL)
    with open(os.path.join(d, err_name), "w") as ef:
        return subprocess.Popen([SUP] + list(args), stderr=ef, **kw)


def err(d, name="err"):
    return bb.read(os.path.join(d, name))


def finish(p, timeout=60):
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("supervise did not exit within %ds" % timeout)


def wait_pid_file(path, timeout=30):
    return bb.wait_for(lambda: (bb.pids_in(path) or [None])[0], timeout=timeout,
                       what="a pid in %s" % path)


def wait_line(d, pattern, name="err", timeout=30):
    return bb.wait_for(lambda: re.search("^" + pattern + "$", err(d, name), re.M),
                       timeout=timeout,
                       what="stderr line %r (have %r)" % (pattern, err(d, name)))


def load(path):
    """The record at path, parsed strictly (raw control characters in
    strings, NaN and the like are errors) and validated against the
    schema (bb.read_status())."""
    return bb.read_status(path)


def parse_time(s):
    """Seconds since the epoch of an RFC 3339 UTC time with milliseconds."""
    assert isinstance(s, str) and re.fullmatch(TIME_RE, s), "bad time %r" % (s,)
    t = time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) + int(s[20:23]) / 1000.0


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_record(rec, *, command, pid, command_pid, reason, signal_name,
                 exit_status, command_status, stop, teardown, locks,
                 t_before, t_after, dropped=0, cause=None):
    """Checks every field of a parsed record.

    command_pid: the pid COMMAND wrote (it really was COMMAND), or None.
    stop / teardown: None, or a dict of the exact expected values, where a
    value may be a callable (a predicate) instead; teardown's duration_s is
    checked for type always, against a predicate if one is given.
    locks: list of (path, predicate on wait_s), or a callable that checks
    the whole list.
    t_before/t_after: wall clock (time.time()) before starting supervise
    and after it ended.
    """
    assert set(rec) == KEYS, "keys differ: extra %s, missing %s" % (
        sorted(set(rec) - KEYS), sorted(KEYS - set(rec)))
    assert is_int(rec["version"]) and rec["version"] == 1, rec["version"]
    assert rec["supervise_version"] == VERSION, (rec["supervise_version"], VERSION)
    assert rec["command"] == list(command), (rec["command"], command)
    assert is_int(rec["pid"]) and rec["pid"] == pid, (rec["pid"], pid)
    if command_pid is None:
        assert rec["command_pid"] is None, rec["command_pid"]
    else:
        assert is_int(rec["command_pid"]) and rec["command_pid"] == command_pid, \
            (rec["command_pid"], command_pid)
    started = parse_time(rec["started_at"])
    ended = parse_time(rec["ended_at"])
    assert ended >= started, (rec["started_at"], rec["ended_at"])
    assert started >= t_before - CLOCK_SLACK, (rec["started_at"], t_before)
    assert ended <= t_after + CLOCK_SLACK, (rec["ended_at"], t_after)
    dur = rec["duration_s"]
    assert is_num(dur) and dur >= 0, dur
    assert dur <= (t_after - t_before) + CLOCK_SLACK, (dur, t_after - t_before)
    assert abs(dur - (ended - started)) <= CLOCK_SLACK, (dur, ended - started)
    assert rec["reason"] in REASONS and rec["reason"] == reason, (rec["reason"], reason)
    assert rec["signal"] == signal_name, (rec["signal"], signal_name)
    assert is_int(rec["exit_status"]) and rec["exit_status"] == exit_status, \
        (rec["exit_status"], exit_status)
    cs = rec["command_status"]
    if command_status is None:
        assert cs is None, cs
    else:
        assert isinstance(cs, dict) and len(cs) == 1 and set(cs) <= {"exited", "signaled"}, cs
        if "exited" in cs:
            assert is_int(cs["exited"]), cs
        else:
            assert isinstance(cs["signaled"], str) and cs["signaled"].startswith("SIG"), cs
        assert cs == command_status, (cs, command_status)
    st = rec["stop"]
    if stop is None:
        assert st is None, st
    else:
        assert isinstance(st, dict) and set(st) == {
            "signal", "escalated_to_kill", "processes_signaled", "leftovers",
            "unstoppable"}, st
        assert isinstance(st["signal"], str), st
        assert isinstance(st["escalated_to_kill"], bool), st
        assert is_int(st["processes_signaled"]) and st["processes_signaled"] >= 1, st
        assert is_int(st["leftovers"]) and st["leftovers"] >= 0, st
        assert is_int(st["unstoppable"]) and st["unstoppable"] >= 0, st
        _match(st, stop, "stop")
    td = rec["teardown"]
    if teardown is None:
        assert td is None, td
    else:
        assert isinstance(td, dict) and set(td) == {
            "reason", "exit", "signaled", "timed_out", "duration_s"}, td
        assert isinstance(td["reason"], str), td
        assert td["exit"] is None or is_int(td["exit"]), td
        assert td["signaled"] is None or isinstance(td["signaled"], str), td
        assert (td["exit"] is None) != (td["signaled"] is None), td
        assert isinstance(td["timed_out"], bool), td
        assert is_num(td["duration_s"]) and 0 <= td["duration_s"] <= dur, td
        _match(td, teardown, "teardown")
    assert rec["output_dropped_bytes"] == dropped, rec["output_dropped_bytes"]
    assert rec["cause"] == cause, (rec["cause"], cause)
    assert rec["containment"] in ("cgroup", "sweep"), rec["containment"]
    lk = rec["locks"]
    if callable(locks):
        assert locks(lk)
        return
    assert isinstance(lk, list) and len(lk) == len(locks), (lk, locks)
    for got, (path, wait_ok) in zip(lk, locks):
        assert isinstance(got, dict) and set(got) == {"path", "wait_s"}, got
        assert got["path"] == path, (got, path)
        assert is_num(got["wait_s"]) and got["wait_s"] >= 0 and wait_ok(got["wait_s"]), got


def _match(got, want, what):
    for k, v in want.items():
        if callable(v):
            assert v(got[k]), "%s.%s = %r is wrong (record: %r)" % (what, k, got[k], got)
        else:
            assert got[k] == v and type(got[k]) is type(v), \
                "%s.%s = %r, expected %r (record: %r)" % (what, k, got[k], v, got)


def any_wait(w):
    return True


def small_wait(w):
    """A lock that was free: no real wait (generous bound)."""
    return w < 5


VERSION = _version()


def sh_pid_cmd(d, body, name="cmd"):
    """COMMAND: sh -c that writes its pid ($$) to d/NAME, then BODY."""
    return ["sh", "-c", "echo $$ > %s; %s" % (Q(os.path.join(d, name)), body)]


# ---------------------------------------------------------------- reason: exit

@bb.default_signal_state
def test_status_reason_exit():
    """COMMAND exits 3 by itself; two uncontended locks, given relative and
    in reverse order: listed in canonical order, as given."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    cmd = sh_pid_cmd(d, "exit 3")
    t0 = time.time()
    p = start(d, ["--status-file=" + f, "-l", "lk-b", "-l", "lk-a", "--"] + cmd, cwd=d)
    rc = finish(p)
    t1 = time.time()
    assert rc == 3, (rc, err(d))
    assert err(d) == "", err(d)
    check_record(load(f), command=cmd, pid=p.pid,
                 command_pid=bb.pids_in(os.path.join(d, "cmd"))[0],
                 reason="exit", signal_name=None, exit_status=3,
                 command_status={"exited": 3}, stop=None, teardown=None,
                 locks=[("lk-a", small_wait), ("lk-b", small_wait)],
                 t_before=t0, t_after=t1)
    assert sorted(os.listdir(d)) == ["cmd", "err", "lk-a", "lk-b", "status.json"], os.listdir(d)


@bb.default_signal_state
def test_status_reason_exit_killed_by_signal():
    """COMMAND kills itself with SIGKILL: reason exit, 137, nothing stopped."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    cmd = sh_pid_cmd(d, "kill -KILL $$")
    t0 = time.time()
    p = start(d, ["--status-file", f, "--"] + cmd)
    rc = finish(p)
    t1 = time.time()
    assert rc == 137, (rc, err(d))
    check_record(load(f), command=cmd, pid=p.pid,
                 command_pid=bb.pids_in(os.path.join(d, "cmd"))[0],
                 reason="exit", signal_name=None, exit_status=137,
                 command_status={"signaled": "SIGKILL"}, stop=None, teardown=None,
                 locks=[], t_before=t0, t_after=t1)


@bb.default_signal_state
def test_status_reason_exit_leftovers_and_teardown():
    """COMMAND exits 0 leaving two children: they are stopped with the stop
    signal (-s HUP) and counted as leftovers; the teardown (on success)
    fails with exit 4, so supervise exits 123."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    cmd = sh_pid_cmd(d, "sleep 1000 & echo $! > %s; sleep 1000 & echo $! >> %s; exit 0"
                     % (Q(os.path.join(d, "kids")), Q(os.path.join(d, "kids"))))
    t0 = time.time()
    p = start(d, ["--status-file=" + f, "-s", "HUP", "-k", "30", "-T", "exit 4",
                  "--teardown-on=success", "--"] + cmd)
    rc = finish(p)
    t1 = time.time()
    assert rc == 123, (rc, err(d))
    kids = bb.pids_in(os.path.join(d, "kids"))
    assert len(kids) == 2, kids
    bb.assert_gone(kids)
    check_record(load(f), command=cmd, pid=p.pid,
                 command_pid=bb.pids_in(os.path.join(d, "cmd"))[0],
                 reason="exit", signal_name=None, exit_status=123,
                 command_status={"exited": 0},
                 stop={"signal": "SIGHUP", "escalated_to_kill": False,
                       "processes_signaled": 2, "leftovers": 2},
                 teardown={"reason": "exit", "exit": 4, "signaled": None,
                           "timed_out": False},
                 locks=[], t_before=t0, t_after=t1)


@bb.default_signal_state
def test_status_reason_exit_foreground():
    """--foreground: the one process writes the record; pid is its pid."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    cmd = sh_pid_cmd(d, "exit 0")
    t0 = time.time()
    p = start(d, ["--foreground", "--status-file=" + f, "--"] + cmd)
    rc = finish(p)
    t1 = time.time()
    assert rc == 0, (rc, err(d))
    check_record(load(f), command=cmd, pid=p.pid,
                 command_pid=bb.pids_in(os.path.join(d, "cmd"))[0],
                 reason="exit", signal_name=None, exit_status=0,
                 command_status={"exited": 0}, stop=None, teardown=None,
                 locks=[], t_before=t0, t_after=t1)


# ---------------------------------------------------------------- reason: timeout

@bb.default_signal_state
def test_status_reason_timeout_escalated_teardown_timed_out():
    """A TERM-ignoring COMMAND times out and gets SIGKILL after the grace;
    the hanging teardown is stopped at --teardown-timeout."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    cmd = sh_pid_cmd(d, "trap '' TERM; while :; do sleep 0.05; done")
    td = "echo $$ > %s; sleep 1000" % Q(os.path.join(d, "td"))
    t0 = time.time()
    p = start(d, ["--status-file=" + f, "-t", "0.3", "-k", "0.5", "-T", td,
                  "--teardown-timeout=0.5", "--"] + cmd)
    rc = finish(p)
    t1 = time.time()
    assert rc == 124, (rc, err(d))
    assert bb.pids_in(os.path.join(d, "td")), "the teardown did not run"
    check_record(load(f), command=cmd, pid=p.pid,
                 command_pid=bb.pids_in(os.path.join(d, "cmd"))[0],
                 reason="timeout", signal_name=None, exit_status=124,
                 command_status={"signaled": "SIGKILL"},
                 stop={"signal": "SIGTERM", "escalated_to_kill": True,
                       "processes_signaled": lambda n: n >= 1, "leftovers": 0},
                 teardown={"reason": "timeout", "exit": None, "signaled": "SIGTERM",
                           "timed_out": True, "duration_s": lambda x: x >= 0.499},
                 locks=[], t_before=t0, t_after=t1)


@bb.default_signal_state
def test_status_reason_timeout_plain():
    """COMMAND stops on SIGTERM: no escalation; no teardown."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    cmd = sh_pid_cmd(d, "exec sleep 1000")
    t0 = time.time()
    p = start(d, ["--status-file=" + f, "-t", "0.2", "-k", "30", "--"] + cmd)
    rc = finish(p)
    t1 = time.time()
    assert rc == 124, (rc, err(d))
    rec = load(f)
    check_record(rec, command=cmd, pid=p.pid,
                 command_pid=bb.pids_in(os.path.join(d, "cmd"))[0],
                 reason="timeout", signal_name=None, exit_status=124,
                 command_status={"signaled": "SIGTERM"},
                 stop={"signal": "SIGTERM", "escalated_to_kill": False,
                       "processes_signaled": 1, "leftovers": 0},
                 teardown=None, locks=[], t_before=t0, t_after=t1)
    assert rec["duration_s"] >= 0.199, rec["duration_s"]


@bb.default_signal_state
def test_status_reason_timeout_kill_at_once_and_preserve_status():
    """-k 0: the stop signal is SIGKILL itself (no escalation);
    --preserve-status: exit_status is COMMAND's status, reason timeout."""
    def check(opts, rc_want, killed_by):
        d = bb.tmpdir()
        f = os.path.join(d, "status.json")
        cmd = sh_pid_cmd(d, "exec sleep 1000")
        t0 = time.time()
        p = start(d, ["-q", "--status-file=" + f, "-t", "0.2"] + opts + ["--"] + cmd)
        rc = finish(p)
        t1 = time.time()
        assert rc == rc_want, (rc, err(d))
        check_record(load(f), command=cmd, pid=p.pid,
                     command_pid=bb.pids_in(os.path.join(d, "cmd"))[0],
                     reason="timeout", signal_name=None, exit_status=rc_want,
                     command_status={"signaled": killed_by},
                     stop={"signal": killed_by, "escalated_to_kill": False,
                           "processes_signaled": 1, "leftovers": 0},
                     teardown=None, locks=[], t_before=t0, t_after=t1)
    bb.check_cases([
        # name, options, status, the stop signal (COMMAND killed by it)
        ("-k 0", ["-k", "0"], 124, "SIGKILL"),
        ("--preserve-status", ["--preserve-status", "-k", "30"], 143, "SIGTERM"),
    ], check)


@bb.default_signal_state
def test_status_reason_timeout_by_sigalrm():
    """An external SIGALRM is a timeout now: reason timeout, signal null."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    cmd = sh_pid_cmd(d, "exec sleep 1000")
    t0 = time.time()
    p = start(d, ["--status-file=" + f, "-k", "30", "--"] + cmd)
    wait_pid_file(os.path.join(d, "cmd"))
    os.kill(p.pid, signal.SIGALRM)
    rc = finish(p)
    t1 = time.time()
    assert rc == 124, (rc, err(d))
    check_record(load(f), command=cmd, pid=p.pid,
                 command_pid=bb.pids_in(os.path.join(d, "cmd"))[0],
                 reason="timeout", signal_name=None, exit_status=124,
                 command_status={"signaled": "SIGTERM"},
                 stop={"signal": "SIGTERM", "escalated_to_kill": False,
                       "processes_signaled": 1, "leftovers": 0},
                 teardown=None, locks=[], t_before=t0, t_after=t1)


# ---------------------------------------------------------------- reason: cancel

@bb.default_signal_state
def test_status_reason_cancel():
    """SIGINT to the front: reason cancel, signal SIGINT, 130; COMMAND
    stopped with the stop signal; the teardown (default events) ran."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    cmd = sh_pid_cmd(d, "exec sleep 1000")
    t0 = time.time()
    p = start(d, ["--status-file=" + f, "-k", "30", "-T", "exit 0", "--"] + cmd)
    wait_pid_file(os.path.join(d, "cmd"))
    os.kill(p.pid, signal.SIGINT)
    rc = finish(p)
    t1 = time.time()
    assert rc == 130, (rc, err(d))
    check_record(load(f), command=cmd, pid=p.pid,
                 command_pid=bb.pids_in(os.path.join(d, "cmd"))[0],
                 reason="cancel", signal_name="SIGINT", exit_status=130,
                 command_status={"signaled": "SIGTERM"},
                 stop={"signal": "SIGTERM", "escalated_to_kill": False,
                       "processes_signaled": 1, "leftovers": 0},
                 teardown={"reason": "cancel", "exit": 0, "signaled": None,
                           "timed_out": False},
                 locks=[], t_before=t0, t_after=t1)


@bb.default_signal_state
def test_status_reason_cancel_front_killed():
    """The front is SIGKILLed: the supervisor cancels as by SIGKILL (137)
    and writes the record, with the front's pid."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    cmd = sh_pid_cmd(d, "exec sleep 1000")
    t0 = time.time()
    p = start(d, ["--status-file=" + f, "-k", "30", "--"] + cmd)
    cpid = wait_pid_file(os.path.join(d, "cmd"))
    sup = bb.supervisor_of(p.pid)
    p.kill()
    assert p.wait(timeout=30) == -signal.SIGKILL
    bb.assert_gone([sup, cpid], timeout=30)
    t1 = time.time()
    check_record(load(f), command=cmd, pid=p.pid, command_pid=cpid,
                 reason="cancel", signal_name="SIGKILL", exit_status=137,
                 command_status={"signaled": "SIGTERM"},
                 stop={"signal": "SIGTERM", "escalated_to_kill": False,
                       "processes_signaled": 1, "leftovers": 0},
                 teardown=None, locks=[], t_before=t0, t_after=t1)


@bb.default_signal_state
def test_status_reason_cancel_second_signal_escalates():
    """A TERM-ignoring COMMAND; SIGHUP, then SIGHUP again in the grace:
    SIGKILL at once; reason cancel, signal SIGHUP, 129, escalated."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    cmd = sh_pid_cmd(d, "trap '' TERM; exec sleep 1000")
    t0 = time.time()
    p = start(d, ["--status-file=" + f, "-k", "60", "--"] + cmd)
    cpid = wait_pid_file(os.path.join(d, "cmd"))
    os.kill(p.pid, signal.SIGHUP)
    wait_line(d, r"supervise: cancelled by SIGHUP.*")
    os.kill(p.pid, signal.SIGHUP)
    rc = finish(p)
    t1 = time.time()
    assert rc == 129, (rc, err(d))
    check_record(load(f), command=cmd, pid=p.pid, command_pid=cpid,
                 reason="cancel", signal_name="SIGHUP", exit_status=129,
                 command_status={"signaled": "SIGKILL"},
                 stop={"signal": "SIGTERM", "escalated_to_kill": True,
                       "processes_signaled": lambda n: n >= 1, "leftovers": 0},
                 teardown=None, locks=[], t_before=t0, t_after=t1)


# ---------------------------------------------------------------- reason: parent-death

@bb.default_signal_state
def test_status_reason_parent_death():
    """supervise's parent (a shell) is SIGKILLed: 129, reason parent-death;
    the teardown ran with reason parent-death."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    cmd = sh_pid_cmd(d, "exec sleep 1000")
    line = "%s --status-file=%s -k 30 -T 'exit 0' -- %s 2>%s; echo $? > %s" % (
        Q(SUP), Q(f), " ".join(Q(a) for a in cmd), Q(os.path.join(d, "err")),
        Q(os.path.join(d, "rc")))
    t0 = time.time()
    sh = subprocess.Popen(["sh", "-c", line], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL)
    front = child_supervise(sh.pid)
    cpid = wait_pid_file(os.path.join(d, "cmd"))
    os.kill(sh.pid, signal.SIGKILL)
    assert sh.wait(timeout=30) == -signal.SIGKILL
    rc = wait_status(front)     # reparented to us, the subreaper
    t1 = time.time()
    assert rc == 129, (rc, err(d))
    check_record(load(f), command=cmd, pid=front, command_pid=cpid,
                 reason="parent-death", signal_name=None, exit_status=129,
                 command_status={"signaled": "SIGTERM"},
                 stop={"signal": "SIGTERM", "escalated_to_kill": False,
                       "processes_signaled": 1, "leftovers": 0},
                 teardown={"reason": "parent-death", "exit": 0, "signaled": None,
                           "timed_out": False},
                 locks=[], t_before=t0, t_after=t1,
                 cause={"process": sh.pid, "ancestor": False})


@bb.default_signal_state
def test_status_reason_parent_death_before_start():
    """--parent-pid names a process that has already died: 129 at once,
    COMMAND never started (command_pid and command_status null)."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    cmd = sh_pid_cmd(d, "exit 0")
    dead = bb.dead_pid()
    t0 = time.time()
    p = start(d, ["--status-file=" + f, "--parent-pid=%d" % dead, "-T",
                  "exit 0", "--"] + cmd)
    rc = finish(p)
    t1 = time.time()
    assert rc == 129, (rc, err(d))
    assert not os.path.exists(os.path.join(d, "cmd")), "COMMAND was started"
    check_record(load(f), command=cmd, pid=p.pid, command_pid=None,
                 reason="parent-death", signal_name=None, exit_status=129,
                 command_status=None, stop=None, teardown=None,
                 locks=[], t_before=t0, t_after=t1,
                 cause={"process": dead, "ancestor": True})


# waitid, which supervise first calls once its parent is watched and before
# its signals are read, by architecture.
SYS_WAITID = {"x86_64": 247, "aarch64": 95}


@bb.default_signal_state
def test_status_reason_parent_death_during_setup():
    """supervise's parent (a shell) dies while supervise still prepares the
    run (held there by strace's delay on its first waitid): 129, COMMAND
    never started, and the cause names the parent.  Should the parent die
    only later, after all, the record is the same but for COMMAND."""
    if shutil.which("strace") is None:
        raise bb.Skip("strace is not installed")
    nr = SYS_WAITID.get(os.uname().machine)
    if nr is None:
        raise bb.Skip("no waitid number for %s" % os.uname().machine)
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    cmd = sh_pid_cmd(d, "exec sleep 1000")
    # strace -D: supervise stays the shell's child, its tracer is apart.
    line = ("strace -D -qq -o /dev/null -e trace=waitid "
            "-e inject=waitid:delay_enter=3000000:when=1 "
            "%s --status-file=%s -k 30 -- %s 2>%s; exit $?") % (
        Q(SUP), Q(f), " ".join(Q(a) for a in cmd), Q(os.path.join(d, "err")))
    t0 = time.time()
    sh = subprocess.Popen(["sh", "-c", line], stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL,
                          # LeakSanitizer cannot work under ptrace.
                          env=dict(os.environ, ASAN_OPTIONS=os.environ.get(
                              "ASAN_OPTIONS", "") + ":detect_leaks=0"))

    def held():
        for c in bb.children(sh.pid):
            if bb.read("/proc/%d/syscall" % c).split(" ")[0] == str(nr):
                return c
        return None
    front = bb.wait_for(held, what="supervise to be held in waitid")
    os.kill(sh.pid, signal.SIGKILL)
    assert sh.wait(timeout=30) == -signal.SIGKILL
    rc = wait_status(front)     # reparented to us, the subreaper
    t1 = time.time()
    assert rc == 129, (rc, err(d))
    rec = load(f)
    if rec["command_pid"] is None:
        assert not os.path.exists(os.path.join(d, "cmd")), "COMMAND was started"
        cpid, cstatus, stop = None, None, None
    else:
        cpid = wait_pid_file(os.path.join(d, "cmd"))
        cstatus = {"signaled": "SIGTERM"}
        stop = {"signal": "SIGTERM", "escalated_to_kill": False,
                "processes_signaled": 1, "leftovers": 0}
    check_record(rec, command=cmd, pid=front, command_pid=cpid,
                 reason="parent-death", signal_name=None, exit_status=129,
                 command_status=cstatus, stop=stop, teardown=None,
                 locks=[], t_before=t0, t_after=t1,
                 cause={"process": sh.pid, "ancestor": False})


# ---------------------------------------------------------------- reason: lock-timeout

def given_up_lock_ok(taken, given_up, min_wait):
    """The locks field when the wait for lock given_up ended without it:
    the locks taken before it, each as (path, predicate), then given_up
    itself only if its wait_s shows the wait (at least min_wait) -- it may
    also be left out, as it was not taken.  A lock that was never tried
    (after given_up in canonical order) must not be listed: its wait_s
    would claim a wait that never happened."""
    def check(got):
        assert isinstance(got, list), got
        for g in got:
            assert isinstance(g, dict) and set(g) == {"path", "wait_s"}, g
            assert is_num(g["wait_s"]) and g["wait_s"] >= 0, g
        assert len(got) >= len(taken), got
        for g, (path, ok) in zip(got, taken):
            assert g["path"] == path and ok(g["wait_s"]), (g, path)
        rest = got[len(taken):]
        assert rest == [] or (len(rest) == 1 and rest[0]["path"] == given_up), \
            "locks that were not taken are listed: %r" % rest
        # --lock-wait bounds all the waits together: the locks taken
        # first used part of it (ms precision, so one ms of rounding).
        before = sum(g["wait_s"] for g in got[:len(taken)])
        if rest:
            assert rest[0]["wait_s"] >= min_wait - before - 0.001, \
                "the lock given up on is listed with wait_s %r, but it was waited " \
                "for at least %.3fs: %r" % (rest[0]["wait_s"], min_wait, got)
        return True
    return check


@bb.default_signal_state
def test_status_reason_lock_timeout():
    """Two locks, the second (canonical order) held elsewhere, -w 0.3: 75,
    COMMAND not started; the free lock taken first is listed with no real
    wait, the one given up on (if listed) with at least the -w wait."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    la, lb = os.path.join(d, "lk-a"), os.path.join(d, "lk-b")
    fd = os.open(lb, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        cmd = sh_pid_cmd(d, "exit 0")
        t0 = time.time()
        p = start(d, ["--status-file=" + f, "-l", lb, "-l", la, "-w", "0.3",
                      "-T", "exit 0", "--teardown-on=always", "--"] + cmd)
        rc = finish(p)
        t1 = time.time()
    finally:
        os.close(fd)
    assert rc == 75, (rc, err(d))
    assert not os.path.exists(os.path.join(d, "cmd")), "COMMAND was started"
    check_record(load(f), command=cmd, pid=p.pid, command_pid=None,
                 reason="lock-timeout", signal_name=None, exit_status=75,
                 command_status=None, stop=None, teardown=None,
                 locks=given_up_lock_ok([(la, small_wait)], lb, 0.299),
                 t_before=t0, t_after=t1)


@bb.default_signal_state
def test_status_lock_never_tried_not_listed():
    """Three locks, the second held elsewhere, -w 0.3: the third was never
    tried, so it must not appear in locks (a wait_s of 0 for it would
    read as "taken at once")."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    la, lb, lc = (os.path.join(d, n) for n in ("lk-a", "lk-b", "lk-c"))
    fd = os.open(lb, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        r = bb.run(["-q", "--status-file=" + f, "-l", lc, "-l", lb, "-l", la,
                    "-w", "0.3", "--", "true"])
    finally:
        os.close(fd)
    assert r.rc == 75, r
    rec = load(f)
    assert rec["reason"] == "lock-timeout", rec
    given_up_lock_ok([(la, small_wait)], lb, 0.299)(rec["locks"])


@bb.default_signal_state
def test_status_reason_lock_timeout_no_wait():
    """-w 0 on a held lock: 75 at once, reason lock-timeout."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    lk = os.path.join(d, "lk")
    fd = os.open(lk, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        cmd = sh_pid_cmd(d, "exit 0")
        t0 = time.time()
        p = start(d, ["--status-file=" + f, "-l", lk, "-w", "0", "--"] + cmd)
        rc = finish(p)
        t1 = time.time()
    finally:
        os.close(fd)
    assert rc == 75, (rc, err(d))
    check_record(load(f), command=cmd, pid=p.pid, command_pid=None,
                 reason="lock-timeout", signal_name=None, exit_status=75,
                 command_status=None, stop=None, teardown=None,
                 locks=given_up_lock_ok([], lk, 0),
                 t_before=t0, t_after=t1)


@bb.default_signal_state
def test_status_reason_cancel_while_waiting_for_lock():
    """SIGTERM while waiting for a lock: 143, reason cancel, signal
    SIGTERM, COMMAND not started; the lock (not taken) is either not
    listed or listed with the time it was waited for (as for a
    lock-timeout)."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    la = os.path.join(d, "lk-a")
    fd = os.open(la, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        cmd = sh_pid_cmd(d, "exit 0")
        t0 = time.time()
        p = start(d, ["--status-file=" + f, "-l", la, "--"] + cmd)
        wait_line(d, r"supervise: waiting for lock .*")
        seen = time.monotonic()
        time.sleep(0.5)
        waited = time.monotonic() - seen
        os.kill(p.pid, signal.SIGTERM)
        rc = finish(p)
        t1 = time.time()
    finally:
        os.close(fd)
    assert rc == 143, (rc, err(d))
    assert not os.path.exists(os.path.join(d, "cmd")), "COMMAND was started"
    check_record(load(f), command=cmd, pid=p.pid, command_pid=None,
                 reason="cancel", signal_name="SIGTERM", exit_status=143,
                 command_status=None, stop=None, teardown=None,
                 locks=given_up_lock_ok([], la, waited - 0.001),
                 t_before=t0, t_after=t1)


@bb.default_signal_state
def test_status_reason_parent_death_while_waiting_for_lock():
    """supervise's parent dies while it waits for a lock: 129, reason
    parent-death, COMMAND not started; the lock as for a lock-timeout."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    lk = os.path.join(d, "lk")
    fd = os.open(lk, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        cmd = sh_pid_cmd(d, "exit 0")
        line = "%s --status-file=%s -l %s -- %s 2>%s; echo $? > %s" % (
            Q(SUP), Q(f), Q(lk), " ".join(Q(a) for a in cmd),
            Q(os.path.join(d, "err")), Q(os.path.join(d, "rc")))
        t0 = time.time()
        sh = subprocess.Popen(["sh", "-c", line], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL)
        front = child_supervise(sh.pid)
        wait_line(d, r"supervise: waiting for lock .*")
        seen = time.monotonic()
        time.sleep(0.3)
        waited = time.monotonic() - seen
        os.kill(sh.pid, signal.SIGKILL)
        assert sh.wait(timeout=30) == -signal.SIGKILL
        rc = wait_status(front)
        t1 = time.time()
    finally:
        os.close(fd)
    assert rc == 129, (rc, err(d))
    assert not os.path.exists(os.path.join(d, "cmd")), "COMMAND was started"
    check_record(load(f), command=cmd, pid=front, command_pid=None,
                 reason="parent-death", signal_name=None, exit_status=129,
                 command_status=None, stop=None, teardown=None,
                 locks=given_up_lock_ok([], lk, waited - 0.001),
                 t_before=t0, t_after=t1,
                 cause={"process": sh.pid, "ancestor": False})


@bb.default_signal_state
def test_status_lock_wait_recorded():
    """A lock that had to be waited for: its wait_s is at least the time
    between the "waiting for lock" line and the release."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    lk = os.path.join(d, "lk")
    fd = os.open(lk, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        cmd = sh_pid_cmd(d, "exit 0")
        t0 = time.time()
        p = start(d, ["--status-file=" + f, "-l", lk, "--"] + cmd)
        wait_line(d, r"supervise: waiting for lock .*")
        seen = time.monotonic()
        time.sleep(0.5)
        released = time.monotonic()
    finally:
        os.close(fd)
    rc = finish(p)
    t1 = time.time()
    assert rc == 0, (rc, err(d))
    waited = released - seen
    check_record(load(f), command=cmd, pid=p.pid,
                 command_pid=bb.pids_in(os.path.join(d, "cmd"))[0],
                 reason="exit", signal_name=None, exit_status=0,
                 command_status={"exited": 0}, stop=None, teardown=None,
                 locks=[(lk, lambda w: w >= waited - 0.001)],
                 t_before=t0, t_after=t1)


# ---------------------------------------------------------------- reason: exec-failed

@bb.default_signal_state
def test_status_reason_exec_failed_not_found():
    """COMMAND not found: 127, command_pid null; the teardown (on failure)
    ran."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    cmd = [os.path.join(d, "no-such-command"), "arg"]
    t0 = time.time()
    p = start(d, ["--status-file=" + f, "-T", "exit 0", "--teardown-on=failure", "--"] + cmd)
    rc = finish(p)
    t1 = time.time()
    assert rc == 127, (rc, err(d))
    check_record(load(f), command=cmd, pid=p.pid, command_pid=None,
                 reason="exec-failed", signal_name=None, exit_status=127,
                 command_status=None, stop=None,
                 teardown={"reason": "exit", "exit": 0, "signaled": None,
                           "timed_out": False},
                 locks=[], t_before=t0, t_after=t1)


@bb.default_signal_state
def test_status_reason_exec_failed_not_executable():
    """COMMAND found but not executable: 126."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    x = os.path.join(d, "not-executable")
    with open(x, "w") as fh:
        fh.write("#!/bin/sh\nexit 0\n")
    os.chmod(x, 0o644)
    cmd = [x]
    t0 = time.time()
    p = start(d, ["--status-file=" + f, "--"] + cmd)
    rc = finish(p)
    t1 = time.time()
    assert rc == 126, (rc, err(d))
    check_record(load(f), command=cmd, pid=p.pid, command_pid=None,
                 reason="exec-failed", signal_name=None, exit_status=126,
                 command_status=None, stop=None, teardown=None,
                 locks=[], t_before=t0, t_after=t1)


# ---------------------------------------------------------------- reason: error

@bb.default_signal_state
def test_status_reason_error_supervisor_killed():
    """The supervisor is SIGKILLed: the front stops the orphan, runs the
    teardown and writes the record: reason error, 125."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    cmd = sh_pid_cmd(d, "sleep 1000 & echo $! > %s; wait" % Q(os.path.join(d, "bg")))
    t0 = time.time()
    p = start(d, ["--status-file=" + f, "-k", "30", "-T", "exit 5",
                  "--teardown-on=always", "--"] + cmd)
    cpid = wait_pid_file(os.path.join(d, "cmd"))
    bg = wait_pid_file(os.path.join(d, "bg"))
    sup = bb.supervisor_of(p.pid)
    os.kill(sup, signal.SIGKILL)
    rc = finish(p)
    t1 = time.time()
    assert rc == 125, (rc, err(d))
    bb.assert_gone([cpid, bg])
    # The orphan is bg; COMMAND itself (SIGKILLed as the supervisor died)
    # may not be quite gone when the front looks.
    check_record(load(f), command=cmd, pid=p.pid, command_pid=cpid,
                 reason="error", signal_name=None, exit_status=125,
                 command_status={"signaled": "SIGKILL"},
                 stop={"signal": "SIGTERM", "escalated_to_kill": False,
                       "processes_signaled": lambda n: n in (1, 2), "leftovers": 0},
                 teardown={"reason": "cancel", "exit": 5, "signaled": None,
                           "timed_out": False},
                 locks=[], t_before=t0, t_after=t1)


@bb.default_signal_state
def test_status_reason_error_supervisor_killed_during_teardown():
    """The supervisor is SIGKILLed while the teardown runs: the front lets
    the teardown finish and its record has the teardown's outcome."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    go = os.path.join(d, "go")
    cmd = sh_pid_cmd(d, "exit 0")
    td = ("echo $$ > %s; i=0; while [ ! -e %s ] && [ $i -lt 1200 ]; do sleep 0.05; "
          "i=$((i+1)); done; exit 5" % (Q(os.path.join(d, "td")), Q(go)))
    t0 = time.time()
    p = start(d, ["--status-file=" + f, "-T", td, "--teardown-on=always", "--"] + cmd)
    wait_pid_file(os.path.join(d, "td"))
    sup = bb.supervisor_of(p.pid)
    os.kill(sup, signal.SIGKILL)
    wait_line(d, r"supervise: supervisor process %d died \(SIGKILL\) during the teardown; "
              r"the teardown goes on" % sup)
    with open(go, "w"):
        pass
    rc = finish(p)
    t1 = time.time()
    assert rc == 125, (rc, err(d))
    check_record(load(f), command=cmd, pid=p.pid,
                 command_pid=bb.pids_in(os.path.join(d, "cmd"))[0],
                 reason="error", signal_name=None, exit_status=125,
                 command_status={"exited": 0}, stop=None,
                 teardown={"reason": "exit", "exit": 5, "signaled": None,
                           "timed_out": False},
                 locks=[], t_before=t0, t_after=t1)


@bb.default_signal_state
def test_status_reason_error_setup():
    """A set-up failure after the command line was parsed (the teardown
    log cannot be opened): 125, reason error, COMMAND not started."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    log = os.path.join(d, "no-such-dir", "td.log")
    cmd = sh_pid_cmd(d, "exit 0")
    t0 = time.time()
    p = start(d, ["--status-file=" + f, "-T", "exit 0", "--teardown-log=" + log, "--"] + cmd)
    rc = finish(p)
    t1 = time.time()
    assert rc == 125, (rc, err(d))
    assert err(d) == "supervise: cannot open teardown log '%s': No such file or directory\n" % log, err(d)
    assert not os.path.exists(os.path.join(d, "cmd")), "COMMAND was started"
    check_record(load(f), command=cmd, pid=p.pid, command_pid=None,
                 reason="error", signal_name=None, exit_status=125,
                 command_status=None, stop=None, teardown=None,
                 locks=[], t_before=t0, t_after=t1)


# ---------------------------------------------------------------- the file itself

@bb.default_signal_state
def test_status_atomic_under_reader():
    """A reader polling FILE in a tight loop while ~100 runs rewrite it
    (records of different sizes) never sees a partial or invalid object:
    every read fails with FileNotFoundError before the first write, or
    parses.  No temporary file is left behind."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    bad, seen = [], set()
    stats = {"reads": 0, "missing_after": 0}
    stop = threading.Event()

    def reader():
        first = False
        while not stop.is_set():
            try:
                with open(f, "rb") as fh:
                    data = fh.read()
            except FileNotFoundError:
                if first:
                    stats["missing_after"] += 1
                continue
            first = True
            stats["reads"] += 1
            try:
                rec = bb.parse_status(data)
                assert rec["version"] == 1
                assert data.endswith(b"}\n")
                seen.add(rec["command"][1])
            except Exception as e:   # noqa: BLE001 - any failure is a finding
                bad.append((repr(e), data[:200], len(data)))

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    try:
        for i in range(100):
            pad = "x" * ((i * 397) % 4000)
            p = subprocess.run([SUP, "--status-file=" + f, "--", "true", str(i), pad],
                               stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=60)
            assert p.returncode == 0, p
            rec = load(f)
            assert rec["command"] == ["true", str(i), pad], rec["command"][:2]
            # Let the reader see this run's record before the next run.
            bb.wait_for(lambda: str(i) in seen or bad, timeout=30,
                        what="the reader to see run %d" % i)
            assert not bad, bad[:3]
    finally:
        stop.set()
        th.join(30)
    assert not bad, "partial or invalid reads: %r" % bad[:3]
    assert stats["missing_after"] == 0, \
        "FILE was missing %d times after it was first written" % stats["missing_after"]
    assert len(seen) == 100, len(seen)
    assert os.listdir(d) == ["status.json"], os.listdir(d)


@bb.default_signal_state
def test_status_symlink_refused():
    """A symlink at FILE is refused at start, not replaced (the rename
    would replace the link, not the file its owner meant): 125, COMMAND
    not run; the link and its target (an existing file, or a dangling
    name) are untouched."""
    d = bb.tmpdir()
    target = os.path.join(d, "target")
    with open(target, "w") as fh:
        fh.write("keep me\n")
    marker = os.path.join(d, "marker")
    for name, dest in (("status.json", target),
                       ("status2.json", os.path.join(d, "not-there"))):
        f = os.path.join(d, name)
        os.symlink(dest, f)
        r = bb.run(["--status-file=" + f, "--", "touch", marker])
        _assert_refused(r, "supervise: status file '%s' is a symbolic link; "
                        "not replacing it\n" % f)
        assert os.readlink(f) == dest
    assert bb.read(target) == "keep me\n", bb.read(target)
    assert not os.path.lexists(os.path.join(d, "not-there")), "the symlink was followed"
    assert sorted(os.listdir(d)) == ["status.json", "status2.json", "target"], os.listdir(d)


def _assert_unwritable(r, path, reason, rc=3):
    """The record could not be written at the end: said, status kept."""
    assert r.rc == rc, r
    assert r.err == "supervise: cannot write status file '%s': %s\n" % (path, reason), r


def _assert_refused(r, err):
    """Refused at start: 125 and the one line err (COMMAND, which would
    have exited 3 or left a marker, did not run)."""
    assert r.rc == 125, r
    assert r.err == err, r


def _assert_cannot_write(r, path, reason):
    _assert_refused(r, "supervise: cannot write status file '%s': %s\n" % (path, reason))


@bb.default_signal_state
def test_status_unwritable_missing_directory():
    """The directory does not exist: refused at start (for a plain run
    and one with a timeout), COMMAND not run."""
    d = bb.tmpdir()
    f = os.path.join(d, "no-such-dir", "status.json")
    marker = os.path.join(d, "marker")
    _assert_cannot_write(bb.run(["--status-file=" + f, "--", "touch", marker]),
                         f, "No such file or directory")
    r = bb.run(["-q", "--status-file=" + f, "-t", "0.1", "--", "touch", marker])
    _assert_cannot_write(r, f, "No such file or directory")
    assert os.listdir(d) == [], os.listdir(d)


@bb.default_signal_state
def test_status_unwritable_directory_non_root():
    """A directory without write permission, as a non-root user (nobody
    via setpriv when we are root): EACCES, refused at start."""
    if os.geteuid() == 0:
        # nobody runs a copy it can reach: the checkout may be in a home
        # directory of mode 700.
        sup, = bb.stage(bb.tmpdir(shared=True), SUP)
        d = bb.tmpdir(shared=True)
        ro = os.path.join(d, "ro")
        os.mkdir(ro, 0o555)
        os.chmod(ro, 0o555)
        f = os.path.join(ro, "status.json")
        p = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                            "--clear-groups", sup, "--status-file=" + f, "--",
                            "sh", "-c", "exit 3"], capture_output=True, text=True,
                           timeout=60, cwd="/")
        r = bb.Result(p.returncode, p.stdout, p.stderr)
    else:
        d = bb.tmpdir()
        ro = os.path.join(d, "ro")
        os.mkdir(ro, 0o555)
        os.chmod(ro, 0o555)
        f = os.path.join(ro, "status.json")
        r = bb.run(["--status-file=" + f, "--", "sh", "-c", "exit 3"])
    _assert_cannot_write(r, f, "Permission denied")
    assert os.listdir(ro) == [], os.listdir(ro)


@bb.default_signal_state
def test_status_unwritable_directory_root():
    """As root, a read-only bind mount (in a private mount namespace) and
    an immutable directory (chattr +i): the mode bits say yes, the kernel
    says no, and supervise asks the kernel: refused at start."""
    bb.require_root()
    d = bb.tmpdir()
    ro = os.path.join(d, "ro")
    os.mkdir(ro)
    f = os.path.join(ro, "status.json")
    script = ("mount --bind %s %s && mount -o remount,bind,ro %s || exit 99; "
              "exec %s --status-file=%s -- sh -c 'exit 3'" % (Q(ro), Q(ro), Q(ro), Q(SUP), Q(f)))
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=60)
    tried = 0
    if p.returncode != 99 and "unshare failed" not in p.stderr and "unshare:" not in p.stderr:
        _assert_cannot_write(bb.Result(p.returncode, p.stdout, p.stderr), f,
                             "Read-only file system")
        tried += 1
    assert os.listdir(ro) == [], os.listdir(ro)

    im = os.path.join(d, "immutable")
    os.mkdir(im)
    g = os.path.join(im, "status.json")
    if subprocess.run(["chattr", "+i", im], capture_output=True).returncode == 0:
        try:
            _assert_cannot_write(bb.run(["--status-file=" + g, "--", "sh", "-c", "exit 3"]),
                                 g, "Operation not permitted")
            tried += 1
        finally:
            subprocess.run(["chattr", "-i", im], check=False)
        assert os.listdir(im) == [], os.listdir(im)
    if not tried:
        raise bb.Skip("neither a read-only bind mount (%r) nor chattr +i works here"
                      % p.stderr.strip())


@bb.default_signal_state
def test_status_file_is_a_directory():
    """FILE is a directory: refused at start; the directory is untouched."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    os.mkdir(f)
    with open(os.path.join(f, "inside"), "w"):
        pass
    _assert_refused(bb.run(["--status-file=" + f, "--", "sh", "-c", "exit 3"]),
                    "supervise: status file '%s' exists and is not a supervise "
                    "status file; not replacing it\n" % f)
    assert sorted(os.listdir(d)) == ["status.json"], os.listdir(d)
    assert os.listdir(f) == ["inside"], os.listdir(f)


@bb.default_signal_state
def test_status_relative_path_start_directory_renamed():
    """A relative FILE lands in the start directory even though COMMAND
    renamed that directory during the run (and nothing lands at the old
    path or in COMMAND's new place)."""
    d = bb.tmpdir()
    a, b = os.path.join(d, "a"), os.path.join(d, "b")
    os.mkdir(a)
    r = bb.run(["--status-file=status.json", "--", "sh", "-c",
                "mv %s %s && mkdir %s" % (Q(a), Q(b), Q(a))], cwd=a)
    assert r.rc == 0 and r.err == "", r
    assert os.listdir(a) == [], os.listdir(a)
    assert os.listdir(b) == ["status.json"], os.listdir(b)
    rec = load(os.path.join(b, "status.json"))
    assert rec["reason"] == "exit" and rec["exit_status"] == 0, rec


@bb.default_signal_state
def test_status_relative_path_start_directory_removed():
    """The start directory is removed during the run: the record cannot be
    written there; that is reported (never silent), the status unchanged,
    and nothing is written elsewhere (not in a new directory of the same
    name)."""
    d = bb.tmpdir()
    a = os.path.join(d, "a")
    os.mkdir(a)
    r = bb.run(["--status-file=status.json", "--", "sh", "-c",
                "cd / && rmdir %s && mkdir %s && exit 3" % (Q(a), Q(a))], cwd=a)
    assert r.rc == 3, r
    _assert_unwritable(r, "status.json", "No such file or directory")
    assert os.listdir(a) == [], os.listdir(a)
    assert os.listdir(d) == ["a"], os.listdir(d)


@bb.default_signal_state
def test_status_strings_escaped():
    """Quotes, backslashes, control characters, DEL and invalid UTF-8 in
    COMMAND's arguments: the file is valid UTF-8 JSON and every string
    decodes to the expected text, U+FFFD for each invalid byte."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    args = [
        (b'say "hi"', 'say "hi"'),
        (b"back\\slash\\", "back\\slash\\"),
        (b"\\u0041", "\\u0041"),
        (b"ctl\x01\x02\x1f", "ctl\x01\x02\x1f"),
        (b"line\nbreak", "line\nbreak"),
        (b"tab\there\r", "tab\there\r"),
        (b"\x08\x0c\x1b[0m", "\x08\x0c\x1b[0m"),
        (b"del\x7f", "del\x7f"),
        (b"\xff", "\ufffd"),
        (b"a\xc3(b", "a\ufffd(b"),
        (b"\xc0\xaf", "\ufffd\ufffd"),
        (b"\xed\xa0\x80", "\ufffd\ufffd\ufffd"),
        (b"\xf0\x9f\x98", "\ufffd\ufffd\ufffd"),
        (b"\xf4\x90\x80\x80", "\ufffd\ufffd\ufffd\ufffd"),
        (b"\xe0\x80\xaf", "\ufffd\ufffd\ufffd"),
        ("caf\u00e9 \u20ac \U0001F600 \u4e2d".encode(), "caf\u00e9 \u20ac \U0001F600 \u4e2d"),
        (b"\xef\xbf\xbf\xf4\x8f\xbf\xbf", "\uffff\U0010FFFF"),
        (b"", ""),
        (b"</script>/", "</script>/"),
    ]
    argv = [b"sh", b"-c", b"exit 0"] + [a for a, _ in args]
    r = subprocess.run([os.fsencode(SUP), b"--status-file=" + os.fsencode(f), b"--"] + argv,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r
    with open(f, "rb") as fh:
        raw = fh.read()
    # No raw control character anywhere (JSON forbids them in strings; the
    # one newline at the end is outside the object).
    assert not re.search(rb"[\x00-\x1f]", raw.rstrip(b"\n")), raw
    rec = load(f)
    assert rec["command"] == ["sh", "-c", "exit 0"] + [t for _, t in args], rec["command"]


@bb.default_signal_state
def test_status_usage_error_writes_nothing():
    """A usage error (and --help, --version) writes no record."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    for args in (["--bogus", "--", "true"],
                 ["-t", "abc", "--", "true"],
                 ["-s", "STOP", "--", "true"],
                 ["--teardown-on=bogus", "-T", "true", "--", "true"],
                 ["--caps=cap_bogus", "--", "true"],
                 ["--lock-wait=x", "--", "true"],
                 ["--parent-pid=x", "--", "true"],
                 ["--timeout"],
                 []):
        r = bb.run(["--status-file=" + f] + args)
        assert r.rc == 125, (args, r)
        lines = r.err.splitlines(True)
        assert len(lines) == 2 and lines[0].startswith("supervise: ") and \
            lines[1] == bb.TRY_HELP, (args, r)
        assert os.listdir(d) == [], (args, os.listdir(d))
    for args in (["--help"], ["--version"]):
        r = bb.run(["--status-file=" + f] + args)
        assert r.rc == 0, (args, r)
        assert os.listdir(d) == [], (args, os.listdir(d))
