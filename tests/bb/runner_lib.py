"""Shared pieces of test_runners.py: a COMMAND that starts a process tree
which is hard to stop, and ways to observe processes that are not our
children when they start but are reparented to us (every test process is a
child subreaper, see tests/blackbox.py).
"""
import os
import re
import shlex
import subprocess
import time

import bb

# The tree's members, each of which writes its pid to a file of that name.
TREE_PIDS = ("cmd", "bg", "sid", "ign")


def tree_script(d, tail="wait"):
    """A sh script (COMMAND's) that starts a tree that is hard to stop:
    cmd: COMMAND's shell itself;
    bg:  a background child;
    sid: a grandchild in a session of its own (setsid), orphaned at once
         (its parent, a subshell, exits), so reparented to the subreaper;
    ign: a background child that ignores SIGTERM (only SIGKILL stops it).
    Then it writes "ready" and runs tail."""
    q = lambda name: shlex.quote(os.path.join(d, name))  # noqa: E731
    return "\n".join([
        "echo $$ > %s" % q("cmd"),
        "sleep 1000 & echo $! > %s" % q("bg"),
        "(setsid sh -c %s &)" % shlex.quote("echo $$ > %s; exec sleep 1000" % q("sid")),
        "sh -c %s &" % shlex.quote("trap '' TERM; echo $$ > %s; exec sleep 1000" % q("ign")),
        "echo ready > %s" % q("ready"),
        tail,
        "",
    ])


def tree_pids(d):
    """The pids of the tree's members, once each has written its own."""
    def get():
        out = []
        for name in TREE_PIDS:
            p = bb.pids_in(os.path.join(d, name))
            if not p:
                return None
            out += p
        return out if bb.read(os.path.join(d, "ready")).strip() == "ready" else None
    return bb.wait_for(get, timeout=30, what="the command's tree to start")


def assert_tree_alive(pids):
    dead = [p for p in pids if not bb.alive(p)]
    assert not dead, "tree members %s died too early" % dead


def wait_status(pid, timeout=30.0):
    """Waits for pid (our child, or one that will be reparented to us, the
    subreaper) to exit; returns its exit code as subprocess does (-N for a
    signal)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got, st = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            got, st = 0, 0   # not (yet) ours
        if got == pid:
            return os.waitstatus_to_exitcode(st)
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for pid %d (%s) to exit"
                                 % (timeout, pid, bb.cmdline(pid)))
        time.sleep(0.01)


def is_supervise(pid):
    return bb.cmdline(pid).split(" ")[0] == bb.SUPERVISE


def child_supervise(pid):
    """The supervise process that shell pid runs as its foreground child."""
    def find():
        for c in bb.children(pid):
            if is_supervise(c):
                return c
        return None
    return bb.wait_for(find, timeout=30, what="supervise under pid %d" % pid)


def err_text(d):
    return bb.read(os.path.join(d, "err"))


def assert_line(d, pattern):
    """stderr (the file d/err) has a line matching the regex pattern."""
    text = err_text(d)
    assert re.search("^" + pattern + "$", text, re.M), \
        "no stderr line matching %r in:\n%s" % (pattern, text)
    return re.search("^" + pattern + "$", text, re.M)


def wait_line(d, pattern, timeout=30):
    return bb.wait_for(lambda: re.search("^" + pattern + "$", err_text(d), re.M),
                       timeout=timeout, what="stderr line %r (have %r)" % (pattern, err_text(d)))


def err_file(d):
    return open(os.path.join(d, "err"), "w")


def helper(name):
    """Path of tests/helpers/NAME, built with make if missing or stale."""
    path = os.path.join(bb.HELPERS, name)
    src = path + ".c"
    if not os.access(path, os.X_OK) or os.path.getmtime(path) < os.path.getmtime(src):
        subprocess.run(["make", "-s", "-C", bb.ROOT, "tests/helpers/" + name],
                       check=True, stdout=subprocess.DEVNULL)
    return path
