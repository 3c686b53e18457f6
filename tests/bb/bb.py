"""Helpers for supervise's black-box tests (imported by tests/bb/test_*.py).

Every test runs in a process of its own that is a child subreaper (see
tests/blackbox.py), so processes that escape the run under test end up as
its descendants, where leftovers() finds them.
"""
import ctypes
import functools
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUPERVISE = os.environ.get("SUPERVISE", os.path.join(ROOT, "supervise"))
HELPERS = os.path.join(ROOT, "tests", "helpers")
STATUS_SCHEMA = os.path.join(ROOT, "schema", "status-v1.schema.json")

# The line that follows every usage error.
TRY_HELP = "Try 'supervise --help' for more information.\n"

PR_SET_CHILD_SUBREAPER = 36
_libc = ctypes.CDLL(None, use_errno=True)


class Skip(Exception):
    """Raised by a test that cannot run here; the message says why."""


def set_subreaper():
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


_SYS_RT_SIGACTION = {"x86_64": 13, "aarch64": 134}.get(os.uname().machine)


def reset_signals(keep_python=True):
    """Starts a test from the default signal state, whatever started the
    runner: a shell starts a background job with SIGINT and SIGQUIT ignored,
    nohup ignores SIGHUP, GNU make 4.3 leaves the C library's signals 32
    and 33 ignored.  supervise passes inherited dispositions on to COMMAND,
    as it should, so they would change what the tests see.  With
    keep_python, Python's own SIG_IGN of SIGPIPE and SIGXFSZ stays
    (subprocess resets them in what it starts); without, before an exec."""
    keep = (signal.SIGKILL, signal.SIGSTOP)
    if keep_python:
        keep += (signal.SIGPIPE, signal.SIGXFSZ)
    for s in range(1, 32):
        if s not in keep and signal.getsignal(s) == signal.SIG_IGN:
            signal.signal(s, signal.SIG_DFL)
    if _SYS_RT_SIGACTION is not None:
        # glibc's sigaction() refuses these two: the raw system call.
        for s in (32, 33):
            _libc.syscall(_SYS_RT_SIGACTION, s, (ctypes.c_ulong * 4)(),
                          None, 8)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def time_limit(seconds):
    """Decorator: a time limit other than the runner's default."""
    def wrap(fn):
        fn.time_limit = seconds
        return fn
    return wrap


def require_root():
    if os.geteuid() != 0:
        raise Skip("needs root")


def children(pid):
    out = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def descendants(pid=None):
    """Live (non-zombie) descendants of pid (default: this process)."""
    pid = os.getpid() if pid is None else pid
    out, todo = [], children(pid)
    while todo:
        p = todo.pop()
        st = proc_state(p)
        if st is None:
            continue
        if st != "Z":
            out.append(p)
        todo += children(p)
    return out


def _stat_state(path):
    try:
        with open(path) as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2]


def proc_state(pid):
    """The state of process pid, or None when it is gone.  A process whose
    main thread has exited shows that thread's state, Z, while its other
    threads live on: its state is then that of a live thread."""
    st = _stat_state("/proc/%d/stat" % pid)
    if st == "Z":
        try:
            tasks = os.listdir("/proc/%d/task" % pid)
        except OSError:
            tasks = []
        for t in tasks:
            ts = _stat_state("/proc/%d/task/%s/stat" % (pid, t))
            if ts not in (None, "Z", "X"):
                return ts
    return st


def reap():
    """Reaps zombies among our children (we are a subreaper)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def leftovers(timeout=10.0, keep=()):
    """Waits up to timeout for every descendant to go; returns those left."""
    deadline = time.monotonic() + timeout
    while True:
        reap()
        left = [p for p in descendants() if p not in keep]
        if not left or time.monotonic() > deadline:
            return ["%d:%s" % (p, cmdline(p)) for p in left]
        time.sleep(0.02)


def kill_descendants():
    for _ in range(50):
        left = descendants()
        if not left:
            break
        for p in left:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)
        reap()
    reap()


def wait_for(cond, timeout=20.0, interval=0.01, what="condition"):
    """Polls cond() until it is true; fails after timeout (generous)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def alive(pid):
    st = proc_state(pid)
    return st is not None and st != "Z"


