"""Containment by the kernel: the run in a cgroup v2 of its own
(--cgroup).  These tests need root and a writable cgroup v2 hierarchy;
they skip with the reason otherwise."""
import os
import signal
import subprocess

import bb
from runner_lib import helper

SUP = bb.SUPERVISE


def need_cgroup():
    bb.require_root()
    r = bb.run(["-v", "--cgroup=require", "true"])
    if r.rc != 0:
        raise bb.Skip("no writable cgroup v2 here: %s" % r.err.strip())
    return r


def cgroup_of(pid):
    for line in bb.read("/proc/%d/cgroup" % pid).splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


def mount_point():
    for line in bb.read("/proc/self/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        if right.startswith("cgroup2 ") and left.split()[3] == "/":
            return left.split()[4]
    return None


def our_cgroups():
    """supervise.* cgroups directly under ours."""
    base = mount_point() + (cgroup_of(os.getpid()) or "").rstrip("/")
    return sorted(n for n in os.listdir(base) if n.startswith("supervise."))


def test_command_runs_in_a_cgroup_of_its_own_which_goes_afterwards():
    need_cgroup()
    d = bb.tmpdir()
    st = os.path.join(d, "st.json")
    r = bb.run(["--status-file", st, "-T", "cat /proc/self/cgroup",
                "--teardown-on=always", "--", "cat", "/proc/self/cgroup"])
    assert r.rc == 0, r
    line = [x for x in r.out.splitlines() if x.startswith("0::")][0]
    assert "/supervise." in line and line.endswith("/run"), r.out
    td = [x for x in r.err.splitlines() if x.startswith("0::")][0]
    assert td == line[:-len("run")] + "teardown", (td, line)
    rec = bb.read_status(st)
    assert rec["containment"] == "cgroup"
    name = line[3:].split("/")[-2]
    assert name.split(".")[2] == str(rec["pid"]), (name, rec["pid"])
    assert name not in our_cgroups(), our_cgroups()


def test_teardown_cgroup_only_with_a_teardown():
    """The teardown's cgroup is made only for a run with a teardown
    command: without one, run/ is alone under the run's parent."""
    need_cgroup()
    # The directories (cgroups) beside our own.
    show = ["sh", "-c", "cd \"%s$(sed -n 's/^0:://p' /proc/self/cgroup)/..\""
            " && for d in */; do echo \"${d%%/}\"; done" % mount_point()]
    r = bb.run(["--"] + show)
    assert (r.rc, r.out, r.err) == (0, "run\n", ""), r
    r = bb.run(["-T", "true", "--"] + show)
    assert (r.rc, r.out, r.err) == (0, "run\nteardown\n", ""), r


def test_cgroup_off_and_require():
    """--cgroup=off uses the sweep; require where no cgroup can be made
    (the hierarchy read-only, as in many containers) exits 125 with one
    line, and auto falls back to the sweep."""
    need_cgroup()
    d = bb.tmpdir()
    st = os.path.join(d, "st.json")
    r = bb.run(["-v", "--cgroup=off", "--status-file", st, "--", "cat",
                "/proc/self/cgroup"])
    assert r.rc == 0 and "/supervise." not in r.out, r
    assert "supervise: containment: process sweep (--cgroup=off)\n" in r.err
    assert bb.read_status(st)["containment"] == "sweep"
    mnt = mount_point()
    script = ("mount --bind {m} {m} && mount -o remount,bind,ro {m} && "
              "{s} --cgroup=require true; echo rc=$?; "
              "{s} -v true 2>&1; echo rc=$?").format(m=mnt, s=SUP)
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh",
                        "-c", script], capture_output=True, text=True,
                       timeout=60)
    assert p.stderr == ("supervise: cannot contain the run in a cgroup: "
                        "cannot make a cgroup in %s: Read-only file system\n"
                        % (mnt + (cgroup_of(os.getpid()) or "").rstrip("/"))
                        ), p
    assert "rc=125" in p.stdout and p.stdout.rstrip().endswith("rc=0"), p
    assert "supervise: containment: process sweep (cannot make a cgroup" \
        in p.stdout, p
    r = bb.run(["--cgroup=sometimes", "true"])
    assert r.rc == 125 and r.err.startswith(
        "supervise: invalid cgroup mode 'sometimes' (auto, off or require)"), r


