"""Short paths: what a run does not need, supervise does not do.

No walk through /proc where nothing can be left that the kernel has not
listed already (a cgroup of the run's own; a subreaper with no child), one
walk where one is needed, no libcap unless capabilities are involved, one
exec of COMMAND, and a front that sleeps until the supervisor has ended.
Each test runs supervise under strace and counts exact system calls of
each process of the run (never times); each also checks that the run did
what it must (statuses, messages, nothing left alive).
"""
import os
import re
import shutil
import signal
import struct
import subprocess
import sys

import bb

SUP = bb.SUPERVISE
HERE = os.path.dirname(os.path.abspath(__file__))
SIGPROBE = os.path.join(bb.HELPERS, "sigprobe")
TREE = [sys.executable, os.path.join(HERE, "core_tree.py")]

subprocess.run(["make", "-s", "-C", bb.ROOT, "tests/helpers/sigprobe"],
               check=False)

# What the traces need: the forks and execs that tell the processes apart,
# and what each test counts.
# fork, vfork and open: musl's fork() and open() make these system calls
# where glibc's make clone and openat (an open is counted as an openat).
TRACED = "clone,clone3,fork,vfork,execve,open,openat,getdents64,poll,ppoll," \
    "prctl,waitid,wait4,kill,pidfd_send_signal,mkdir"

_LINE = re.compile(r"^(\d+) +(?:<\.\.\. (\w+) resumed>|(\w+)\()(.*)$")


def need_strace():
    if shutil.which("strace") is None:
        raise bb.Skip("strace is not installed")


class Trace:
    """A run of supervise under strace -f: calls[role] is the list of
    (name, text) of the system calls of each process, in order: "front",
    "supervisor", "command" (COMMAND's process until its exec succeeds),
    and "other" for anything else (COMMAND after its exec included)."""

    def __init__(self, path):
        self.calls = {"front": [], "supervisor": [], "command": [],
                      "other": []}
        with open(path) as f:
            lines = f.read().splitlines()
        # The calls in the order they began, a resumed call's end joined
        # to its start.  Roles come after: under load a child's first
        # calls are printed before its parent's clone has returned.
        seq, last = [], {}
        for line in lines:
            m = _LINE.match(line)
            if m is None:
                continue
            pid = int(m.group(1))
            name = m.group(2) or m.group(3)
            name = "openat" if name == "open" else name
            if m.group(2) is None:
                seq.append([pid, name, m.group(4)])
                last[pid] = seq[-1]
            elif pid in last:
                last[pid][2] += m.group(4)
        front = seq[0][0] if seq else None
        first_child = {}
        for pid, name, text in seq:
            ret = re.search(r"= (\d+)$", text)
            if name in ("clone", "clone3", "fork", "vfork") and \
                    ret is not None:
                first_child.setdefault(pid, int(ret.group(1)))
        self.supervisor = first_child.get(front)
        command = first_child.get(self.supervisor)
        role = {front: "front", self.supervisor: "supervisor",
                command: "command"}
        execd = False
        for pid, name, text in seq:
            who = role.get(pid, "other")
            if who == "command" and execd:
                who = "other"
            self.calls[who].append((name, text))
            if who == "command" and name == "execve" and \
                    text.endswith("= 0"):
                execd = True

    def walks(self, who):
        """The process's system calls cut where each walk through /proc
        begins (it opens /proc/self first); what came before the first
        is left out."""
        out = []
        for n, x in self.calls[who]:
            # The flags as strace shows them; musl adds O_LARGEFILE.
            if n == "openat" and re.search(
                    r'"/proc/self", O_RDONLY\|(O_LARGEFILE\|)?O_CLOEXEC\|'
                    r'O_DIRECTORY', x):
                out.append([])
            if out:
                out[-1].append(x)
        return out

    def of(self, who, name=None):
        return [t for n, t in self.calls[who] if name is None or n == name]

    def proc_walks(self, who):
        """The children lists of /proc the process read (each one is a
        level of a walk through the tree)."""
        return [t for t in self.of(who, "openat") if "/children\"" in t]


