"""Lock files that are not supervise's: their contents are never changed.
A holder record goes only into a file supervise made, an empty one, or
one that already holds a record; never through a second link, and as
root in a world-writable sticky directory only into a file of root's."""
import os

import bb

MAGIC = "supervise-lock 1\n"


def test_a_script_that_locks_itself_is_left_intact_and_runs():
    d = bb.tmpdir()
    script = os.path.join(d, "deploy.sh")
    body = "#!/bin/sh\necho deployed\n"
    with open(script, "w") as f:
        f.write(body)
    os.chmod(script, 0o755)
    r = bb.run(["-l", script, "--", script])
    assert r.rc == 0 and r.out == "deployed\n" and r.err == "", r
    assert bb.read(script) == body


def test_only_lock_files_get_a_holder_record():
    d = bb.tmpdir()
    data = os.path.join(d, "data")
    with open(data, "w") as f:
        f.write("precious\n")
    linked = os.path.join(d, "linked")
    with open(linked, "w") as f:
        f.write(MAGIC)          # looks like a lock file, but has two names
    os.link(linked, os.path.join(d, "other-name"))
    empty = os.path.join(d, "empty")
    open(empty, "w").close()
    old = os.path.join(d, "old")
    with open(old, "w") as f:
        f.write(MAGIC + "pid 1\nhost x\nsince 1\ncommand old\n")
    new = os.path.join(d, "new")
    cases = {data: False, linked: False, empty: True, old: True, new: True}
    for path, written in cases.items():
        before = bb.read(path, None)
        r = bb.run(["-l", path, "--", "true"])
        assert r.rc == 0 and r.err == "", (path, r)
        after = bb.read(path)
        if written:
            assert after.startswith(MAGIC) and "command true\n" in after, \
                (path, after)
        else:
            assert after == before, (path, before, after)
    assert bb.read(os.path.join(d, "other-name")) == MAGIC


def test_root_does_not_write_into_another_users_file_in_a_sticky_dir():
    bb.require_root()
    d = bb.tmpdir()
    os.chmod(d, 0o1777)
    path = os.path.join(d, "theirs")
    open(path, "w").close()
    os.chown(path, 65534, 65534)
    r = bb.run(["-l", path, "--", "true"])
    assert r.rc == 0 and r.err == "", r
    assert bb.read(path) == "", bb.read(path)
    mine = os.path.join(d, "mine")
    r = bb.run(["-l", mine, "--", "true"])
    assert r.rc == 0 and bb.read(mine).startswith(MAGIC), r
