"""Every file supervise will write is checked before COMMAND starts: the
status file (--status-file) and the teardown log (--teardown-log) here,
the lock files in test_locks.py.  A file that cannot be written, or a
status path that holds something that is not a supervise status file,
ends the run before it starts: exit 125, one line naming the file and the
reason, COMMAND not run, no teardown, and nothing on disk changed (each
test compares a snapshot of the whole directory, bytes, inodes and link
targets, before and after).
"""
import os
import shlex
import stat
import subprocess

import bb

Q = shlex.quote
NOT_OURS = "supervise: status file '%s' exists and is not a supervise status file; not replacing it\n"
SYMLINK = "supervise: status file '%s' is a symbolic link; not replacing it\n"
UNWRITABLE = "supervise: cannot write status file '%s': %s\n"
TD_LOG = "supervise: cannot open teardown log '%s': %s\n"

def snapshot(top):
    """Everything under top: type, bytes and inode of files, link targets."""
    out = {}
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            p = os.path.join(root, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    out[p] = ("file", f.read(), st.st_ino, st.st_nlink)
            elif stat.S_ISLNK(st.st_mode):
                out[p] = ("link", os.readlink(p))
            else:
                out[p] = (stat.S_IFMT(st.st_mode), st.st_ino)
    return out


def put(path, data):
    with open(path, "wb") as f:
        f.write(data)


def a_record(d):
    """The bytes of a record from a real run (made in a directory of its
    own, so that nothing of it is left in d)."""
    tmp = bb.tmpdir()
    f = os.path.join(tmp, "rec.json")
    r = bb.run(["--status-file=" + f, "--", "true"])
    assert r.rc == 0 and r.err == "", r
    with open(f, "rb") as fh:
        return fh.read()


def as_nobody():
    """Keywords for sup(): supervise as nobody from a copy nobody can
    reach, when we are root; nothing otherwise."""
    if os.geteuid() == 0:
        sup, = bb.stage(bb.tmpdir(shared=True), bb.SUPERVISE)
        return {"sup": sup, "nobody": True}
    return {}


def sup(args, cwd=None, sup=None, nobody=False, timeout=60):
    """Runs supervise ARGS to the end; returns bb.Result."""
    argv = [sup or bb.SUPERVISE] + list(args)
    if nobody:
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup",
                "--clear-groups"] + argv
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       cwd=cwd or "/", stdin=subprocess.DEVNULL)
    return bb.Result(p.returncode, p.stdout, p.stderr)


def refused(d, opts, want_err, cwd=None, **kw):
    """Runs supervise OPTS with a teardown for every end and COMMAND that
    would leave a marker in d, and asserts the start was refused: 125,
    exactly want_err, no COMMAND, no teardown, d unchanged."""
    marker = os.path.join(d, "marker")
    td_marker = os.path.join(d, "td-marker")
    before = snapshot(d)
    r = sup(list(opts) + ["--teardown-on=always", "-T", "touch " + Q(td_marker),
                          "--", "touch", marker], cwd=cwd, **kw)
    assert r.rc == 125, r
    assert r.err == want_err, (r.err, want_err)
    assert not os.path.exists(marker), "COMMAND ran"
    assert not os.path.exists(td_marker), "the teardown ran"
    after = snapshot(d)
    assert after == before, "changed: %r" % sorted(
        set(before.items()) ^ set(after.items()))


# ------------------------------------------------------ the status file

def test_status_file_refused_before_the_command():
    """What is at the status path is not ours (a script given by a typo,
    another program's JSON, a directory, a FIFO, a symbolic link to a
    record or to nothing), or its directory is missing: refused at start;
    the teardown log and the lock file that come later are not created."""
    def check(make, want, rel):
        d = bb.tmpdir()
        path = make(d)
        log, lock = os.path.join(d, "td.log"), os.path.join(d, "lk")
        given = os.path.relpath(path, d) if rel else path
        refused(d, ["--status-file=" + given, "--teardown-log=" + log, "-l", lock],
                want % given, cwd=d if rel else None)

    def file_with(data):
        def make(d):
            put(os.path.join(d, "deploy.sh"), data)
            return os.path.join(d, "deploy.sh")
        return make

    def directory(d):
        os.mkdir(os.path.join(d, "out"))
        put(os.path.join(d, "out", "inside"), b"x")
        return os.path.join(d, "out")

    def fifo(d):
        os.mkfifo(os.path.join(d, "fifo"))
        return os.path.join(d, "fifo")

    def link_to_record(d):
        put(os.path.join(d, "real.json"), a_record(d))
        os.symlink("real.json", os.path.join(d, "status.json"))
        return os.path.join(d, "status.json")

    def dangling(d):
        os.symlink(os.path.join(d, "nowhere"), os.path.join(d, "status.json"))
        return os.path.join(d, "status.json")

    def missing_dir(d):
        return os.path.join(d, "no-such-dir", "status.json")

    script = b"#!/bin/sh\nexec deploy --prod\n"
    nodir = UNWRITABLE.replace("%s\n", "No such file or directory\n")
    bb.check_cases([
        ("a script", file_with(script), NOT_OURS, False),
        ("a script, relative", file_with(script), NOT_OURS, True),
        ("another program's JSON", file_with(b'{"version": 1, "name": "x"}\n'),
         NOT_OURS, False),
        ("a record's head only", file_with(b'{"version": 1, "supervise_v'), NOT_OURS,
         False),
        ("binary bytes", file_with(b"\x7fELF\x02\x01\x01\0"), NOT_OURS, False),
        ("a directory", directory, NOT_OURS, False),
        ("a FIFO", fifo, NOT_OURS, False),
        ("a symlink to a record", link_to_record, SYMLINK, False),
        ("a dangling symlink", dangling, SYMLINK, False),
        ("a missing directory", missing_dir, nodir, False),
        ("a missing directory, relative", missing_dir, nodir, True),
    ], check)