def traced(args, env=None, timeout=60, **kw):
    """Starts supervise args under strace; returns (Popen, trace file)."""
    need_strace()
    d = bb.tmpdir()
    out = os.path.join(d, "trace")
    env = dict(os.environ if env is None else env)
    # LeakSanitizer cannot work under ptrace (make asan).
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    p = subprocess.Popen(["strace", "-f", "-qq", "-e", "signal=none", "-e",
                          "trace=" + TRACED, "-o", out, SUP] + list(args),
                         env=env, text=True, **kw)
    return p, out


def finish(p, timeout=60):
    out, err = p.communicate(timeout=timeout)
    return bb.Result(p.returncode, out, err)


def front_of(p):
    """The front: strace's child."""
    return bb.wait_for(lambda: (bb.children(p.pid) or [None])[0],
                       what="supervise under strace")


def need_cgroup():
    bb.require_root()
    r = bb.run(["--cgroup=require", "true"])
    if r.rc != 0:
        raise bb.Skip("no writable cgroup v2 here: %s" % r.err.strip())


def linked_dynamically(path=SUP):
    """Whether the program at path has an interpreter (PT_INTERP): the
    dynamic loader, which loads its libraries before main()."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF":
            return True
        end = "<" if head[5] == 1 else ">"
        if head[4] == 2:
            phoff, = struct.unpack(end + "Q", head[32:40])
            phentsize, phnum = struct.unpack(end + "HH", head[54:58])
        else:
            phoff, = struct.unpack(end + "I", head[28:32])
            phentsize, phnum = struct.unpack(end + "HH", head[42:46])
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            if struct.unpack(end + "I", f.read(4))[0] == 3:
                return True
    return False


# ------------------------------------------------ no walk where none is due

def test_cancel_in_a_cgroup_walks_nothing():
    """In a cgroup of the run's own, the cgroup lists every process: a
    cancel stops COMMAND's group, a grandchild that called setsid() and a
    double-forked daemon without reading /proc at all, and nothing is
    left."""
    need_cgroup()
    d = bb.tmpdir()
    p, out = traced(["--"] + TREE + [d])
    pids = bb.wait_for(lambda: os.path.exists(os.path.join(d, "ready")) and
                       {n: bb.pids_in(os.path.join(d, n))[0]
                        for n in ("cmd", "bg", "sess", "daemon")},
                       what="the tree")
    os.kill(front_of(p), signal.SIGTERM)
    r = finish(p)
    assert r.rc == 143, r
    assert r.err.startswith("supervise: cancelled by SIGTERM"), r
    bb.assert_gone(list(pids.values()))
    t = Trace(out)
    assert t.proc_walks("supervisor") == [], t.proc_walks("supervisor")
    assert t.of("supervisor", "getdents64") == [], t.of("supervisor")


def test_leftovers_in_a_cgroup_are_stopped_without_a_walk():
    """COMMAND exits and leaves three processes behind (one in a session
    of its own, one double-forked): all three are stopped from the
    cgroup's list, with no walk through /proc."""
    need_cgroup()
    d = bb.tmpdir()
    p, out = traced(["--"] + TREE + [d, "5"])
    r = finish(p)
    assert r.rc == 5, r
    assert r.err == ("supervise: command exited; stopping 3 leftover "
                     "processes with SIGTERM\n"), r
    pids = [bb.pids_in(os.path.join(d, n))[0] for n in ("bg", "sess", "daemon")]
    bb.assert_gone(pids)
    t = Trace(out)
    assert t.proc_walks("supervisor") == [], t.proc_walks("supervisor")