def try_kill(target, sig):
    """Sends sig to target (a pid, or a subprocess.Popen) unless it has
    already exited; returns whether it was sent.

    A test that signals a process which may end by itself at any moment (a
    random moment, a short deadline, a loaded machine) uses this, and
    checks in either case what must hold.  False: the process is gone, or
    a zombie (exited, not yet reaped), or a Popen already waited for; the
    signal can have had no effect.  True says only that the process had
    not exited when we looked: it may have been on its way out.

    A pid is reused only once its process has been reaped and the pid
    numbers have wrapped around, so aim only at a process seen alive a
    moment ago, whose parent (us, or the front for the supervisor) is
    still there."""
    if isinstance(target, subprocess.Popen):
        if target.poll() is not None:
            return False
        pid = target.pid
    else:
        pid = target
    if proc_state(pid) in (None, "Z"):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def try_killpg(pgid, sig):
    """Sends sig to process group pgid; returns False when no process is
    left in it (ESRCH) instead of raising."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def assert_gone(pids, timeout=20.0):
    """Every pid is dead (or a zombie) within timeout."""
    wait_for(lambda: not [p for p in pids if alive(p)], timeout,
             what="processes %s to end" % list(pids))


class Result:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def __repr__(self):
        return "Result(rc=%r, out=%r, err=%r)" % (self.rc, self.out, self.err)


def run(args, timeout=60, input=None, env=None, cwd=None, **kw):
    """Runs supervise with args; returns Result(rc, stdout, stderr) as text."""
    p = subprocess.run([SUPERVISE] + list(args), input=input,
                       capture_output=True, timeout=timeout, env=env, cwd=cwd,
                       text=True, errors="replace", **kw)
    return Result(p.returncode, p.stdout, p.stderr)


def start(args, **kw):
    """Starts supervise with args; returns the Popen (stderr piped by default)."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("text", True)
    return subprocess.Popen([SUPERVISE] + list(args), **kw)


def dead_pid():
    """The pid of a process that has exited and been reaped (a pid that
    is unlikely to be reused during the test)."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


# The temporary directories made, with the pid of the process that made
# each: a test's own are removed when it ends (remove_tmpdirs()), never
# those the runner made before it forked the test.
_made = []


def tmpdir(shared=False):
    """A new temporary directory, removed when the test ends; with shared,
    one every user can reach (shared_tmpdir())."""
    if shared:
        return shared_tmpdir()
    d = tempfile.mkdtemp(prefix="supervise-test-")
    _made.append((os.getpid(), d))
    return d


def remove_tmpdirs():
    """Removes the temporary directories this process made; an immutable
    file (chattr +i) left in one is made mutable first."""
    mine = [d for pid, d in _made if pid == os.getpid()]
    for d in mine:
        shutil.rmtree(d, ignore_errors=True)
        if os.path.lexists(d):
            subprocess.run(["chattr", "-R", "-i", d], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False, timeout=60)
            shutil.rmtree(d, ignore_errors=True)
    _made[:] = [(pid, d) for pid, d in _made if pid != os.getpid()]


def default_signals():
    """The signals supervise treats specially at their default disposition
    (Python's own SIGINT handler included) and nothing blocked in this test
    process, whatever the runner was started with."""
    for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP,
              signal.SIGALRM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH,
              signal.SIGCHLD):
        signal.signal(s, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def default_signal_state(fn):
    """Decorator: the test starts with default_signals()."""
    @functools.wraps(fn)
    def wrapper():
        default_signals()
        fn()
    return wrapper


def _searchable_by_all(path):
    """Whether every user may search path and every directory above it."""
    path = os.path.realpath(path)
    while True:
        try:
            if not os.stat(path).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
        if path == "/":
            return True
        path = os.path.dirname(path)


def shared_tmpdir():
    """A new temporary directory of mode 0755 that every user can reach:
    under the usual one ($TMPDIR or /tmp) when others may search every
    directory above it, else under /tmp.  Removed when the test ends."""
    base = tempfile.gettempdir()
    if not _searchable_by_all(base):
        base = "/tmp"
    d = tempfile.mkdtemp(prefix="supervise-test-", dir=base)
    os.chmod(d, 0o755)
    _made.append((os.getpid(), d))
    return d


def stage(d, *programs):
    """Copies each program (a path: supervise, a helper, a script) into d,
    a directory from shared_tmpdir(), for a test that runs it as another
    user.  That user may not reach the checkout: a clone in a home
    directory of mode 0700 is out of its reach, and so is everything in
    it.  Each copy keeps its file name, gets mode 0755, and is removed
    with d.  Returns the copies' paths, in order."""
    out = []
    for prog in programs:
        dst = os.path.join(d, os.path.basename(prog))
        shutil.copyfile(prog, dst)
        os.chmod(dst, 0o755)
        out.append(dst)
    return out


def check_cases(cases, check):
    """Table-driven tests: runs check(*row) for each (name, *row) in cases,
    all of them even when some fail, and then fails naming every case
    that failed, with its assertion and the line that made it."""
    failed = []
    for name, *row in cases:
        try:
            check(*row)
        except AssertionError as e:
            where = traceback.extract_tb(e.__traceback__)[-1]
            failed.append("case %r: %s (line %d: %s)"
                          % (name, e, where.lineno, where.line))
    assert not failed, "%d of %d cases failed:\n%s" % (
        len(failed), len(cases), "\n".join(failed))


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def pids_in(path):
    """The integers in a file (processes that wrote their pid there)."""
    return [int(x) for x in read(path).split() if x.strip().isdigit()]


def supervisor_of(front_pid, gone_ok=False, timeout=20.0):
    """The supervisor process: the front's child that is in a session of
    its own.  With gone_ok, None when the front has exited (or reaped its
    supervisor and is on its way out) before one was seen: a run that
    ends by itself may be over before the test looks."""
    def find():
        for c in children(front_pid):
            try:
                if os.getsid(c) == c:
                    return c
            except ProcessLookupError:
                pass      # reaped since children() listed it
        return None
    deadline = time.monotonic() + timeout
    while True:
        sup = find()
        if sup is not None:
            return sup
        if gone_ok and not alive(front_pid):
            return None
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for the supervisor "
                                 "process of %d" % (timeout, front_pid))
        time.sleep(0.01)


