"""Black-box tests of supervise's locks (-l/--lock, -w/--lock-wait).

Mutual exclusion is checked from marker files, never from timing: runs
append lines ("NAME TIME", or the "enter PID TIME" / "leave PID TIME" lines
of tests/helpers/lock_probe) to shared files opened with O_APPEND, and the
order of the lines is the order of the events.  Every wait is a poll with a
generous bound; the only timing asserted is a lower bound (a run waited at
least as long as it was made to wait).
"""
import datetime
import fcntl
import os
import random
import re
import signal
import socket
import stat
import subprocess
import threading
import time

import bb

PROBE = os.path.join(bb.HELPERS, "lock_probe")
HOST = socket.gethostname()

# Build the C helper once, at discovery (before the tests fork).
subprocess.run(["make", "-s", "-C", bb.ROOT, "tests/helpers/lock_probe"],
               check=False)

# A COMMAND that writes "NAME-start TIME" to ./log, waits until the file
# ./go-NAME exists, then writes "NAME-end TIME".  Runs in the test's
# directory, so the command line (shown in the holder record) stays short.
HOLD = ('echo "$1-start $(date +%s.%N)" >> log; '
        'while [ ! -e "go-$1" ]; do sleep 0.02; done; '
        'echo "$1-end $(date +%s.%N)" >> log')
# A COMMAND that writes "NAME-start TIME" to ./log.
MARK = 'echo "$1-start $(date +%s.%N)" >> log'
# A teardown ("% (NAME, NAME, NAME)") that writes "NAME-td-start TIME" to
# ./log, waits until ./tdgo-NAME exists, then writes "NAME-td-end TIME".
TD_WAIT = ('echo "%s-td-start $(date +%%s.%%N)" >> log; '
           'while [ ! -e "tdgo-%s" ]; do sleep 0.02; done; '
           'echo "%s-td-end $(date +%%s.%%N)" >> log')


# ---------------------------------------------------------------- helpers


class Run:
    """A supervise (or the copy sup) started in directory d, stderr into
    d/NAME.err."""

    def __init__(self, d, name, args, sup=bb.SUPERVISE, **kw):
        self.d, self.name = d, name
        self.errpath = os.path.join(d, name + ".err")
        self.t0 = time.time()
        with open(self.errpath, "w") as err:
            kw.setdefault("stdin", subprocess.DEVNULL)
            kw.setdefault("stdout", subprocess.DEVNULL)
            kw.setdefault("cwd", d)
            self.p = subprocess.Popen([sup] + list(args),
                                      stderr=err, **kw)
        self.pid = self.p.pid

    def err(self):
        return bb.read(self.errpath)

    def wait(self, timeout=30):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("run %s (%r) did not end within %ds; stderr %r"
                                 % (self.name, self.p.args, timeout, self.err()))

    def alive(self):
        return self.p.poll() is None

    def wait_err(self, pattern, timeout=20):
        """Waits for a stderr line matching the regex; returns the match."""
        rx = re.compile(pattern)

        def find():
            for line in self.err().splitlines():
                m = rx.fullmatch(line)
                if m:
                    return m
            return None
        return bb.wait_for(find, timeout, what="stderr line %r of run %s (has %r)"
                           % (pattern, self.name, self.err()))


def run(d, args, timeout=30, **kw):
    """Runs supervise to the end; returns bb.Result (stdout not kept)."""
    r = Run(d, "run-%d" % random.randrange(1 << 30), args, **kw)
    rc = r.wait(timeout)
    return bb.Result(rc, "", r.err())


def holder(d, name, lock, extra=()):
    """Starts a run that holds lock until go(d, name); waits until its
    COMMAND runs.  Returns the Run, with t1 = when COMMAND was seen."""
    r = Run(d, name, list(extra) + ["-l", lock, "sh", "-c", HOLD, "sh", name])
    wait_logged(d, name + "-start")
    r.t1 = time.time()
    r.cmd = "sh -c %s sh %s" % (HOLD, name)
    return r


def go(d, name):
    open(os.path.join(d, "go-" + name), "w").close()


def log(d):
    """d/log as a list of (event, time)."""
    out = []
    for line in bb.read(os.path.join(d, "log")).splitlines():
        ev, t = line.split()
        out.append((ev, float(t)))
    return out


def events(d):
    return [ev for ev, _ in log(d)]


def wait_logged(d, ev, timeout=20):
    bb.wait_for(lambda: ev in events(d), timeout,
                what="%r in %s/log (has %r)" % (ev, d, bb.read(os.path.join(d, "log"))))


def at(d, ev):
    for e, t in log(d):
        if e == ev:
            return t
    raise AssertionError("%r not in log %r" % (ev, log(d)))


def assert_before(d, first, second):
    """first is logged before second, by order and by time stamp."""
    evs = events(d)
    assert first in evs and second in evs, (first, second, log(d))
    assert evs.index(first) < evs.index(second), \
        "%s should come before %s: %r" % (first, second, log(d))
    assert at(d, first) <= at(d, second), (first, second, log(d))


SINCE_RX = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}"


def epoch_of(text):
    """A time as the messages show it ("2026-12-07 10:15:02 +0000"), as
    seconds since the epoch."""
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z").timestamp()


def holder_rx(h):
    """Regex for "held by pid N on HOST since DATE TIME ZONE: COMMAND" of
    the run h (a holder()); group 'since' is the time shown."""
    return (r"held by pid %d on %s since (?P<since>%s): %s"
            % (h.pid, re.escape(HOST), SINCE_RX, re.escape(h.cmd)))


def assert_holder_since(m, h):
    since = epoch_of(m.group("since"))
    assert int(h.t0) - 1 <= since <= h.t1 + 1, (m.group(0), h.t0, h.t1)


def waiting_rx(path, h):
    return r"supervise: waiting for lock %s; %s" % (re.escape(path), holder_rx(h))


def gave_up_rx(path, w):
    """Regex for the start of the give-up line for lock path with -w w;
    group 'after' is the time waited."""
    return (r"supervise: gave up waiting for lock %s after "
            r"(?P<after>\d+(\.\d+)?(ms|s)|\d+m\d+s|\d+h\d+m\d+s) \(-w %s\); "
            % (re.escape(path), re.escape(w)))


def seconds_of(after):
    """ "500ms", "1.5s", "10m0s", "1h2m5s" as seconds."""
    if after.endswith("ms"):
        return float(after[:-2]) / 1000
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(\d+(?:\.\d+)?)s", after)
    assert m, after
    return int(m.group(1) or 0) * 3600 + int(m.group(2) or 0) * 60 + float(m.group(3))


def shown_cmdline(argv):
    """A command line as supervise shows a holder's: joined with spaces,
    non-printable bytes as '?', cut after 80 characters with "…" (where an
    argument ends, if one ends in the second half)."""
    raw = b"\0".join(a.encode() if isinstance(a, str) else a for a in argv)
    text = "".join(chr(c) if 0x20 <= c < 0x7f else (" " if c == 0 else "?") for c in raw)
    if len(text) <= 80:
        return text
    if text[80] == " ":
        return text[:80] + " \u2026"
    cut = text.rfind(" ", 41, 80)
    return (text[:cut + 1] if cut >= 0 else text[:80]) + "\u2026"


def kernel_rx(pid, argv, source="/proc/locks"):
    """Regex for "pid N (CMDLINE), started T (from /proc/locks)"; group
    'started' is the time shown."""
    return (r"pid %d \(%s\), started (?P<started>%s) \(from %s\)"
            % (pid, re.escape(shown_cmdline(argv)), SINCE_RX, re.escape(source)))


def proc_started(pid):
    """When process pid started, in seconds since the epoch."""
    with open("/proc/%d/stat" % pid) as f:
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/stat") as f:
        btime = [int(x.split()[1]) for x in f if x.startswith("btime ")][0]
    return btime + ticks // os.sysconf("SC_CLK_TCK")


def proc_cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().rstrip(b"\0").split(b"\0")


def lines(text):
    return text.splitlines()


def probe_runs(path):
    """Checks a lock_probe log: enter/leave lines alternate, each leave by
    the pid of the enter before it, time stamps never go back.  Returns
    the number of runs (enter lines)."""
    text = bb.read(path)
    holder_pid, last, n = None, 0.0, 0
    for i, line in enumerate(text.splitlines()):
        ctx = "line %d of %s: %r\n%s" % (i + 1, path, line, text)
        ev, pid, t = line.split()
        t = float(t)
        if ev == "enter":
            assert holder_pid is None, \
                "overlap: %s entered while %s held the lock (%s)" % (pid, holder_pid, ctx)
            holder_pid, n = pid, n + 1
        elif ev == "leave":
            assert holder_pid == pid, "leave without enter (%s)" % ctx
            holder_pid = None
        else:
            raise AssertionError("bad line (%s)" % ctx)
        assert t >= last, "time went back (%s)" % ctx
        last = t
    assert holder_pid is None, "%s never left (%s)" % (holder_pid, text)
    return n