def test_status_file_in_a_directory_we_may_not_write():
    """As a user who may not write the directory (nobody, when we are
    root): refused at start, both for a new file and over a record that
    is there; the record is left as it was."""
    kw = as_nobody()
    d = bb.tmpdir(shared=True)
    os.chmod(d, 0o777)          # where COMMAND would leave its marker
    ro = os.path.join(d, "ro")
    os.mkdir(ro)
    put(os.path.join(ro, "old.json"), a_record(d))
    os.chmod(ro, 0o555)
    for name in ("new.json", "old.json"):
        f = os.path.join(ro, name)
        refused(d, ["--status-file=" + f], UNWRITABLE % (f, "Permission denied"), **kw)


def test_read_only_mount():
    """As root, on a tmpfs remounted read-only (in a mount namespace of
    its own): access(2) would say yes, the kernel says no.  The status
    file, new or over a record, and the teardown log, new or existing:
    refused at start with "Read-only file system"; nothing on the mount
    changed (compared inside the namespace, before it goes)."""
    bb.require_root()
    d = bb.tmpdir()
    mnt = os.path.join(d, "mnt")
    os.mkdir(mnt)
    rec = a_record(d)
    cases = [
        ("--status-file=%s/new.json", "%s/new.json", UNWRITABLE),
        ("--status-file=%s/old.json", "%s/old.json", UNWRITABLE),
        ("--teardown-log=%s/new.log", "%s/new.log", TD_LOG),
        ("--teardown-log=%s/old.log", "%s/old.log", TD_LOG),
    ]
    for opt, path, want in cases:
        opt, path = opt % mnt, path % mnt
        marker = os.path.join(d, "marker")
        # Inside: make the mount and its files, remount it read-only,
        # list it, run supervise, list it again (contents and inodes).
        script = (
            'mount -t tmpfs tmpfs "$1" || exit 99\n'
            'printf %s "$4" > "$1/old.json" && printf "old log\\n" > "$1/old.log" || exit 98\n'
            'mount -o remount,ro "$1" || exit 99\n'
            'list() { ls -Ali "$1"; cat "$1/old.json" "$1/old.log"; }\n'
            'list "$1" > "$5/before"\n'
            '"$2" "$3" --teardown-on=always -T "touch $5/td-marker" -- touch "$5/marker"\n'
            'rc=$?\n'
            'list "$1" > "$5/after"\n'
            'exit $rc\n')
        p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            script, "sh", mnt, bb.SUPERVISE, opt, rec, d],
                           capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        if p.returncode == 99:
            raise bb.Skip("cannot mount a read-only tmpfs here: %r" % p.stderr[-200:])
        assert p.returncode == 125, (opt, p)
        assert p.stderr == want % (path, "Read-only file system"), (opt, p.stderr)
        assert not os.path.exists(marker), "COMMAND ran"
        assert not os.path.exists(os.path.join(d, "td-marker")), "the teardown ran"
        before, after = bb.read(os.path.join(d, "before")), bb.read(os.path.join(d, "after"))
        assert before == after and "old log" in after, (before, after)
        assert os.listdir(mnt) == [], os.listdir(mnt)