# ------------------------------------------------------------ status files

# Where Debian's python3-jsonschema lives, for an interpreter (pyenv, a
# virtualenv) that does not look there by itself.
DEBIAN_DIST_PACKAGES = "/usr/lib/python3/dist-packages"
_status_validator = None


def _import_jsonschema():
    try:
        import jsonschema
    except ImportError:
        if DEBIAN_DIST_PACKAGES not in sys.path:
            sys.path.append(DEBIAN_DIST_PACKAGES)
        try:
            import jsonschema
        except ImportError as e:
            raise AssertionError(
                "cannot validate status files: no Python module jsonschema "
                "(%s); install it: apt-get install python3-jsonschema "
                "(make deps)" % e) from None
    return jsonschema


def status_validator():
    """The validator of schema/status-v1.schema.json, checked itself
    against its meta-schema.  Fails (never skips) when the jsonschema
    module cannot be found."""
    global _status_validator
    if _status_validator is None:
        jsonschema = _import_jsonschema()
        with open(STATUS_SCHEMA) as f:
            schema = json.load(f)
        cls = getattr(jsonschema, "Draft202012Validator", None)
        assert cls is not None, (
            "jsonschema %s has no draft 2020-12 validator; install "
            "python3-jsonschema 4 or later" % jsonschema.__file__)
        cls.check_schema(schema)
        _status_validator = cls(schema)
    return _status_validator


def _where(e):
    return "/".join(str(x) for x in e.absolute_path) or "(record)"


def status_errors(rec):
    """Why rec (a parsed record) does not match the schema: a list of
    messages, empty when it does.  Where none of several alternatives
    matched, the message says why the closest one did not."""
    out = []
    for e in sorted(status_validator().iter_errors(rec),
                    key=lambda e: list(map(str, e.absolute_path))):
        msg = "%s: %s" % (_where(e), e.message)
        if e.context:
            best = min(e.context, key=lambda c: (-len(c.absolute_path),
                                                 c.message))
            msg += " (%s: %s)" % (_where(best), best.message)
        out.append(msg)
    return out


def _unique_keys(pairs):
    keys = [k for k, _ in pairs]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError("duplicate keys %s" % dup)
    return dict(pairs)


def _no_constant(name):
    raise ValueError("non-standard JSON constant %s" % name)


def parse_status(data):
    """A status record (bytes, as read from the file), parsed strictly and
    validated against the schema: valid UTF-8, one line and a newline, one
    JSON object without NaN, Infinity or a duplicate key.  Returns the
    object; raises AssertionError (or ValueError) otherwise."""
    text = data.decode("utf-8")
    assert text.endswith("\n") and "\n" not in text[:-1], \
        "not one line and a newline: %r" % text[:200]
    rec = json.loads(text, parse_constant=_no_constant,
                     object_pairs_hook=_unique_keys)
    errors = status_errors(rec)
    assert not errors, "status record does not match %s:\n  %s\nrecord: %s" % (
        os.path.relpath(STATUS_SCHEMA, ROOT), "\n  ".join(errors), text)
    return rec


def read_status(path):
    """The status record at path, parsed and validated (parse_status)."""
    with open(path, "rb") as f:
        return parse_status(f.read())