def lock_is_free(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def handles_sigterm(pid):
    """Whether process pid runs supervise and has set up its signal
    handling (SIGTERM blocked, to be read from its signalfd)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv0 = f.read().split(b"\0")[0].decode(errors="replace")
        with open("/proc/%d/status" % pid) as f:
            blk = [int(x.split()[1], 16) for x in f if x.startswith("SigBlk:")][0]
    except (OSError, IndexError):
        return False
    return argv0 == bb.SUPERVISE and bool(blk & (1 << (signal.SIGTERM - 1)))


def fd_targets(path):
    return [x for x in bb.read(path).splitlines() if x]


LIST_FDS = 'for f in /proc/$$/fd/*; do readlink "$f" || :; done > %s'


# ------------------------------------------------ waiting and the holder line

def test_locks_second_waits_for_first_and_its_teardown():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk, ["--teardown-on=always",
                            "-T", 'echo "A-td-start $(date +%s.%N)" >> log; sleep 1; '
                                  'echo "A-td-end $(date +%s.%N)" >> log'])
    b = Run(d, "B", ["-l", lk, "sh", "-c", MARK, "sh", "B"])
    m = b.wait_err(waiting_rx(lk, a))
    assert_holder_since(m, a)
    time.sleep(0.5)
    assert b.alive() and "B-start" not in events(d), (events(d), b.err())
    go(d, "A")
    assert a.wait() == 0, a.err()
    assert b.wait() == 0, b.err()
    assert events(d) == ["A-start", "A-end", "A-td-start", "A-td-end", "B-start"], log(d)
    assert_before(d, "A-td-end", "B-start")
    # B printed exactly one waiting line (the next one is due after 30 s).
    assert lines(b.err()) == [m.group(0)], b.err()


def test_locks_different_locks_run_in_parallel():
    d = bb.tmpdir()
    # Each COMMAND marks that it runs, then waits (bounded) for the other's
    # mark: both exit 0 only if both ran at the same time.
    both = ('touch "run-$1"; i=0; while [ ! -e "run-$2" ]; do '
            'i=$((i+1)); [ $i -lt 1500 ] || exit 3; sleep 0.02; done')
    a = Run(d, "A", ["-l", os.path.join(d, "lk1"), "sh", "-c", both, "sh", "A", "B"])
    b = Run(d, "B", ["-l", os.path.join(d, "lk2"), "sh", "-c", both, "sh", "B", "A"])
    assert a.wait(40) == 0, a.err()
    assert b.wait(40) == 0, b.err()
    assert a.err() == "" and b.err() == "", (a.err(), b.err())


def test_locks_lock_wait_zero_gives_up():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk)
    # -w as the user wrote it, whichever spelling of the option.
    for opt, w in ((["-w", "0"], "0"), (["--lock-wait=0"], "0"), (["--lock-wait", "0s"], "0s"),
                   (["-q", "-w", "0"], "0"), (["-w", "0.000"], "0.000")):
        r = run(d, opt + ["-l", lk, "--teardown-on=always", "-T", "touch td-marker",
                          "touch", "marker"])
        assert r.rc == 75, (opt, r)
        m = re.fullmatch(r"supervise: gave up waiting for lock %s after 0s \(-w %s\); %s\n"
                         % (re.escape(lk), re.escape(w), holder_rx(a)), r.err)
        assert m, (opt, r.err)
        assert_holder_since(m, a)
        assert not os.path.exists(os.path.join(d, "marker")), "COMMAND started"
        assert not os.path.exists(os.path.join(d, "td-marker")), "teardown ran"
    assert a.alive()
    go(d, "A")
    assert a.wait() == 0, a.err()


def test_locks_lock_wait_short_gives_up():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk)
    for opt, w in ((["-w", "0.5"], "0.5"), (["--lock-wait=500ms"], "500ms"),
                   (["-w", ".5s"], ".5s")):
        t0 = time.monotonic()
        r = run(d, opt + ["-l", lk, "--teardown-on=always", "-T", "touch td-marker",
                          "touch", "marker"])
        waited = time.monotonic() - t0
        assert r.rc == 75, (opt, r)
        assert waited >= 0.45, "gave up after %.3fs only" % waited
        ls = lines(r.err)
        assert len(ls) == 2, r.err
        assert re.fullmatch(waiting_rx(lk, a), ls[0]), r.err
        m = re.fullmatch(gave_up_rx(lk, w) + holder_rx(a), ls[1])
        assert m, r.err
        secs = seconds_of(m.group("after"))
        assert 0.5 <= secs <= waited + 0.05, (m.group("after"), waited)
        assert not os.path.exists(os.path.join(d, "marker")), "COMMAND started"
        assert not os.path.exists(os.path.join(d, "td-marker")), "teardown ran"
    go(d, "A")
    assert a.wait() == 0, a.err()


def test_locks_lock_wait_long_enough_takes_the_lock():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk)
    b = Run(d, "B", ["-w", "60", "-l", lk, "sh", "-c", MARK, "sh", "B"])
    b.wait_err(waiting_rx(lk, a))
    go(d, "A")
    assert a.wait() == 0 and b.wait() == 0, (a.err(), b.err())
    assert_before(d, "A-end", "B-start")


def test_locks_quiet_still_prints_first_waiting_line():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk)
    b = Run(d, "B", ["-q", "-l", lk, "sh", "-c", MARK, "sh", "B"])
    m = b.wait_err(waiting_rx(lk, a))
    # -q hides the cancel (not an error), never the first waiting line.
    c = Run(d, "C", ["-q", "-l", lk, "touch", "marker"])
    mc = c.wait_err(waiting_rx(lk, a))
    os.kill(c.pid, signal.SIGTERM)
    assert c.wait() == 143, c.err()
    assert c.err() == mc.group(0) + "\n", c.err()
    assert not os.path.exists(os.path.join(d, "marker"))
    go(d, "A")
    assert a.wait() == 0 and b.wait() == 0, (a.err(), b.err())
    assert b.err() == m.group(0) + "\n", b.err()
    assert_before(d, "A-end", "B-start")


@bb.time_limit(100)
def test_locks_waiting_line_repeats_every_30s_unless_quiet():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk)
    b = Run(d, "B", ["-l", lk, "true"])
    q = Run(d, "Q", ["-q", "-l", lk, "true"])
    rx = re.compile(waiting_rx(lk, a))
    b.wait_err(rx.pattern)
    q.wait_err(rx.pattern)
    bb.wait_for(lambda: len([x for x in lines(b.err()) if rx.fullmatch(x)]) >= 2,
                timeout=60, interval=0.2,
                what="a second waiting line from B (has %r)" % b.err())
    time.sleep(0.5)
    go(d, "A")
    assert a.wait() == 0 and b.wait() == 0 and q.wait() == 0, (b.err(), q.err())
    assert len(lines(q.err())) == 1 and rx.fullmatch(lines(q.err())[0]), q.err()
    assert all(rx.fullmatch(x) for x in lines(b.err())), b.err()


def test_locks_verbose_says_how_long_the_wait_took():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    r = run(d, ["-v", "-l", lk, "true"])
    assert r.rc == 0, r
    assert re.search(r"^supervise: took lock %s after \S+$" % re.escape(lk), r.err, re.M), r.err
    a = holder(d, "A", lk)
    b = Run(d, "B", ["-v", "-l", lk, "true"])
    b.wait_err(waiting_rx(lk, a))
    time.sleep(1.0)
    go(d, "A")
    assert a.wait() == 0 and b.wait() == 0, (a.err(), b.err())
    m = re.search(r"^supervise: took lock %s after (\d+(?:\.\d+)?)(ms|s)$"
                  % re.escape(lk), b.err(), re.M)
    assert m, b.err()
    secs = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    assert secs >= 1.0, b.err()


def test_locks_foreign_holder_named_and_foreign_content_kept():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    junk = ("not a supervise record\n" * 200)
    with open(lk, "w") as f:
        f.write(junk)
    fd = os.open(lk, os.O_RDWR)
    try:
        # This test's own process holds it: named from /proc/locks.
        fcntl.flock(fd, fcntl.LOCK_EX)
        me = kernel_rx(os.getpid(), proc_cmdline(os.getpid()))
        r = run(d, ["-w", "0", "-l", lk, "touch", "marker"])
        assert r.rc == 75, r
        m = re.fullmatch(r"supervise: gave up waiting for lock %s after 0s \(-w 0\); held by %s\n"
                         % (re.escape(lk), me), r.err)
        assert m, r.err
        assert abs(epoch_of(m.group("started")) - proc_started(os.getpid())) <= 1, r.err
        b = Run(d, "B", ["-l", lk, "sh", "-c", MARK, "sh", "B"])
        b.wait_err(r"supervise: waiting for lock %s; held by %s" % (re.escape(lk), me))
        time.sleep(0.3)
        assert b.alive() and "B-start" not in events(d)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert b.wait() == 0, b.err()
    # Not a supervise lock file: locked, never written into.
    assert bb.read(lk) == junk, "foreign content changed: %r" % bb.read(lk)[:300]
    assert not os.path.exists(os.path.join(d, "marker"))


# ------------------------------------------- the holder, from the kernel

FLOCK = "/usr/bin/flock"


def flock_holder(d, name, args=None, lock="lk"):
    """Starts flock(1) holding lock (relative to d) until go(d, name); waits
    until it holds.  Returns (Popen, argv); argv[0] is flock's full path."""
    if not os.path.exists(FLOCK):
        raise bb.Skip("no %s" % FLOCK)
    script = ('touch held-%s; while [ ! -e go-%s ]; do sleep 0.02; done'
              % (name, name))
    argv = [FLOCK] + list(args or []) + [lock, "-c", script]
    p = subprocess.Popen(argv, cwd=d, stdin=subprocess.DEVNULL)
    bb.wait_for(lambda: os.path.exists(os.path.join(d, "held-" + name)) or p.poll() is not None,
                what="flock to hold %s" % lock)
    assert p.poll() is None, p.returncode
    return p, argv


def write_record(path, pid, since, host=HOST, command="old deploy"):
    with open(path, "w") as f:
        f.write("supervise-lock 1\npid %d\nhost %s\nsince %d\ncommand %s\n"
                % (pid, host, since, command))


def gave_up_line(path, who):
    """Regex of the whole stderr of a -w 0 run that gave up on path."""
    return r"supervise: gave up waiting for lock %s after 0s \(-w 0\); held by %s\n" % (
        re.escape(path), who)


def test_locks_flock_holder_named_from_the_kernel():
    d = bb.tmpdir()
    t0 = time.time()
    f, argv = flock_holder(d, "F")
    t1 = time.time()
    try:
        who = kernel_rx(f.pid, argv)
        r = run(d, ["-w", "0", "-l", "lk", "touch", "marker"])
        assert r.rc == 75, r
        m = re.fullmatch(gave_up_line("lk", who), r.err)
        assert m, r.err
        assert int(t0) - 1 <= epoch_of(m.group("started")) <= t1 + 1, (r.err, t0, t1)
        b = Run(d, "B", ["-l", "lk", "sh", "-c", MARK, "sh", "B"])
        b.wait_err(r"supervise: waiting for lock lk; held by %s" % who)
        time.sleep(0.3)
        assert b.alive() and "B-start" not in events(d)
    finally:
        go(d, "F")
    assert f.wait(timeout=20) == 0
    assert b.wait() == 0, b.err()
    assert not os.path.exists(os.path.join(d, "marker"))


def test_locks_long_holder_command_line_is_cut_with_an_ellipsis():
    d = bb.tmpdir()
    # flock -w 600 lk -c SCRIPT: the script is long, its words short.
    f, argv = flock_holder(d, "F", ["-w", "600"])
    long_argv = argv[:-1] + [argv[-1] + "; : " + " ".join(["word"] * 40)]
    go(d, "F")
    assert f.wait(timeout=20) == 0
    os.unlink(os.path.join(d, "go-F"))
    f = subprocess.Popen(long_argv, cwd=d, stdin=subprocess.DEVNULL)
    try:
        bb.wait_for(lambda: not lock_is_free(os.path.join(d, "lk")), what="flock to hold lk")
        shown = shown_cmdline(long_argv)
        assert shown.endswith(" \u2026") or shown.endswith("word \u2026"), shown
        assert len(shown) <= 82, shown
        r = run(d, ["-w", "0", "-l", "lk", "true"])
        assert r.rc == 75, r
        assert re.fullmatch(gave_up_line("lk", kernel_rx(f.pid, long_argv)), r.err), r.err
        assert "\u2026) , started" not in r.err
    finally:
        go(d, "F")
    assert f.wait(timeout=20) == 0


def test_locks_holder_that_left_the_lock_to_its_descriptor():
    # The shell idiom: "exec 9>>lk; flock 9": the flock process that took
    # the lock is gone, /proc/locks still names it; the shell (here, the
    # sleep it became) holds the lock through its descriptor 9.
    if not os.path.exists(FLOCK):
        raise bb.Skip("no %s" % FLOCK)
    d = bb.tmpdir()
    sh = subprocess.Popen(["sh", "-c", 'exec 9>>lk; %s 9 && touch held && exec sleep 1000' % FLOCK],
                          cwd=d, stdin=subprocess.DEVNULL)
    try:
        bb.wait_for(lambda: os.path.exists(os.path.join(d, "held")) or sh.poll() is not None,
                    what="the shell to hold the lock")
        bb.wait_for(lambda: bb.cmdline(sh.pid) == "sleep 1000", what="the exec of sleep")
        r = run(d, ["-w", "0", "-l", "lk", "true"])
        assert r.rc == 75, r
        assert re.fullmatch(gave_up_line("lk", kernel_rx(sh.pid, ["sleep", "1000"])), r.err), r.err
    finally:
        sh.kill()
        sh.wait()


def test_locks_shared_holders_are_counted():
    d = bb.tmpdir()
    f1, argv1 = flock_holder(d, "F1", ["-s"])
    f2, argv2 = flock_holder(d, "F2", ["-s"])
    try:
        r = run(d, ["-w", "0", "-l", "lk", "true"])
        assert r.rc == 75, r
        assert (re.fullmatch(gave_up_line("lk", kernel_rx(f1.pid, argv1).replace(
                    r" \(from", r", and 1 other process \(from")), r.err) or
                re.fullmatch(gave_up_line("lk", kernel_rx(f2.pid, argv2).replace(
                    r" \(from", r", and 1 other process \(from")), r.err)), r.err
    finally:
        go(d, "F1")
        go(d, "F2")
    assert f1.wait(timeout=20) == 0 and f2.wait(timeout=20) == 0


def test_locks_record_of_a_killed_holder_is_never_shown():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk)
    sup = bb.supervisor_of(a.pid)
    # Both processes of supervise die at once: nobody tidies the record.
    os.kill(sup, signal.SIGKILL)
    bb.try_kill(a.p, signal.SIGKILL)
    a.wait()
    bb.wait_for(lambda: lock_is_free(lk), interval=0.05, what="the lock to be free")
    assert "\npid %d\n" % a.pid in bb.read(lk), bb.read(lk)
    f, argv = flock_holder(d, "F")
    try:
        r = run(d, ["-w", "0", "-l", "lk", "true"])
        assert r.rc == 75, r
        # (The pid, gone, might even have been reused since.)
        assert re.fullmatch(gave_up_line("lk", r"%s; the lock file names pid %d, which is "
                                         r"(gone|now another process)"
                                         % (kernel_rx(f.pid, argv), a.pid)), r.err), r.err
    finally:
        go(d, "F")
    assert f.wait(timeout=20) == 0