def test_status_file_accepted_and_replaced():
    """Nothing there, an empty file, a record of an earlier run, a record
    with a second name: replaced by the run's record (the second name
    keeps the old one: the rename only moves the first)."""
    d = bb.tmpdir()
    f = os.path.join(d, "status.json")
    other = os.path.join(d, "other-name")
    old = a_record(d)
    for name, make in (("nothing", lambda: None),
                       ("empty", lambda: put(f, b"")),
                       ("a record", lambda: put(f, old)),
                       ("a hard-linked record", lambda: (put(f, old), os.link(f, other)))):
        make()
        r = sup(["--status-file=" + f, "--", "sh", "-c", "exit 7"])
        assert r.rc == 7 and r.err == "", (name, r)
        with open(f, "rb") as fh:
            assert fh.read().startswith(b'{"version": 1, '), name
        assert '"exit_status": 7' in bb.read(f), (name, bb.read(f))
        assert not os.path.islink(f)
        if os.path.exists(other):
            with open(other, "rb") as fh:
                assert fh.read() == old, name
            os.unlink(other)
        os.unlink(f)
    assert os.listdir(d) == [], os.listdir(d)


def test_status_file_changed_during_the_run_is_left_alone():
    """COMMAND puts a script, or a symbolic link, at the status path: at
    the end it is checked again, left as it is and reported in one line;
    the exit status is COMMAND's; no temporary file is left.  In both
    modes (with and without --foreground)."""
    def check(mode, what, body, want):
        d = bb.tmpdir()
        f = os.path.join(d, "status.json")
        put(os.path.join(d, "target"), b"keep me\n")
        r = sup(mode + ["--status-file=" + f, "--", "sh", "-c", body + "; exit 3"], cwd=d)
        assert r.rc == 3, r
        assert r.err == want % f, (r.err, want % f)
        assert sorted(os.listdir(d)) == ["status.json", "target"], os.listdir(d)
        assert bb.read(os.path.join(d, "target")) == "keep me\n"
        if what == "link":
            assert os.readlink(f) == "target"
        else:
            assert bb.read(f) == "#!/bin/sh\necho mine\n", bb.read(f)

    cases = []
    for mode in ([], ["--foreground"]):
        cases += [
            ("a script " + str(mode), mode, "script",
             "printf '#!/bin/sh\\necho mine\\n' > status.json", NOT_OURS),
            ("a symlink " + str(mode), mode, "link", "ln -s target status.json", SYMLINK),
        ]
    bb.check_cases(cases, check)


# ------------------------------------------------------ the teardown log

def test_teardown_log_refused_before_the_command():
    """A teardown log that cannot be opened for appending: a missing
    directory, a directory, a FIFO nobody reads."""
    def check(make, reason):
        d = bb.tmpdir()
        log = make(d)
        refused(d, ["--teardown-log=" + log], TD_LOG % (log, reason))

    def missing_dir(d):
        return os.path.join(d, "no-such-dir", "td.log")

    def directory(d):
        os.mkdir(os.path.join(d, "logs"))
        return os.path.join(d, "logs")

    def fifo(d):
        os.mkfifo(os.path.join(d, "fifo"))
        return os.path.join(d, "fifo")

    bb.check_cases([
        ("a missing directory", missing_dir, "No such file or directory"),
        ("a directory", directory, "Is a directory"),
        ("a FIFO without a reader", fifo, "No such device or address"),
    ], check)


def test_teardown_log_in_a_directory_we_may_not_write():
    """As a user who may not write the directory (nobody, when we are
    root): a new log is refused at start, and so is an existing one that
    user may not write."""
    kw = as_nobody()
    d = bb.tmpdir(shared=True)
    os.chmod(d, 0o777)          # where COMMAND would leave its marker
    ro = os.path.join(d, "ro")
    os.mkdir(ro)
    put(os.path.join(ro, "old.log"), b"old\n")
    os.chmod(os.path.join(ro, "old.log"), 0o644)
    os.chmod(ro, 0o555)
    for name in ("new.log", "old.log"):
        log = os.path.join(ro, name)
        refused(d, ["--teardown-log=" + log], TD_LOG % (log, "Permission denied"), **kw)


def test_teardown_log_is_appended_never_truncated():
    """What the log held is kept byte for byte, the teardown's part
    follows; through a symbolic link, the link's target is appended to
    and the link stays."""
    d = bb.tmpdir()
    old = b"an earlier run\n\x00\xff no newline at the end"
    for name in ("td.log", "link.log"):
        put(os.path.join(d, "real.log"), old)
        log = os.path.join(d, name)
        if name == "link.log":
            os.symlink("real.log", log)
        else:
            os.rename(os.path.join(d, "real.log"), log)
        r = sup(["--teardown-log=" + log, "--teardown-on=always", "-T", "echo td-out",
                 "--", "true"])
        assert r.rc == 0, r
        with open(log, "rb") as f:
            data = f.read()
        assert data.startswith(old), data
        assert b"td-out\n" in data[len(old):], data
        if name == "link.log":
            assert os.path.islink(log)