def test_the_sweep_walks_the_tree_once_per_signal():
    """Without a cgroup (--cgroup=off), the stop signal needs one walk:
    it reaches COMMAND's group as a whole, and a child that left the group
    (setsid) through the walk, at once.  During the grace only the
    supervisor's own children are looked at (a live descendant lives
    under a live child); the end of the grace walks again, for SIGKILL.
    Each probe gets the stop signal and SIGCONT once, then SIGKILL."""
    d = bb.tmpdir()
    logs = [os.path.join(d, n) for n in ("cmd", "bg", "sess")]
    # sigprobe logs each signal and ends only by SIGKILL.
    script = "'%s' '%s' & setsid '%s' '%s' & exec '%s' '%s'" % (
        SIGPROBE, logs[1], SIGPROBE, logs[2], SIGPROBE, logs[0])
    p, out = traced(["--cgroup=off", "-k", "0.5", "--", "sh", "-c", script])
    pids = []
    for log in logs:
        bb.wait_for(lambda: bb.read(log).startswith("ready "), what=log)
        pids.append(int(bb.read(log).split()[1]))
    os.kill(front_of(p), signal.SIGTERM)
    r = finish(p)
    assert r.rc == 143, r
    assert r.err == ("supervise: cancelled by SIGTERM from pid %d; stopping "
                     "the run with SIGTERM\n" % os.getpid() +
                     "supervise: grace of 500ms over; sending SIGKILL to 3 "
                     "processes\n"), r
    for log in logs:
        got = [s for s in bb.read(log).split("\n")[1:] if s and s != "SIGCHLD"]
        assert got == ["SIGTERM", "SIGCONT"], (log, got)
    bb.assert_gone(pids)
    t = Trace(out)
    walks = t.walks("supervisor")
    deep = [[x for x in w if '"task/%d/children"' % t.supervisor not in x
             and "/children\"" in x] for w in walks]
    killing = [i for i, w in enumerate(walks) if any("SIGKILL" in x for x in w)]
    assert killing, walks
    # The first walk: each probe's children listed once, the stop signal
    # sent; then none but the supervisor's own until SIGKILL is due.
    assert sorted(deep[0]) == sorted(deep[0][:3]) and len(deep[0]) == 3, deep
    for pid in pids:
        assert sum('"task/%d/children"' % pid in x for x in deep[0]) == 1, \
            (pid, deep[0])
    assert not [w for w in deep[1:killing[0]] if w], deep
    assert deep[killing[0]], deep


def test_command_that_exits_alone_leaves_nothing_to_walk():
    """The common end: COMMAND exits, nothing is left.  Neither process
    reads /proc to know it, in either containment."""
    for mode in (["--cgroup=off"], []):
        p, out = traced(mode + ["--", "true"])
        r = finish(p)
        assert (r.rc, r.err) == (0, ""), (mode, r)
        t = Trace(out)
        for who in ("front", "supervisor"):
            assert t.proc_walks(who) == [], (mode, who, t.proc_walks(who))