def test_locks_hand_written_records_are_checked_against_the_kernel():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    now = int(time.time())
    sleeper = subprocess.Popen(["sleep", "1000"], stdin=subprocess.DEVNULL)
    try:
        # Written while nobody holds the file; flock(1) leaves it as it is.
        for pid, since, host, why in (
                (bb.dead_pid(), now, HOST, ", which is gone"),
                # Alive, but started long after the record was written.
                (sleeper.pid, 1000000000, HOST, ", which is now another process"),
                # Alive and older than the record, holding nothing.
                (sleeper.pid, now + 3600, HOST, ", which does not hold it"),
                (os.getpid(), now + 3600, HOST, ", which does not hold it"),
                # Written elsewhere: not ours to check, and not the holder here.
                (4242, now, "elsewhere.example", " on elsewhere.example")):
            write_record(lk, pid, since, host)
            f, argv = flock_holder(d, "F")
            try:
                r = run(d, ["-w", "0", "-l", "lk", "true"])
                assert r.rc == 75, r
                want = gave_up_line("lk", r"%s; the lock file names pid %d%s"
                                    % (kernel_rx(f.pid, argv), pid, re.escape(why)))
                assert re.fullmatch(want, r.err), (pid, since, r.err)
            finally:
                go(d, "F")
            assert f.wait(timeout=20) == 0
            os.unlink(os.path.join(d, "go-F"))
            os.unlink(os.path.join(d, "held-F"))
        # The holder's own pid, but a record older than the process: the
        # pid was reused; the record is not the holder's.
        f, argv = flock_holder(d, "F")
        try:
            write_record(lk, f.pid, 1000000000)
            r = run(d, ["-w", "0", "-l", "lk", "true"])
            assert r.rc == 75, r
            want = gave_up_line("lk", r"%s; the lock file names pid %d, which is now another "
                                r"process" % (kernel_rx(f.pid, argv), f.pid))
            assert re.fullmatch(want, r.err), r.err
            # The same record with a time after the holder started: the
            # kernel agrees with it, and its words are shown.
            write_record(lk, f.pid, now + 1)
            r = run(d, ["-w", "0", "-l", "lk", "true"], env=dict(os.environ, TZ="UTC0"))
            assert r.rc == 75, r
            assert r.err == ("supervise: gave up waiting for lock lk after 0s (-w 0); held by "
                             "pid %d on %s since %s +0000: old deploy\n"
                             % (f.pid, HOST, time.strftime("%Y-%m-%d %H:%M:%S",
                                                           time.gmtime(now + 1)))), r.err
        finally:
            go(d, "F")
        assert f.wait(timeout=20) == 0
    finally:
        sleeper.kill()
        sleeper.wait()