def test_a_cgroup_mounted_over_the_usual_place_is_not_taken_for_ours():
    """The usual mount point holds another cgroup (a bind mount of one
    that is not ours, which also covers the hierarchy's own mount there):
    the run's cgroup is made where our own cgroup really is, a mount of
    the hierarchy's root elsewhere, never in the decoy."""
    need_cgroup()
    d = bb.tmpdir()
    root = os.path.join(d, "root")
    os.mkdir(root)
    script = ("mount -t cgroup2 none {r} && mkdir {r}/supervise-decoy && "
              "mount --bind {r}/supervise-decoy {m} && "
              "{s} -v -- cat /proc/self/cgroup; echo rc=$?; "
              "umount {m}; rmdir {r}/supervise-decoy; umount {r}"
              ).format(r=root, m=mount_point(), s=SUP)
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh",
                        "-c", script], capture_output=True, text=True,
                       timeout=60)
    own = (cgroup_of(os.getpid()) or "").rstrip("/")
    assert p.stdout.rstrip().endswith("rc=0"), p
    assert ("supervise: containment: cgroup %s%s/supervise." % (root, own)
            in p.stderr), p
    line = [x for x in p.stdout.splitlines() if x.startswith("0::")][0]
    assert line.startswith("0::%s/supervise." % own), p
    assert line.endswith("/run"), p


@bb.time_limit(180)
def test_fork_storm_is_stopped_with_no_survivor():
    """A bounded fork storm (every process forks until 3,000 were made)
    is stopped at the timeout: cgroup.kill leaves none."""
    need_cgroup()
    d = bb.tmpdir()
    ready = os.path.join(d, "ready")
    p = bb.start(["-t", "60", "-k", "1", "--", helper("forkstorm"), "3000",
                  ready], stderr=subprocess.PIPE)
    bb.wait_for(lambda: bb.read(ready) == "ready\n", timeout=120,
                what="3,000 processes")
    sup = bb.supervisor_of(p.pid)
    os.kill(sup, signal.SIGALRM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 124, (p.returncode, err)
    assert bb.leftovers(timeout=30) == []


@bb.time_limit(180)
def test_tree_of_1100_and_escapees_stopped():
    """1,100 processes, some in sessions of their own, some double-forked
    away: all stopped."""
    need_cgroup()
    d = bb.tmpdir()
    body = ("for i in $(seq 1000); do sleep 300 & done; "
            "for i in $(seq 50); do setsid sleep 301 & done; "
            "for i in $(seq 50); do (sleep 302 &) ; done; "
            "echo ready > %s; wait" % os.path.join(d, "ready"))
    p = bb.start(["-t", "60", "-k", "1", "--", "sh", "-c", body],
                 stderr=subprocess.PIPE)
    bb.wait_for(lambda: bb.read(os.path.join(d, "ready")), timeout=120)
    os.kill(p.pid, signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, (p.returncode, err)
    assert bb.leftovers(timeout=30) == []


def test_leftover_cgroups_of_dead_runs_are_removed():
    """Front and supervisor both SIGKILLed: nobody removes the run's
    cgroups.  Once empty, the next run removes them (its front is
    provably dead)."""
    need_cgroup()
    d = bb.tmpdir()
    p = bb.start(["--", "sh", "-c", "echo $$ > %s; exec sleep 60"
                  % os.path.join(d, "cmd")], stderr=subprocess.DEVNULL)
    cmd = bb.wait_for(lambda: (bb.pids_in(os.path.join(d, "cmd")) or
                               [None])[0])
    sup = bb.supervisor_of(p.pid)
    os.kill(sup, signal.SIGKILL)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    bb.wait_for(lambda: not bb.alive(sup) and not bb.alive(cmd))
    bb.reap()
    # Other runs may come and go meanwhile: only this run's is looked at.
    # One of them may have removed it already, as the next run would: a
    # legal outcome.  Otherwise the next run must.
    mine = [n for n in our_cgroups() if n.split(".")[2] == str(p.pid)]
    assert len(mine) <= 1, our_cgroups()
    r = bb.run(["true"])
    assert r.rc == 0, r
    assert not set(mine) & set(our_cgroups()), our_cgroups()