def test_cgroup_start_and_end_read_no_mount_table_and_no_member_list():
    """With the hierarchy at its usual place, the run's cgroup is made
    without reading /proc/self/mountinfo; the directory is searched for
    leftovers of dead runs by the front once the supervisor is on its
    way, not before; and COMMAND's end, with nothing else in the cgroup,
    is known from cgroup.events alone (no cgroup.procs)."""
    need_cgroup()
    mnt = None
    for line in bb.read("/proc/self/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        if right.startswith("cgroup2 ") and left.split()[3] == "/":
            mnt = left.split()[4]
            break
    if mnt not in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        raise bb.Skip("the cgroup v2 hierarchy is at %s here" % mnt)
    p, out = traced(["--", "true"])
    r = finish(p)
    assert (r.rc, r.err) == (0, ""), r
    t = Trace(out)
    for who in ("front", "supervisor"):
        assert not [x for x in t.of(who) if "mountinfo" in x], \
            (who, t.of(who))
    assert t.of("supervisor", "mkdir") == [], t.of("supervisor", "mkdir")
    names = [n for n, _ in t.calls["front"]]
    made = [i for i, n in enumerate(names) if n == "mkdir"]
    forked = [i for i, n in enumerate(names)
              if n in ("clone", "clone3", "fork", "vfork")]
    scans = [i for i, n in enumerate(names) if n == "getdents64"]
    assert made and forked and made[-1] < forked[0], t.calls["front"]
    assert scans and scans[0] > forked[0], t.calls["front"]
    assert not [x for x in t.of("supervisor", "openat")
                if "cgroup.procs" in x], t.of("supervisor", "openat")


# ------------------------------------------------ the front sleeps

def test_front_wakes_once_and_trusts_the_supervisors_last_word():
    """The front waits in one poll() from the fork of the supervisor to
    its end (the cgroups' events are the supervisor's while it lives),
    then exits with the status the supervisor settled: no look for
    leftovers (waitid), no read of the cgroup, after the supervisor said
    the run was over.  The supervisor too wakes once, for COMMAND's end."""
    for mode in (["--cgroup=off"], []):
        p, out = traced(mode + ["--", "sh", "-c", "exit 7"])
        r = finish(p)
        assert (r.rc, r.err) == (7, ""), (mode, r)
        t = Trace(out)
        polls = t.of("front", "poll") + t.of("front", "ppoll")
        assert len(polls) == 1, (mode, polls)
        rest = t.calls["front"][t.calls["front"].index(("poll", polls[0])):]
        after = [n for n, x in rest]
        assert "waitid" not in after, (mode, t.calls["front"])
        assert not [x for n, x in rest
                    if n == "openat" and "cgroup.procs" in x], (mode, rest)
        polls = t.of("supervisor", "poll") + t.of("supervisor", "ppoll")
        assert len(polls) == 1, (mode, polls)


# ------------------------------------------------ start-up

def test_no_libcap_without_capabilities():
    """A run that uses no capability option loads no libcap, so its
    constructor never probes the bounding set (prctl PR_CAPBSET_READ).
    A static build links libcap in: there only the probe is looked at
    with --caps."""
    if not linked_dynamically():
        raise bb.Skip("supervise is linked statically, with libcap in it")
    p, out = traced(["--", "true"])
    r = finish(p)
    assert (r.rc, r.err) == (0, ""), r
    t = Trace(out)
    for who in ("front", "supervisor", "command"):
        assert not [x for x in t.of(who, "openat") if "libcap" in x], \
            (who, t.of(who, "openat"))
        assert not [x for x in t.of(who, "prctl") if "CAPBSET_READ" in x], \
            (who, t.of(who, "prctl"))


def test_caps_option_loads_libcap():
    """--caps loads libcap (with its probe of the bounding set) and keeps
    what it says."""
    bb.require_root()
    p, out = traced(["--caps=cap_net_raw", "--", "sh", "-c",
                     "grep CapEff /proc/self/status"])
    r = finish(p)
    assert r.rc == 0, r
    assert r.out == "CapEff:\t0000000000002000\n", r
    t = Trace(out)
    assert [x for x in t.of("front", "prctl") if "CAPBSET_READ" in x], \
        t.of("front", "prctl")


def test_caps_without_a_usable_libcap():
    """A libcap.so.2 that lacks what supervise calls (found first through
    LD_LIBRARY_PATH): --caps is refused with one line and 125; a run
    without --caps does not notice."""
    if not linked_dynamically():
        raise bb.Skip("supervise is linked statically, with libcap in it")
    d = bb.tmpdir()
    lib = os.path.join(d, "libcap.so.2")
    c = subprocess.run(["cc", "-shared", "-fPIC", "-o", lib, "-x", "c",
                        "/dev/null"], capture_output=True, text=True)
    if c.returncode != 0:
        raise bb.Skip("cannot build a shared object: %s" % c.stderr.strip())
    env = dict(os.environ, LD_LIBRARY_PATH=d)
    r = bb.run(["-q", "--", "true"], env=env)
    assert (r.rc, r.err) == (0, ""), r
    r = bb.run(["--caps=none", "--", "true"], env=env)
    assert (r.rc, r.err) == (125, "supervise: cannot load libcap: "
                             "libcap.so.2 has no cap_from_name\n"), r


def test_command_found_in_path_is_executed_once():
    """COMMAND found through PATH is executed with one execve() of the
    file found, under the name given; a script without "#!" still runs
    through the shell, as execvp() runs it."""
    d = bb.tmpdir()
    empty = os.path.join(d, "empty")
    bin_ = os.path.join(d, "bin")
    os.mkdir(empty)
    os.mkdir(bin_)
    with open(os.path.join(bin_, "noshebang"), "w") as f:
        f.write("echo \"ran as $0\"\n")
    os.chmod(os.path.join(bin_, "noshebang"), 0o755)
    env = dict(os.environ, PATH="%s:%s/none:%s:/usr/bin:/bin" % (empty, d,
                                                                 bin_))
    p, out = traced(["--", "true"], env=env)
    r = finish(p)
    assert (r.rc, r.err) == (0, ""), r
    t = Trace(out)
    execs = t.of("command", "execve")
    assert len(execs) == 1 and re.match(r'"/usr/bin/true", \["true"\]',
                                         execs[0]), execs
    r = bb.run(["--", "noshebang"], env=env)
    assert (r.rc, r.out, r.err) == (0, "ran as %s/noshebang\n" % bin_, ""), r