def test_locks_unknown_holder_is_said_plainly():
    # The process that took the lock exits; the lock lives on in this
    # test's descriptor.  Seen as another user, whose processes' descriptors
    # are out of sight, nothing names the holder.
    d = bb.tmpdir(shared=True)
    lk = os.path.join(d, "lk")
    fd = os.open(lk, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        taker = os.fork()
        if taker == 0:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            finally:
                os._exit(0)
        assert os.waitpid(taker, 0)[1] == 0
        # Seen as ourselves: this process holds it.
        r = run(d, ["-w", "0", "-l", lk, "true"])
        assert r.rc == 75, r
        assert re.fullmatch(gave_up_line(lk, kernel_rx(os.getpid(), proc_cmdline(os.getpid()))),
                            r.err), r.err
        if os.geteuid() != 0:
            raise bb.Skip("needs root to run as another user")
        r = run(d, ["-w", "0", "-l", lk, "true"], **_as_other_user())
        assert r.rc == 75, r
        assert r.err == ("supervise: gave up waiting for lock %s after 0s (-w 0); held by an "
                         "unknown process; /proc/locks names pid %d, which is gone\n" % (lk, taker)), r.err
    finally:
        os.close(fd)


def test_locks_since_is_a_date_time_and_zone_honouring_tz():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk)
    since = int(bb.read(lk).split("\nsince ")[1].split("\n")[0])
    for tz, zone in (("UTC0", "+0000"), ("XYZ-5:30", "+0530"), ("ABC+7", "-0700")):
        r = run(d, ["-w", "0", "-l", lk, "true"], env=dict(os.environ, TZ=tz))
        assert r.rc == 75, r
        m = re.fullmatch(gave_up_rx(lk, "0") + holder_rx(a) + "\n", r.err)
        assert m, (tz, r.err)
        assert m.group("since").endswith(" " + zone), (tz, r.err)
        assert epoch_of(m.group("since")) == since, (tz, r.err, since)
    go(d, "A")
    assert a.wait() == 0, a.err()


# ------------------------------------------------------------ the record

def test_locks_holder_record_written():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    t0 = time.time()
    r = Run(d, "A", ["-l", lk, "--", "sh", "-c", ":", "x\ty", "caf\u00e9", "a\nb"])
    assert r.wait() == 0, r.err()
    t1 = time.time()
    content = bb.read(lk)
    m = re.fullmatch(r"supervise-lock 1\npid (\d+)\nhost (.*)\nsince (\d+)\ncommand (.*)\n",
                     content)
    assert m, repr(content)
    assert int(m.group(1)) == r.pid, (content, r.pid)
    assert m.group(2) == HOST, content
    assert int(t0) - 1 <= int(m.group(3)) <= int(t1) + 1, (content, t0, t1)
    # Non-printable bytes (tab, newline, each byte of UTF-8) as '?'.
    assert m.group(4) == "sh -c : x?y caf?? a?b", content
    # The record is there while the run holds the lock, too.
    a = holder(d, "H", lk)
    content = bb.read(lk)
    assert content == "supervise-lock 1\npid %d\nhost %s\nsince %s\ncommand %s\n" % (
        a.pid, HOST, content.split("\n")[3].split()[1], a.cmd), repr(content)
    assert int(a.t0) - 1 <= int(content.split("\n")[3].split()[1]) <= int(a.t1) + 1
    go(d, "H")
    assert a.wait() == 0, a.err()


def test_locks_missing_lock_file_created_0644():
    d = bb.tmpdir()
    for mask in (0, 0o022):
        old = os.umask(mask)
        try:
            lk = os.path.join(d, "new-%o" % mask)
            r = run(d, ["-l", lk, "true"])
        finally:
            os.umask(old)
        assert r.rc == 0 and r.err == "", r
        st = os.lstat(lk)
        assert stat.S_ISREG(st.st_mode), oct(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o644, "umask %o: mode %o" % (mask, stat.S_IMODE(st.st_mode))
        assert st.st_uid == os.geteuid()
    # A relative name is created relative to the working directory.
    r = run(d, ["-l", "rel", "true"])
    assert r.rc == 0, r
    assert os.path.isfile(os.path.join(d, "rel"))


# ------------------------------------------------------- refused lock paths

def test_locks_symlink_refused():
    d = bb.tmpdir()
    target = os.path.join(d, "precious")
    with open(target, "w") as f:
        f.write("precious data\n")
    os.utime(target, (1000000000, 1000000000))
    before = os.stat(target)
    sym = os.path.join(d, "lksym")
    os.symlink(target, sym)
    dangling = os.path.join(d, "lkdang")
    os.symlink(os.path.join(d, "nonexist"), dangling)
    for path in (sym, dangling, "lksym"):
        for extra in ([], ["-w", "0"]):
            r = run(d, extra + ["-l", path, "--teardown-on=always", "-T", "touch td-marker",
                                "touch", "marker"])
            assert r.rc == 125, (path, r)
            assert r.err == "supervise: lock file '%s' is a symbolic link\n" % path, r.err
    after = os.stat(target)
    assert bb.read(target) == "precious data\n"
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == \
        (before.st_size, before.st_mtime_ns, before.st_ino)
    assert not os.path.lexists(os.path.join(d, "nonexist")), "the symlink's target was created"
    assert os.path.islink(sym) and os.path.islink(dangling)
    assert not os.path.exists(os.path.join(d, "marker"))
    assert not os.path.exists(os.path.join(d, "td-marker"))
    # A symlink in the directory part is fine (only the last one is refused).
    os.symlink(d, os.path.join(d, "dirlink"))
    r = run(d, ["-l", os.path.join(d, "dirlink", "viadir"), "true"])
    assert r.rc == 0, r
    assert os.path.isfile(os.path.join(d, "viadir"))


def test_locks_non_regular_refused():
    d = bb.tmpdir()
    sub = os.path.join(d, "sub")
    os.mkdir(sub)
    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo)
    for path, exact in ((fifo, True), ("/dev/null", True), (sub, False), (d + "/", False)):
        r = run(d, ["-l", path, "--teardown-on=always", "-T", "touch td-marker",
                    "touch", "marker"], timeout=20)
        assert r.rc == 125, (path, r)
        if exact:
            assert r.err == "supervise: lock file '%s' is not a regular file\n" % path, r.err
        else:
            assert r.err in ("supervise: lock file '%s' is not a regular file\n" % path,
                             "supervise: cannot open lock file '%s': Is a directory\n" % path), r.err
        assert not os.path.exists(os.path.join(d, "marker")), path
        assert not os.path.exists(os.path.join(d, "td-marker")), path
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(sub) == []


def test_locks_missing_directory():
    d = bb.tmpdir()
    for path in (os.path.join(d, "nodir", "x"), "nodir/x", os.path.join(d, "a", "b", "c")):
        r = run(d, ["-l", path, "--teardown-on=always", "-T", "touch td-marker",
                    "touch", "marker"])
        assert r.rc == 125, (path, r)
        assert r.err == "supervise: cannot open lock file '%s': No such file or directory\n" % path, r.err
    made = [x for x in os.listdir(d) if not x.endswith(".err")]
    assert made == [], "created: %s" % made


def _as_other_user():
    """Keywords for Run and run(): when we are root, supervise runs as an
    unprivileged user, from a copy that user can reach (the checkout may
    be in a home directory of mode 700)."""
    if os.geteuid() == 0:
        sup, = bb.stage(bb.tmpdir(shared=True), bb.SUPERVISE)
        return dict(user=65534, group=65534, extra_groups=[], sup=sup)
    return {}


def test_locks_unreadable_or_uncreatable_is_an_error_readonly_is_fine():
    d = bb.tmpdir(shared=True)
    kw = _as_other_user()
    # Unreadable file: a clear error, never a run without the lock.
    closed = os.path.join(d, "closed")
    open(closed, "w").close()
    os.chmod(closed, 0)
    r = run(d, ["-l", closed, "touch", "/dev/null"], **kw)
    assert r.rc == 125, r
    assert r.err == "supervise: cannot open lock file '%s': Permission denied\n" % closed, r.err
    # Missing file in a directory we cannot write to.
    ro = os.path.join(d, "ro")
    os.mkdir(ro)
    os.chmod(ro, 0o555)
    if os.geteuid() == 0:
        os.chown(ro, 0, 0)
    r = run(d, ["-l", os.path.join(ro, "x"), "true"], **kw)
    assert r.rc == 125, r
    assert r.err == "supervise: cannot open lock file '%s': Permission denied\n" % \
        os.path.join(ro, "x"), r.err
    # Readable but not writable: the lock works (no record written).
    shared = os.path.join(d, "shared")
    with open(shared, "w") as f:
        f.write("old\n")
    os.chmod(shared, 0o444)
    marker = os.path.join(d, "marker-ro")
    os.mkdir(os.path.join(d, "rw"))
    os.chmod(os.path.join(d, "rw"), 0o777)
    b = Run(d, "B", ["-l", shared, "sh", "-c",
                     'touch "$0" || exit 9; while [ ! -e "$0.go" ]; do sleep 0.02; done',
                     os.path.join(d, "rw", "m")], cwd="/", **kw)
    p = b.p
    try:
        bb.wait_for(lambda: os.path.exists(os.path.join(d, "rw", "m")) or p.poll() is not None,
                    what="the read-only holder's COMMAND")
        assert p.poll() is None, (p.returncode, bb.read(os.path.join(d, "B.err")))
        r = run(d, ["-w", "0", "-l", shared, "touch", marker])
        assert r.rc == 75, r
        assert not os.path.exists(marker)
        assert not lock_is_free(shared)
    finally:
        open(os.path.join(d, "rw", "m.go"), "w").close()
    assert p.wait(timeout=30) == 0, bb.read(os.path.join(d, "B.err"))
    assert lock_is_free(shared)


def test_locks_too_many_locks():
    d = bb.tmpdir()
    args = []
    for i in range(65):
        args += ["-l", os.path.join(d, "l%02d" % i)]
    r = run(d, args + ["touch", "marker"])
    assert r.rc == 125, r
    assert r.err == "supervise: too many locks (at most 64)\n" + bb.TRY_HELP, r.err
    assert not os.path.exists(os.path.join(d, "marker"))
    r = run(d, args[2:] + ["touch", "marker"])
    assert r.rc == 0, r
    assert os.path.exists(os.path.join(d, "marker"))
    for i in range(1, 65):
        assert os.path.isfile(os.path.join(d, "l%02d" % i))
        assert lock_is_free(os.path.join(d, "l%02d" % i))


def test_locks_bad_lock_wait_is_a_usage_error():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")

    def check(args, line):
        r = run(d, args)
        assert (r.rc, r.err) == (125, "supervise: %s\n%s" % (line, bb.TRY_HELP)), r
        assert not os.path.exists(os.path.join(d, "marker")), "COMMAND ran"
    bb.check_cases([
        # name, arguments, message
        ("letters", ["-w", "abc", "-l", lk, "touch", "marker"], "invalid duration 'abc'"),
        ("negative", ["-w", "-1", "-l", lk, "touch", "marker"], "invalid duration '-1'"),
        ("exponent", ["-w", "1e3", "-l", lk, "touch", "marker"], "invalid duration '1e3'"),
        ("leading space", ["-w", " 1", "-l", lk, "touch", "marker"], "invalid duration ' 1'"),
        ("-l without its argument", ["-l"], "option '-l' requires an argument"),
    ], check)


# ------------------------------------------------- same lock, other names

def test_locks_relative_and_absolute_paths_are_one_lock():
    d = bb.tmpdir()
    os.mkdir(os.path.join(d, "sub"))
    os.symlink(d, os.path.join(d, "dirlink"))
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk)
    names = ["lk", "./lk", "sub/../lk", "dirlink/lk", os.path.join(d, "sub", "..", "lk"),
             os.path.join(d, "dirlink", "lk"), "//" + lk.lstrip("/")]
    for name in names:
        r = run(d, ["-w", "0", "-l", name, "touch", "marker"])
        assert r.rc == 75, (name, r)
        assert re.fullmatch(gave_up_rx(name, "0") + holder_rx(a) + "\n", r.err), r.err
    # From another directory, relative to it.
    r = run(os.path.join(d, "sub"), ["-w", "0", "-l", "../lk", "touch", "../marker"])
    assert r.rc == 75, r
    assert not os.path.exists(os.path.join(d, "marker"))
    go(d, "A")
    assert a.wait() == 0, a.err()
    # The same file named several ways in one run is one lock, taken once.
    r = run(d, ["-w", "0"] + sum((["-l", n] for n in names), []) + ["touch", "marker"])
    assert r.rc == 0, r
    assert os.path.exists(os.path.join(d, "marker"))


def test_locks_order_ignores_a_leading_double_slash():
    """Locks are taken in the order of their absolute paths, however they
    are named: "//dir/b" sorts as "/dir/b", after "/dir/a" (musl's
    realpath() keeps a leading "//", glibc's does not)."""
    d = bb.tmpdir()
    la, lb = os.path.join(d, "a"), os.path.join(d, "b")
    open(lb, "w").close()
    a = holder(d, "A", la)
    b = Run(d, "B", ["-l", "//" + lb.lstrip("/"), "-l", la, "sh", "-c", MARK, "sh", "B"])
    b.wait_err(waiting_rx(la, a))
    # Waiting for a, the run must not hold b: with a run that took a and
    # then waits for b, each would wait for the other forever.
    assert lock_is_free(lb), b.err()
    go(d, "A")
    assert a.wait() == 0, a.err()
    assert b.wait() == 0, b.err()
    assert events(d) == ["A-start", "A-end", "B-start"], log(d)


# ------------------------------------------------------- giving up, cancel

def test_locks_cancel_while_waiting():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk)
    waiting = {}
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        name = sig.name
        waiting[sig] = Run(d, name, ["-l", lk, "--teardown-on=always",
                                     "-T", "touch td-%s" % name, "touch", "marker-" + name])
    for sig, w in waiting.items():
        w.wait_err(waiting_rx(lk, a))
    for sig, w in waiting.items():
        os.kill(w.pid, sig)
        rc = w.wait(20)
        assert rc == 128 + sig, (sig, rc, w.err())
        assert a.alive(), "the holder ended: the cancel was not what ended the wait"
        ls = lines(w.err())
        assert len(ls) == 2 and re.fullmatch(waiting_rx(lk, a), ls[0]), w.err()
        assert ls[1] == "supervise: cancelled by %s while waiting for lock %s" % (sig.name, lk), w.err()
    go(d, "A")
    assert a.wait() == 0, a.err()
    left = [n for n in os.listdir(d) if n.startswith(("marker", "td-"))]
    assert left == [], "COMMAND or teardown ran: %s" % left
    assert lock_is_free(lk)


def test_locks_cancel_arriving_with_the_lock_is_not_lost():
    # The cancel and the lock's release arrive together: the front is
    # stopped (SIGSTOP) while it waits, the holder releases the lock (the
    # front's helper takes it and exits), SIGTERM is sent, then SIGCONT.
    # SIGTERM came before COMMAND could start: cancelled, exit 143,
    # COMMAND not started, no teardown -- not a run that ignores it.
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk)
    b = Run(d, "B", ["-l", lk, "--teardown-on=always", "-T", "touch td-marker",
                     "sh", "-c", 'touch marker; sleep 2; touch marker-end'])
    b.wait_err(waiting_rx(lk, a))
    helpers = bb.wait_for(lambda: bb.children(b.pid), what="the front's lock waiter")
    os.kill(b.pid, signal.SIGSTOP)
    try:
        bb.wait_for(lambda: bb.proc_state(b.pid) == "T", what="the front to stop")
        go(d, "A")
        assert a.wait() == 0, a.err()
        # The helper has the lock and has exited: its SIGCHLD is pending.
        bb.wait_for(lambda: all(bb.proc_state(h) in ("Z", None) for h in helpers),
                    what="the waiter %s to end" % helpers)
        os.kill(b.pid, signal.SIGTERM)
    finally:
        bb.try_kill(b.p, signal.SIGCONT)
    rc = b.wait()
    assert "supervise: cancelled by SIGTERM while waiting for lock %s" % lk in lines(b.err()), b.err()
    started = [n for n in ("marker", "marker-end", "td-marker") if os.path.exists(os.path.join(d, n))]
    assert (rc, started) == (143, []), \
        "cancel lost: rc %s, started %s, stderr %r" % (rc, started, b.err())
    assert lock_is_free(lk)


def test_locks_sigkill_to_waiting_front_leaves_no_waiter():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk)
    b = Run(d, "B", ["-l", lk, "touch", "marker"])
    b.wait_err(waiting_rx(lk, a))
    os.kill(b.pid, signal.SIGKILL)
    assert b.wait() == -signal.SIGKILL
    # Whatever B forked to wait for the lock must go with it (and must not
    # take the lock on B's behalf once A releases it).
    bb.wait_for(lambda: not [p for p in bb.descendants() if p != a.pid and
                             a.pid not in _ancestors(p)],
                what="B's processes to go (left: %s)" % bb.descendants())
    go(d, "A")
    assert a.wait() == 0, a.err()
    r = run(d, ["-w", "0", "-l", lk, "true"])
    assert r.rc == 0, r
    assert not os.path.exists(os.path.join(d, "marker"))


def _ancestors(pid):
    out = []
    while pid > 1:
        try:
            with open("/proc/%d/stat" % pid) as f:
                data = f.read()
        except OSError:
            break
        pid = int(data[data.rindex(")") + 2:].split()[1])
        out.append(pid)
    return out


def _waiting_child_of_shell(d, name, lk, holder_run, opts=()):
    """sh -c 'supervise ... &; wait': a shell that is the waiting front's
    parent.  Returns (shell Popen, front pid, stderr path) once the front
    waits for lk."""
    errpath = os.path.join(d, name + ".err")
    sh = subprocess.Popen(["sh", "-c", '"$@" 2>"$ERR" & echo $!; wait', "sh", bb.SUPERVISE]
                          + list(opts) + ["-l", lk, "--teardown-on=always",
                                          "-T", "touch td-" + name, "touch", "marker-" + name],
                          cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                          env=dict(os.environ, ERR=errpath))
    front = int(sh.stdout.readline())
    sh.stdout.close()
    bb.wait_for(lambda: re.search(waiting_rx(lk, holder_run), bb.read(errpath)),
                what="the waiting line (has %r)" % bb.read(errpath))
    return sh, front, errpath


def _status_of_orphan(pid, timeout=20):
    """Exit status of a process reparented to us (we are a subreaper)."""
    def status():
        try:
            got, st = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None          # not reparented to us yet
        return (st,) if got == pid else None
    st, = bb.wait_for(status, timeout, what="process %d to end" % pid)
    assert os.WIFEXITED(st), st
    return os.WEXITSTATUS(st)


def test_locks_parent_death_while_waiting():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk)
    sh, front, errpath = _waiting_child_of_shell(d, "B", lk, a)
    os.kill(sh.pid, signal.SIGKILL)
    assert sh.wait(timeout=20) == -signal.SIGKILL
    rc = _status_of_orphan(front)
    assert rc == 129, (rc, bb.read(errpath))
    assert a.alive()
    ls = lines(bb.read(errpath))
    assert len(ls) == 2, ls
    assert ls[1] == "supervise: parent process %d died while waiting for lock %s" % (sh.pid, lk), ls
    # With --ignore-parent-death the wait goes on, and the run with it.
    sh, front, errpath = _waiting_child_of_shell(d, "C", lk, a, ["--ignore-parent-death"])
    os.kill(sh.pid, signal.SIGKILL)
    assert sh.wait(timeout=20) == -signal.SIGKILL
    time.sleep(0.5)
    assert bb.alive(front), bb.read(errpath)
    go(d, "A")
    assert a.wait() == 0, a.err()
    rc = _status_of_orphan(front)
    assert rc == 0, (rc, bb.read(errpath))
    assert os.path.exists(os.path.join(d, "marker-C"))
    assert os.path.exists(os.path.join(d, "td-C"))
    assert not os.path.exists(os.path.join(d, "marker-B"))
    assert not os.path.exists(os.path.join(d, "td-B"))


def test_locks_timeout_not_consumed_by_the_wait():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk)
    b = Run(d, "B", ["-t", "1", "-l", lk, "sh", "-c", "sleep 0.5; " + MARK, "sh", "B"])
    b.wait_err(waiting_rx(lk, a))
    time.sleep(2)
    assert b.alive()
    go(d, "A")
    assert a.wait() == 0, a.err()
    rc = b.wait()
    assert rc == 0, (rc, b.err())
    assert "timed out" not in b.err(), b.err()
    assert_before(d, "A-end", "B-start")


# ------------------------------------------------ inheritance and escapes

def test_locks_daemonised_grandchild_does_not_keep_the_lock():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    script = (LIST_FDS % "cmd.fds" + "; "
              "setsid sh -c '" + LIST_FDS % "daemon.fds" + "; echo $$ > daemon.pid; "
              "exec sleep 1000' & "
              '"$1" -w 0 -l "$2" true 2> nested.err; echo $? > nested.rc; '
              "while [ ! -s daemon.pid ] || [ ! -s daemon.fds ]; do sleep 0.02; done; exit 0")
    r = run(d, ["-l", lk, "--teardown-on=always", "-T", LIST_FDS % "td.fds",
                "sh", "-c", script, "sh", bb.SUPERVISE, lk])
    assert r.rc == 0, r
    # Right after the run: the lock is free.
    r2 = run(d, ["-w", "0", "-l", lk, "true"])
    assert r2.rc == 0, r2
    daemon = bb.pids_in(os.path.join(d, "daemon.pid"))
    assert daemon, "the daemon never started"
    bb.assert_gone(daemon)
    # Inside the run the lock was held, but by supervise only.
    assert bb.read(os.path.join(d, "nested.rc")).strip() == "75", bb.read(os.path.join(d, "nested.err"))
    assert "gave up waiting for lock %s" % lk in bb.read(os.path.join(d, "nested.err"))
    real = os.path.realpath(lk)
    for name in ("cmd.fds", "daemon.fds", "td.fds"):
        fds = fd_targets(os.path.join(d, name))
        assert fds, "%s is empty" % name
        bad = [t for t in fds if t == real or t.startswith(real + " ") or t == lk]
        assert not bad, "%s has the lock file open: %s" % (name, fds)


def test_locks_surviving_daemon_holds_no_lock_fd():
    # A daemon that ignores SIGTERM outlives COMMAND (supervise's stop is
    # in its grace): seen from outside, it has no descriptor of the lock;
    # supervise keeps the lock until the daemon is gone.
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    script = ("setsid sh -c 'trap \"\" TERM; echo $$ > daemon.pid; "
              "while [ ! -e go-daemon ]; do sleep 0.05; done' & "
              "while [ ! -s daemon.pid ]; do sleep 0.02; done; exit 0")
    r = Run(d, "A", ["-k", "60", "-l", lk, "sh", "-c", script])
    daemon = bb.wait_for(lambda: bb.pids_in(os.path.join(d, "daemon.pid")),
                         what="the daemon's pid")[0]
    real = os.path.realpath(lk)
    fds = []
    for fd in os.listdir("/proc/%d/fd" % daemon):
        try:
            fds.append(os.readlink("/proc/%d/fd/%s" % (daemon, fd)))
        except OSError:
            pass
    assert fds and not [t for t in fds if t.startswith(real)], fds
    r.wait_err(r"supervise: command exited; stopping \d+ leftover process(es)? with SIGTERM")
    assert bb.alive(daemon)
    # COMMAND is gone, its daemon lives on (in the grace): the lock is
    # still held by supervise, which is still running.
    assert not lock_is_free(lk)
    go(d, "daemon")
    assert r.wait() == 0, r.err()
    bb.assert_gone([daemon])
    assert lock_is_free(lk)


def test_locks_with_standard_descriptors_closed():
    # Started with 0, 1 and 2 closed: the lock must not take one of those
    # numbers (COMMAND would get it as its stdin/stdout).
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    script = (LIST_FDS % "cmd.fds" + '; touch started; '
              'while [ ! -e go ]; do sleep 0.02; done')
    p = subprocess.Popen(["sh", "-c", 'exec 0<&- 1>&- 2>&-; exec "$@"', "sh", bb.SUPERVISE,
                          "-l", lk, "sh", "-c", script], cwd=d)
    try:
        bb.wait_for(lambda: os.path.exists(os.path.join(d, "started")) or p.poll() is not None,
                    what="COMMAND to start")
        assert p.poll() is None, p.returncode
        r = run(d, ["-w", "0", "-l", lk, "true"])
        assert r.rc == 75, r
    finally:
        open(os.path.join(d, "go"), "w").close()
    assert p.wait(timeout=30) == 0
    fds = fd_targets(os.path.join(d, "cmd.fds"))
    assert fds and os.path.realpath(lk) not in fds, fds
    assert lock_is_free(lk)


# ------------------------------------ held until front and supervisor end

def _teardown_run(d, name, lk, cmd):
    return Run(d, name, ["-l", lk, "--teardown-on=always",
                         "-T", TD_WAIT % (name, name, name)] + cmd)


def _assert_still_held(d, lk):
    r = run(d, ["-w", "0", "-l", lk, "touch", "marker-early"])
    assert r.rc == 75, ("the lock was free while a teardown ran", r)
    assert not os.path.exists(os.path.join(d, "marker-early"))


def test_locks_front_sigkilled_in_teardown_lock_held_until_it_ends():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = _teardown_run(d, "A", lk, ["sh", "-c", MARK, "sh", "A"])
    wait_logged(d, "A-td-start")
    sup = bb.supervisor_of(a.pid)
    os.kill(a.pid, signal.SIGKILL)
    assert a.wait() == -signal.SIGKILL
    assert bb.alive(sup)
    _assert_still_held(d, lk)
    b = Run(d, "B", ["-l", lk, "sh", "-c", MARK, "sh", "B"])
    # The record names the front, which is gone: the supervisor holds
    # the lock now, as the kernel shows.
    b.wait_err(r"supervise: waiting for lock %s; held by %s; the lock file names pid %d, "
               r"which is gone" % (re.escape(lk), kernel_rx(sup, proc_cmdline(sup)), a.pid))
    time.sleep(0.5)
    assert "B-start" not in events(d)
    open(os.path.join(d, "tdgo-A"), "w").close()
    assert b.wait() == 0, b.err()
    bb.assert_gone([sup])
    assert events(d) == ["A-start", "A-td-start", "A-td-end", "B-start"], log(d)
    assert_before(d, "A-td-end", "B-start")


def test_locks_supervisor_sigkilled_front_tears_down_before_release():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = _teardown_run(d, "A", lk, ["-k", "2", "sh", "-c", MARK + "; exec sleep 60", "sh", "A"])
    wait_logged(d, "A-start")
    sup = bb.supervisor_of(a.pid)
    os.kill(sup, signal.SIGKILL)
    wait_logged(d, "A-td-start")
    _assert_still_held(d, lk)
    b = Run(d, "B", ["-l", lk, "sh", "-c", MARK, "sh", "B"])
    b.wait_err(r"supervise: waiting for lock %s; held by pid %d on .*" % (re.escape(lk), a.pid))
    time.sleep(0.5)
    assert "B-start" not in events(d)
    open(os.path.join(d, "tdgo-A"), "w").close()
    assert a.wait() == 125, a.err()
    assert b.wait() == 0, b.err()
    assert events(d) == ["A-start", "A-td-start", "A-td-end", "B-start"], log(d)
    assert_before(d, "A-td-end", "B-start")


def test_locks_supervisor_sigkilled_in_teardown_lock_held_until_it_ends():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = _teardown_run(d, "A", lk, ["sh", "-c", MARK, "sh", "A"])
    wait_logged(d, "A-td-start")
    sup = bb.supervisor_of(a.pid)
    os.kill(sup, signal.SIGKILL)
    a.wait_err(r"supervise: supervisor process %d died \(SIGKILL\) during the teardown; "
               r"the teardown goes on" % sup)
    assert a.alive()
    _assert_still_held(d, lk)
    b = Run(d, "B", ["-l", lk, "sh", "-c", MARK, "sh", "B"])
    b.wait_err(r"supervise: waiting for lock %s; held by pid %d on .*" % (re.escape(lk), a.pid))
    time.sleep(0.5)
    assert "B-start" not in events(d)
    open(os.path.join(d, "tdgo-A"), "w").close()
    assert a.wait() == 125, a.err()
    assert b.wait() == 0, b.err()
    assert events(d) == ["A-start", "A-td-start", "A-td-end", "B-start"], log(d)
    assert_before(d, "A-td-end", "B-start")


def test_locks_freed_when_front_and_supervisor_both_sigkilled():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk)
    sup = bb.supervisor_of(a.pid)
    os.kill(sup, signal.SIGKILL)
    # The front may see the supervisor die, stop what is left and exit
    # (125) before its own SIGKILL comes.
    killed = bb.try_kill(a.p, signal.SIGKILL)
    rc = a.wait()
    assert rc in ((-signal.SIGKILL, 125) if killed else (125,)), (killed, rc, a.err())
    bb.assert_gone([sup])
    # COMMAND dies with the supervisor (its death signal); then nothing holds it.
    bb.wait_for(lambda: run(d, ["-w", "0", "-l", lk, "true"]).rc == 0, interval=0.2,
                what="the lock to be free")
    assert lock_is_free(lk)


def test_locks_foreground_mode():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk, ["--foreground"])
    r = run(d, ["--foreground", "-w", "0", "-l", lk, "touch", "marker"])
    assert r.rc == 75, r
    b = Run(d, "B", ["--foreground", "-l", lk, "sh", "-c", MARK, "sh", "B"])
    b.wait_err(waiting_rx(lk, a))
    go(d, "A")
    assert a.wait() == 0 and b.wait() == 0, (a.err(), b.err())
    assert_before(d, "A-end", "B-start")
    assert not os.path.exists(os.path.join(d, "marker"))


# ------------------------------------------------------------ more cases

def test_locks_give_up_on_second_lock_releases_the_first():
    d = bb.tmpdir()
    la, lb = os.path.join(d, "a"), os.path.join(d, "b")
    h = holder(d, "H", lb)
    r = run(d, ["-w", "0.5", "-l", lb, "-l", la, "--teardown-on=always", "-T", "touch td-marker",
                "touch", "marker"])
    assert r.rc == 75, r
    assert re.search(r"^%s%s$" % (gave_up_rx(lb, "0.5"), holder_rx(h)), r.err, re.M), r.err
    assert lock_is_free(la), "the lock taken first was kept"
    assert not os.path.exists(os.path.join(d, "marker"))
    assert not os.path.exists(os.path.join(d, "td-marker"))
    # Cancelled while waiting for the second: the first is released too.
    w = Run(d, "W", ["-l", lb, "-l", la, "touch", "marker"])
    w.wait_err(waiting_rx(lb, h))
    assert not lock_is_free(la)
    os.kill(w.pid, signal.SIGTERM)
    assert w.wait() == 143, w.err()
    assert lock_is_free(la)
    go(d, "H")
    assert h.wait() == 0, h.err()
    assert not os.path.exists(os.path.join(d, "marker"))


def test_locks_path_replaced_by_symlink_while_waiting():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    target = os.path.join(d, "target")
    with open(target, "w") as f:
        f.write("keep\n")
    a = holder(d, "A", lk)
    b = Run(d, "B", ["-l", lk, "touch", "marker"])
    b.wait_err(waiting_rx(lk, a))
    os.unlink(lk)
    os.symlink(target, lk)
    go(d, "A")
    assert a.wait() == 0, a.err()
    assert b.wait() == 125, b.err()
    assert lines(b.err())[-1] == "supervise: lock file '%s' is a symbolic link" % lk, b.err()
    assert bb.read(target) == "keep\n"
    assert not os.path.exists(os.path.join(d, "marker"))


def test_locks_group_sigterm_while_waiting():
    # A CI runner that signals the step's whole process group.
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk)
    b = Run(d, "B", ["-l", lk, "--teardown-on=always", "-T", "touch td-marker",
                     "touch", "marker"], start_new_session=True)
    b.wait_err(waiting_rx(lk, a))
    os.killpg(b.pid, signal.SIGTERM)
    assert b.wait(20) == 143, b.err()
    assert lines(b.err())[-1] == "supervise: cancelled by SIGTERM while waiting for lock %s" % lk
    assert a.alive()
    left = [p for p in bb.descendants() if p != a.pid and a.pid not in _ancestors(p)]
    bb.wait_for(lambda: not [p for p in left if bb.alive(p)], what="B's processes to go")
    go(d, "A")
    assert a.wait() == 0, a.err()
    assert not os.path.exists(os.path.join(d, "marker"))
    assert not os.path.exists(os.path.join(d, "td-marker"))


def test_locks_signal_ignored_at_start_stays_ignored_while_waiting():
    # A background job of a shell starts with SIGINT ignored.
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    a = holder(d, "A", lk)
    b = Run(d, "B", ["-l", lk, "sh", "-c", MARK, "sh", "B"],
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    b.wait_err(waiting_rx(lk, a))
    os.kill(b.pid, signal.SIGINT)
    time.sleep(0.5)
    assert b.alive(), ("an ignored SIGINT ended the wait", b.p.returncode, b.err())
    go(d, "A")
    assert a.wait() == 0 and b.wait() == 0, (a.err(), b.err())
    assert_before(d, "A-end", "B-start")


def test_locks_readable_file_on_read_only_mount():
    # A lock directory mounted read-only (a container's ":ro" volume): the
    # lock needs no write access (flock(1) takes it with O_RDONLY); only
    # the holder record cannot be written.  A missing file there cannot be
    # created: a clear error.
    d = bb.tmpdir()
    ro = os.path.join(d, "ro")
    os.mkdir(ro)
    lk = os.path.join(ro, "lk")
    with open(lk, "w") as f:
        f.write("")
    setup = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && '
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            setup + '! touch "$1/x" 2>/dev/null', "sh", ro],
                           stdin=subprocess.DEVNULL, capture_output=True)
    if probe.returncode != 0:
        raise bb.Skip("cannot make a read-only bind mount here: %r" % probe.stderr[-200:])
    cmd = 'touch "$0/started"; while [ ! -e "$0/go" ]; do sleep 0.02; done'
    with open(os.path.join(d, "ro.err"), "w") as err:
        p = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
                              setup + 'exec "$2" -l "$1/lk" sh -c "$3" "$4"', "sh", ro,
                              bb.SUPERVISE, cmd, d],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        bb.wait_for(lambda: os.path.exists(os.path.join(d, "started")) or p.poll() is not None,
                    what="the run on the read-only mount")
        assert p.poll() is None, ("a readable lock file on a read-only mount was refused",
                                  p.returncode, bb.read(os.path.join(d, "ro.err")))
        r = run(d, ["-w", "0", "-l", lk, "touch", "marker"])
        assert r.rc == 75, r
    finally:
        open(os.path.join(d, "go"), "w").close()
    assert p.wait(timeout=30) == 0, bb.read(os.path.join(d, "ro.err"))
    assert not os.path.exists(os.path.join(d, "marker"))
    # A missing file on the read-only mount: 125, a clear message.
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        setup + 'exec "$2" -l "$1/new" true', "sh", ro, bb.SUPERVISE],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert r.returncode == 125, r
    assert r.stderr == "supervise: cannot open lock file '%s': Read-only file system\n" % \
        os.path.join(ro, "new"), r.stderr


# ----------------------------------------------- contention, janitor, stress

@bb.time_limit(90)
def test_locks_janitor_race_never_two_holders():
    d = bb.tmpdir()
    lk = os.path.join(d, "lk")
    plog = os.path.join(d, "probe.log")
    open(lk, "w").close()
    stop = threading.Event()
    janitor_rounds = [0]
    errors = []

    def janitor():
        # Takes the lock on its own descriptor, unlinks the file, then
        # (mostly) recreates it, and releases: every waiter that opened the
        # old file gets a lock on an inode nobody else will ever lock.
        # Some rounds only delete (a stale-lock cleaner); the next run
        # creates the file again.
        try:
            end = time.monotonic() + 5
            while time.monotonic() < end and not stop.is_set():
                try:
                    fd = os.open(lk, os.O_RDWR)
                except FileNotFoundError:
                    time.sleep(0.005)
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    time.sleep(0.002)
                    os.unlink(lk)
                    if random.random() < 0.7:
                        os.close(os.open(lk, os.O_RDWR | os.O_CREAT, 0o644))
                    fcntl.flock(fd, fcntl.LOCK_UN)
                finally:
                    os.close(fd)
                janitor_rounds[0] += 1
                time.sleep(random.uniform(0, 0.01))
        except BaseException as e:
            errors.append("janitor: %r" % e)
        finally:
            stop.set()

    results = []

    def worker(i):
        try:
            work(i)
        except BaseException as e:
            errors.append("worker %d: %r" % (i, e))

    def work(i):
        n = 0
        while n < 2 or not stop.is_set():
            with open(os.path.join(d, "w%d.err" % i), "a") as err:
                p = subprocess.Popen([bb.SUPERVISE, "-v", "-l", lk, PROBE, "0.03", plog],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=err, cwd=d)
                try:
                    rc = p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                    rc = "hung"
            results.append((i, rc))
            n += 1

    jt = threading.Thread(target=janitor)
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(7)]
    jt.start()
    for w in workers:
        w.start()
    jt.join(60)
    for w in workers:
        w.join(90)
    assert not errors, errors
    assert not jt.is_alive() and not [w for w in workers if w.is_alive()], "threads hung"
    bad = [(i, rc) for i, rc in results if rc != 0]
    assert not bad, (bad, [bb.read(os.path.join(d, "w%d.err" % i)) for i, _ in bad])
    n = probe_runs(plog)
    assert n == len(results), (n, len(results))
    # (With -v each retake is logged; typically dozens per run of this
    # test, but how many is up to the scheduler: not asserted.)
    assert janitor_rounds[0] >= 1
    if os.path.exists(lk):
        assert lock_is_free(lk)


@bb.time_limit(90)
def test_locks_opposite_orders_do_not_deadlock():
    d = bb.tmpdir()
    la, lb = os.path.join(d, "A"), os.path.join(d, "B")
    loga, logb = os.path.join(d, "logA"), os.path.join(d, "logB")
    runs = []
    for i in range(10):
        for order in ((la, lb), (lb, la)):
            runs.append(Run(d, "r%d-%s" % (i, os.path.basename(order[0])),
                            ["-l", order[0], "-l", order[1], PROBE, "0.03", loga, logb]))
    deadline = time.monotonic() + 60
    for r in runs:
        rc = r.wait(max(1, deadline - time.monotonic()))
        assert rc == 0, (r.name, rc, r.err())
    assert probe_runs(loga) == 20
    assert probe_runs(logb) == 20
    assert bb.read(loga) == bb.read(logb), "both locks held by the same runs, in the same order"
    assert lock_is_free(la) and lock_is_free(lb)


@bb.time_limit(100)
def test_locks_stress_random_cancels():
    d = bb.tmpdir()
    seed = random.randrange(1 << 30)
    rnd = random.Random(seed)
    paths = [os.path.join(d, "lock%d" % i) for i in range(3)]
    logs = [os.path.join(d, "log%d" % i) for i in range(3)]
    runs, chosen = [], []
    for i in range(20):
        k = 2 if i % 5 == 0 else 1
        which = rnd.sample(range(3), k)
        chosen.append(which)
        args = []
        for j in which:
            args += ["-l", paths[j]]
        runs.append(Run(d, "r%02d" % i, args + [PROBE, "%.2f" % rnd.uniform(0.05, 0.25)]
                        + [logs[j] for j in which]))
    cancels = sorted((rnd.uniform(0, 3.0), i) for i in rnd.sample(range(20), 7))
    t0 = time.monotonic()
    sent = set()
    for delay, i in cancels:
        time.sleep(max(0, t0 + delay - time.monotonic()))
        # Not before supervise has set up its signal handling: before that
        # (in exec, say) SIGTERM kills any program, supervise included.
        bb.wait_for(lambda: runs[i].p.poll() is not None or handles_sigterm(runs[i].pid),
                    what="run %d to set up its signal handling" % i)
        # A run that has ended by now has nothing to cancel: it must
        # have exited 0.
        if bb.try_kill(runs[i].p, signal.SIGTERM):
            sent.add(i)
    deadline = time.monotonic() + 60
    ctx = "seed %d" % seed
    for i, r in enumerate(runs):
        rc = r.wait(max(1, deadline - time.monotonic()))
        if i in sent:
            assert rc in (0, 143), (ctx, r.name, rc, r.err())
            if rc == 143:
                assert re.search(r"^supervise: cancelled by SIGTERM (while waiting for lock |from pid )",
                                 r.err(), re.M), (ctx, r.name, r.err())
        else:
            assert rc == 0, (ctx, r.name, rc, r.err())
    for lg in logs:
        if os.path.exists(lg):
            probe_runs(lg)
    for p in paths:
        if os.path.exists(p):
            assert lock_is_free(p), (ctx, p)
    left = bb.leftovers(timeout=20)
    assert not left, (ctx, left)
