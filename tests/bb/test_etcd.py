"""Black-box tests of locks across machines (-l etcd://..., etcds://).

Each test that needs etcd starts its own cluster of real etcd members on
127.0.0.1 (etcd_cluster.py) and stops it at the end; without etcd they
skip.  "Hosts" are separate supervise processes with lock directories and
working directories of their own; what they share is only the cluster.

Exclusion is checked by tests/helpers/crit_probe, a critical section that
detects a second live holder itself (a kernel flock that dies with its
process), and by the order of lines appended to shared files.  Timing is
asserted only as lower bounds (a lock was not handed on before the TTL)
and generous upper bounds.
"""
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import bb
import etcd_cluster
from etcd_cluster import Cluster

CRIT = os.path.join(bb.HELPERS, "crit_probe")
HOST = socket.gethostname()

subprocess.run(["make", "-s", "-C", bb.ROOT, "tests/helpers/crit_probe"],
               check=False)


def tmp():
    return bb.tmpdir()


def start(d, name, args, **kw):
    """Starts supervise in d with stderr to d/NAME.err; returns the Popen."""
    err = open(os.path.join(d, name + ".err"), "w")
    p = subprocess.Popen([bb.SUPERVISE] + list(args), cwd=d,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=err, **kw)
    err.close()
    p.errpath = os.path.join(d, name + ".err")
    return p


def err_of(p):
    return bb.read(p.errpath)


def wait(p, timeout=60):
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("supervise %r did not end within %ds; stderr %r"
                             % (p.args, timeout, err_of(p)))


def lines(path):
    return bb.read(path).splitlines()


def wait_line(path, line, timeout=30):
    bb.wait_for(lambda: line in lines(path), timeout,
                what="line %r in %s (has %r)" % (line, path, bb.read(path)))


# ------------------------------------------------------------ bad input

def test_etcd_bad_urls_are_usage_errors():
    """A malformed etcd URL or TTL is one line and exit 125 at option
    parsing: COMMAND is not started, and no status file is written."""
    d = tmp()
    cases = [
        ("etcd://", "invalid lock URL 'etcd://': missing lock name after "
         "the endpoints"),
        ("etcd://127.0.0.1:2379", "invalid lock URL 'etcd://127.0.0.1:2379':"
         " missing lock name after the endpoints"),
        ("etcd://127.0.0.1:2379/", "invalid lock URL 'etcd://127.0.0.1:2379/"
         "': missing lock name after the endpoints"),
        ("etcd:///app", "invalid lock URL 'etcd:///app': missing endpoint"),
        ("etcd://h:0/app", "invalid lock URL 'etcd://h:0/app': invalid port "
         "in endpoint 'h:0'"),
        ("etcd://h:65536/app", "invalid lock URL 'etcd://h:65536/app': "
         "invalid port in endpoint 'h:65536'"),
        ("etcd://h:x/app", "invalid lock URL 'etcd://h:x/app': invalid port "
         "in endpoint 'h:x'"),
        ("etcd://a,,b/app", "invalid lock URL 'etcd://a,,b/app': empty "
         "endpoint"),
        ("etcd://h o/app", "invalid lock URL 'etcd://h o/app': invalid "
         "endpoint 'h o'"),
        ("etcd://[::1/app", "invalid lock URL 'etcd://[::1/app': invalid "
         "endpoint '[::1'"),
        ("etcd://u:pw@h:2379/app", "invalid lock URL 'etcd://u:pw@h:2379/"
         "app': credentials do not belong in the URL (use "
         "--etcd-user-file)"),
        ("etcd://h/a b", "invalid lock URL 'etcd://h/a b': lock name with a "
         "blank or a non-ASCII character"),
        ("etcds://h:1,h:2,h:3,h:4,h:5,h:6,h:7,h:8,h:9/x", "invalid lock URL "
         "'etcds://h:1,h:2,h:3,h:4,h:5,h:6,h:7,h:8,h:9/x': too many "
         "endpoints (at most 8)"),
    ]
    for url, msg in cases:
        st = os.path.join(d, "st.json")
        r = bb.run(["--status-file", st, "-l", url, "touch",
                    os.path.join(d, "ran")])
        assert (r.rc, r.err) == (125, "supervise: %s\n" % msg + bb.TRY_HELP), \
            (url, r.rc, r.err)
        assert not os.path.exists(os.path.join(d, "ran")), url
        assert not os.path.exists(st), url
    for ttl in ("0", "0.5", "2d", "x"):
        r = bb.run(["--lock-ttl", ttl, "-l", "etcd://h/x", "true"])
        assert (r.rc, r.err) == (
            125, "supervise: invalid lock TTL '%s' (1s to 1d)\n" % ttl
            + bb.TRY_HELP), \
            (ttl, r.rc, r.err)
    r = bb.run(["--etcd-user-file=", "-l", "etcd://h/x", "true"])
    assert (r.rc, r.err) == (
        125, "supervise: invalid etcd credential file ''\n" + bb.TRY_HELP), r


def test_etcd_unreachable_endpoint():
    """Nothing listens at the endpoints: one line naming the last one
    tried, exit 125, COMMAND not started; the status file says error."""
    etcd_cluster.require()
    d = tmp()
    p1, p2 = etcd_cluster.free_ports(2)
    st = os.path.join(d, "st.json")
    for url, ep in [("etcd://127.0.0.1:%d/app" % p1, "127.0.0.1:%d" % p1),
                    ("etcd://127.0.0.1:%d,127.0.0.1:%d/app" % (p1, p2),
                     "127.0.0.1:%d" % p2)]:
        r = bb.run(["--status-file", st, "-l", url, "touch",
                    os.path.join(d, "ran")])
        assert (r.rc, r.err) == (
            125, "supervise: cannot lock '%s': %s: Couldn't connect to "
            "server\n" % (url, ep)), (r.rc, r.err)
        assert not os.path.exists(os.path.join(d, "ran"))
        rec = bb.read_status(st)
        assert (rec["reason"], rec["exit_status"], rec["command_pid"]) == (
            "error", 125, None), rec
        assert rec["locks"] == [{"path": url, "wait_s": rec["locks"][0][
            "wait_s"]}], rec


def test_etcd_credential_files_are_checked_at_start():
    """A credential file that cannot be read, or a user file without
    USER:PASSWORD, is exit 125 before anything is sent."""
    etcd_cluster.require()
    d = tmp()
    bad = os.path.join(d, "user")
    with open(bad, "w") as f:
        f.write("just-a-name\n")
    url = "etcds://127.0.0.1:1/app"
    cases = [
        (["--etcd-cacert", "/nonexistent/ca.pem"],
         "cannot read etcd CA certificate '/nonexistent/ca.pem': No such "
         "file or directory"),
        (["--etcd-cert", bad],
         "an etcd client certificate needs its key, and a key its "
         "certificate"),
        (["--etcd-user-file", bad],
         "etcd user file '%s' does not start with a USER:PASSWORD line"
         % bad),
    ]
    for extra, msg in cases:
        r = bb.run(extra + ["-l", url, "true"])
        assert (r.rc, r.err) == (125, "supervise: %s\n" % msg), \
            (extra, r.rc, r.err)
    # The same from the environment.
    env = dict(os.environ, SUPERVISE_ETCD_USER_FILE=bad)
    r = bb.run(["-l", url, "true"], env=env)
    assert (r.rc, r.err) == (
        125, "supervise: etcd user file '%s' does not start with a "
        "USER:PASSWORD line\n" % bad), (r.rc, r.err)


# ------------------------------------------------------------ semantics

def test_etcd_lock_held_through_teardown():
    """Run A holds the lock through its teardown; run B on another "host"
    waits, says who holds it (stored with the lock), and starts only after
    A's teardown is over and A released the lock.  Both see their fencing
    token, the create revision of their key, and B's is larger."""
    with Cluster(3) as c:
        da, db = tmp(), tmp()
        log = os.path.join(da, "log")
        url = c.url("deploy/staging")
        a = start(da, "a", [
            "-l", url, "-T",
            'echo "a-td-start $SUPERVISE_FENCING_TOKEN" >> %s; '
            'while [ ! -e %s/tdgo ]; do sleep 0.02; done; '
            'echo a-td-end >> %s' % (log, da, log),
            "--teardown-on=always", "--",
            "sh", "-c", 'echo "a-cmd $SUPERVISE_FENCING_TOKEN" >> %s' % log])
        bb.wait_for(lambda: any(l.startswith("a-td-start") for l in
                                lines(log)), 30, what="A's teardown")
        keys = c.keys("deploy/staging/")
        assert len(keys) == 1, keys
        (key, (rev, lease, value)), = keys.items()
        assert value.startswith("supervise-lock 1\npid %d\nhost %s\n"
                                % (a.pid, HOST)), value
        assert lines(log) == ["a-cmd %d" % rev, "a-td-start %d" % rev], \
            lines(log)
        b = start(db, "b", ["-l", url, "--", "sh", "-c",
                            'echo "b-cmd $SUPERVISE_FENCING_TOKEN" >> %s'
                            % log])
        bb.wait_for(lambda: "waiting for" in err_of(b), 30,
                    what="B waiting (stderr %r)" % err_of(b))
        m = re.fullmatch(
            r"supervise: waiting for lock %s; held by pid %d on %s since "
            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}: sh -c echo .*\n"
            % (re.escape(url), a.pid, re.escape(HOST)),
            err_of(b))
        assert m, err_of(b)
        time.sleep(0.5)
        assert not any(l.startswith("b-cmd") for l in lines(log)), lines(log)
        open(os.path.join(da, "tdgo"), "w").close()
        assert wait(a) == 0, err_of(a)
        assert wait(b) == 0, err_of(b)
        ev = lines(log)
        assert ev[:3] == ["a-cmd %d" % rev, "a-td-start %d" % rev,
                          "a-td-end"], ev
        assert len(ev) == 4 and ev[3].startswith("b-cmd "), ev
        assert int(ev[3].split()[1]) > rev, ev
        # Released: nothing is left under the name.
        assert c.keys("deploy/staging/") == {}


def test_etcd_give_up_and_status_file():
    """-w bounds the wait: exit 75 with the holder named, no COMMAND, no
    teardown; the status file says lock-timeout and lists the lock.  -w 0
    tries once.  The waiting run's key is removed when it gives up."""
    with Cluster(3) as c:
        d = tmp()
        url = c.url("app")
        a = start(d, "a", ["-l", url, "sleep", "60"])
        bb.wait_for(lambda: len(c.keys("app/")) == 1, 30, what="A holds")
        for w in ("0", "0.5"):
            st = os.path.join(d, "st.json")
            t0 = time.monotonic()
            r = bb.run(["-w", w, "-T", "touch td", "--status-file", st,
                        "-l", url, "touch", "ran"], cwd=d)
            assert r.rc == 75, (r.rc, r.err)
            assert time.monotonic() - t0 >= float(w)
            assert re.search(
                r"^supervise: gave up waiting for lock %s after [0-9.]+m?s "
                r"\(-w %s\); held by pid %d on %s since "
                % (re.escape(url), re.escape(w), a.pid, re.escape(HOST)),
                r.err, re.M), r.err
            assert not os.path.exists(os.path.join(d, "ran"))
            assert not os.path.exists(os.path.join(d, "td"))
            rec = bb.read_status(st)
            assert (rec["reason"], rec["exit_status"]) == (
                "lock-timeout", 75), rec
            assert [l["path"] for l in rec["locks"]] == [url], rec
            assert len(c.keys("app/")) == 1, c.keys("app/")
        a.send_signal(signal.SIGTERM)
        assert wait(a) == 128 + signal.SIGTERM
        assert c.keys("app/") == {}


def test_etcd_cancel_while_waiting():
    """SIGTERM while waiting for an etcd lock: 143 at once, no COMMAND;
    its key is removed, so the queue behind it is not held up."""
    with Cluster(3) as c:
        d = tmp()
        url = c.url("app")
        a = start(d, "a", ["-l", url, "sleep", "60"])
        bb.wait_for(lambda: len(c.keys("app/")) == 1, 30, what="A holds")
        b = start(d, "b", ["-l", url, "touch", "ran"])
        bb.wait_for(lambda: "waiting for" in err_of(b), 30, what="B waits")
        assert len(c.keys("app/")) == 2
        b.send_signal(signal.SIGTERM)
        assert wait(b, 20) == 128 + signal.SIGTERM, err_of(b)
        assert "supervise: cancelled by SIGTERM while waiting for lock %s\n" \
            % url in err_of(b), err_of(b)
        assert not os.path.exists(os.path.join(d, "ran"))
        assert len(c.keys("app/")) == 1
        a.send_signal(signal.SIGTERM)
        wait(a)


def test_etcd_files_and_etcd_locks_together():
    """Lock files and etcd locks in one run: all taken before COMMAND, the
    files first; the status file lists them in the order taken."""
    with Cluster(1) as c:
        d = tmp()
        st = os.path.join(d, "st.json")
        r = bb.run(["--status-file", st, "-l", c.url("zz"), "-l",
                    os.path.join(d, "f"), "-l", c.url("aa"), "sh", "-c",
                    "echo $SUPERVISE_FENCING_TOKEN > tok"], cwd=d)
        assert r.rc == 0, r
        rec = bb.read_status(st)
        assert [l["path"] for l in rec["locks"]] == [
            os.path.join(d, "f"), c.url("aa"), c.url("zz")], rec
        toks = bb.read(os.path.join(d, "tok")).split()[0].split(",")
        assert len(toks) == 2 and int(toks[0]) < int(toks[1]), toks


# ------------------------------------------------------------ failures

def freeze_and_kill(front):
    """SIGKILLs front and supervisor of a run together: both are stopped
    first, so that neither sees the other die and releases the lock."""
    sup = bb.supervisor_of(front.pid, gone_ok=True)
    pids = [front.pid] + ([sup] if sup else [])
    for pid in pids:
        bb.try_kill(pid, signal.SIGSTOP)
    for pid in pids:
        bb.try_kill(pid, signal.SIGKILL)
    front.wait()
    return sup


def test_etcd_sigkilled_holder_frees_after_ttl():
    """Front and supervisor of the holder SIGKILLed: nobody releases the
    lock, its lease expires after the TTL, and the waiting run gets it
    then and not before (the lease was renewed at most a third of the TTL
    before the kill)."""
    ttl = 3
    with Cluster(3) as c:
        da, db = tmp(), tmp()
        log = os.path.join(da, "log")
        url = c.url("app")
        a = start(da, "a", ["--lock-ttl", str(ttl), "-l", url, "--", "sh",
                            "-c", "echo a >> %s; exec sleep 60" % log])
        wait_line(log, "a")
        b = start(db, "b", ["-l", url, "--", "sh", "-c",
                            "echo b >> %s" % log])
        bb.wait_for(lambda: "waiting for" in err_of(b), 30, what="B waits")
        sup = freeze_and_kill(a)
        t_kill = time.monotonic()
        # COMMAND died with the supervisor (its parent-death signal).
        bb.wait_for(lambda: not any("sleep 60" in bb.cmdline(p) for p in
                                    bb.descendants()), 20,
                    what="COMMAND of A gone")
        wait_line(log, "b", timeout=ttl + 30)
        waited = time.monotonic() - t_kill
        assert waited >= ttl * 2 / 3 - 0.2, waited
        assert wait(b) == 0, err_of(b)
        assert lines(log) == ["a", "b"], lines(log)
        assert sup is not None


def test_etcd_front_releases_after_its_teardown():
    """Only the supervisor SIGKILLed: the front stops the orphans, runs the
    teardown, and releases the lock after it, long before the TTL."""
    with Cluster(3) as c:
        da, db = tmp(), tmp()
        log = os.path.join(da, "log")
        url = c.url("app")
        a = start(da, "a", [
            "--lock-ttl", "60", "-l", url, "-T",
            "echo td-start >> %s; while [ ! -e %s/tdgo ]; do sleep 0.02; "
            "done; echo td-end >> %s" % (log, da, log), "--",
            "sh", "-c", "echo a >> %s; exec sleep 60" % log])
        wait_line(log, "a")
        b = start(db, "b", ["-l", url, "--", "sh", "-c",
                            "echo b >> %s" % log])
        bb.wait_for(lambda: "waiting for" in err_of(b), 30, what="B waits")
        os.kill(bb.supervisor_of(a.pid), signal.SIGKILL)
        wait_line(log, "td-start")
        time.sleep(0.5)
        assert lines(log) == ["a", "td-start"], lines(log)
        t0 = time.monotonic()
        open(os.path.join(da, "tdgo"), "w").close()
        assert wait(a) == 125, err_of(a)
        wait_line(log, "b")
        assert time.monotonic() - t0 < 30
        assert lines(log) == ["a", "td-start", "td-end", "b"], lines(log)
        assert wait(b) == 0, err_of(b)


def test_etcd_leader_killed_holder_keeps_it():
    """The etcd leader is killed while a run holds the lock: the lease is
    renewed through the other members, the run keeps the lock for several
    TTLs and ends normally; a waiting run gets it only then."""
    ttl = 3
    with Cluster(3) as c:
        da, db = tmp(), tmp()
        log = os.path.join(da, "log")
        url = c.url("app")
        a = start(da, "a", ["-v", "--lock-ttl", str(ttl), "-l", url, "--",
                            "sh", "-c", "echo a >> %s; while [ ! -e %s/go ];"
                            " do sleep 0.05; done; echo a-end >> %s"
                            % (log, da, log)])
        wait_line(log, "a")
        b = start(db, "b", ["-l", url, "--", "sh", "-c",
                            "echo b >> %s" % log])
        bb.wait_for(lambda: "waiting for" in err_of(b), 30, what="B waits")
        leader = c.leader()
        leader.stop(signal.SIGKILL)
        c.leader()
        time.sleep(3 * ttl)
        assert lines(log) == ["a"], lines(log)
        assert a.poll() is None, err_of(a)
        open(os.path.join(da, "go"), "w").close()
        assert wait(a) == 0, err_of(a)
        assert "lost lock" not in err_of(a), err_of(a)
        assert wait(b) == 0, err_of(b)
        assert lines(log) == ["a", "a-end", "b"], lines(log)


def test_etcd_all_members_stopped_lock_lost():
    """Every member stopped past the TTL: the run is stopped with reason
    lock-lost, the teardown runs (SUPERVISE_REASON=lock-lost), supervise
    exits 121 and says why; the status file says lock-lost."""
    ttl = 2
    with Cluster(3) as c:
        d = tmp()
        log = os.path.join(d, "log")
        st = os.path.join(d, "st.json")
        url = c.url("app")
        a = start(d, "a", ["--lock-ttl", str(ttl), "--status-file", st,
                           "-T", "echo td $SUPERVISE_REASON >> %s" % log,
                           "-l", url, "--", "sh", "-c",
                           "echo a >> %s; exec sleep 60" % log])
        wait_line(log, "a")
        c.stop_all()
        t0 = time.monotonic()
        assert wait(a, 60) == 121, err_of(a)
        assert time.monotonic() - t0 >= ttl * 2 / 3 - 0.2
        ep = c.members[-1].endpoint
        e = err_of(a).splitlines()
        assert e[0] == ("supervise: lost lock %s: no etcd endpoint renewed "
                        "its lease within %ds (last: %s: Couldn't connect to "
                        "server); stopping the run with SIGTERM"
                        % (url, ttl, ep)) or e[0].startswith(
                            "supervise: lost lock %s: no etcd endpoint "
                            "renewed its lease within %ds (last: "
                            % (url, ttl)), e
        assert lines(log) == ["a", "td lock-lost"], lines(log)
        rec = bb.read_status(st)
        assert (rec["reason"], rec["exit_status"]) == ("lock-lost", 121), rec
        assert rec["teardown"]["reason"] == "lock-lost", rec
        assert rec["command_status"] == {"signaled": "SIGTERM"}, rec


# ------------------------------------------------------------ contention

def test_etcd_contention():
    """Three "hosts" (threads with directories of their own, the endpoints
    in different orders) run supervise back to back on one lock name until
    500 critical sections have been entered, with cancels (SIGTERM) and a
    few SIGKILLs of whole runs mixed in.  The critical section detects a
    second live holder itself: never two.  The fencing tokens seen inside
    grow with every entry."""
    ttl = 2
    target, limit = 500, 150
    with Cluster(3) as c:
        shared = tmp()
        crit, log = os.path.join(shared, "crit"), os.path.join(shared, "log")
        eps = [m.endpoint for m in c.members]
        stop_at = time.monotonic() + limit
        kills = [0]
        statuses = []
        lock = threading.Lock()

        def entered():
            return sum(1 for l in lines(log) if l.startswith("enter "))

        def host(k):
            d = tmp()
            rnd = random.Random(k)
            order = eps[k:] + eps[:k]
            url = "etcd://%s/contended" % ",".join(order)
            n = 0
            while entered() < target and time.monotonic() < stop_at:
                n += 1
                p = start(d, "r%d" % n, ["-k", "1", "--lock-ttl", str(ttl),
                                         "-l", url, CRIT, crit, log,
                                         "0.002"])
                roll = rnd.random()
                if roll < 0.06:
                    time.sleep(rnd.uniform(0, 0.05))
                    bb.try_kill(p, signal.SIGTERM)
                else:
                    # A run may end before the SIGKILL lands (legal): the
                    # kills that count are those it died of.  Halfway
                    # without one, the next run is killed at once, so that
                    # the test always has at least one.
                    with lock:
                        late = kills[0] == 0 and entered() >= target // 2
                        go = kills[0] < 6 and (roll < 0.075 or late)
                    if go:
                        time.sleep(0 if late else rnd.uniform(0, 0.05))
                        freeze_and_kill(p)
                rc = wait(p, 60)
                with lock:
                    statuses.append((rc, err_of(p)))
                    kills[0] += rc == -signal.SIGKILL

        threads = [threading.Thread(target=host, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ev = lines(log)
        assert not [l for l in ev if l.startswith("overlap")], \
            [l for l in ev if l.startswith("overlap")]
        enters = [l for l in ev if l.startswith("enter ")]
        assert len(enters) >= target, (len(enters), len(statuses))
        toks = [int(l.split()[2]) for l in enters]
        assert all(a < b for a, b in zip(toks, toks[1:])), toks
        # A SIGTERM that comes before supervise has even blocked its
        # signals (right after exec) kills it: legal, if rare.
        for rc, e in statuses:
            assert rc in (0, 128 + signal.SIGTERM, -signal.SIGKILL,
                          -signal.SIGTERM), (rc, e)
        assert any(rc == 128 + signal.SIGTERM for rc, e in statuses)
        assert kills[0] > 0, kills


test_etcd_contention.time_limit = 240


# ------------------------------------------------------------ credentials

def test_etcd_tls():
    """etcds:// with a server that asks for a client certificate: the
    right CA and client certificate take the lock; no CA (the system's
    does not know this one), another CA, or no client certificate: one
    line, exit 125, COMMAND not started.  The options can come from the
    environment."""
    with Cluster(1, tls=True) as c:
        t, d = c.tls, tmp()
        url = c.url("app")
        ep = c.members[0].endpoint
        good = ["--etcd-cacert", t["ca"], "--etcd-cert", t["client"],
                "--etcd-key", t["client_key"]]
        r = bb.run(good + ["-l", url, "sh", "-c",
                           "echo $SUPERVISE_FENCING_TOKEN > tok"], cwd=d)
        assert r.rc == 0, r
        assert int(bb.read(os.path.join(d, "tok"))) > 0
        env = dict(os.environ, SUPERVISE_ETCD_CACERT=t["ca"],
                   SUPERVISE_ETCD_CERT=t["client"],
                   SUPERVISE_ETCD_KEY=t["client_key"])
        r = bb.run(["-l", url, "true"], env=env)
        assert r.rc == 0, r
        bad = [
            ([], "SSL certificate problem: unable to get local issuer "
             "certificate"),
            (["--etcd-cacert", t["other_ca"], "--etcd-cert", t["client"],
              "--etcd-key", t["client_key"]],
             "SSL certificate problem: unable to get local issuer "
             "certificate"),
        ]
        for extra, why in bad:
            r = bb.run(extra + ["-l", url, "touch", "ran"], cwd=d)
            assert (r.rc, r.err) == (125, "supervise: cannot lock '%s': "
                                     "%s: %s\n" % (url, ep, why)), (extra, r)
        # No client certificate: the server refuses the handshake.
        r = bb.run(["--etcd-cacert", t["ca"], "-l", url, "touch", "ran"],
                   cwd=d)
        assert r.rc == 125 and r.err.startswith(
            "supervise: cannot lock '%s': %s: " % (url, ep)) and \
            r.err.count("\n") == 1, r
        assert not os.path.exists(os.path.join(d, "ran"))


def test_etcd_user_and_password():
    """A cluster with authentication: USER:PASSWORD from a file (option or
    environment) takes the lock; a wrong password is one line, exit 125,
    COMMAND not started."""
    if not shutil.which("etcdctl"):
        raise bb.Skip("etcdctl is not installed (Debian: etcd-client)")
    with Cluster(1) as c:
        d = tmp()
        ep = c.members[0].endpoint
        for args in (["role", "add", "root"], ["user", "add", "root:s3cret"],
                     ["user", "grant-role", "root", "root"],
                     ["auth", "enable"]):
            subprocess.run(["etcdctl", "--endpoints", ep] + args, check=True,
                           stdout=subprocess.DEVNULL, timeout=20)
        good, wrong = os.path.join(d, "good"), os.path.join(d, "wrong")
        with open(good, "w") as f:
            f.write("root:s3cret\n")
        with open(wrong, "w") as f:
            f.write("root:guess\n")
        url = c.url("app")
        r = bb.run(["--etcd-user-file", good, "-l", url, "sh", "-c",
                    "echo $SUPERVISE_FENCING_TOKEN > tok"], cwd=d)
        assert r.rc == 0, r
        assert int(bb.read(os.path.join(d, "tok"))) > 0
        r = bb.run(["-l", url, "true"],
                   env=dict(os.environ, SUPERVISE_ETCD_USER_FILE=good))
        assert r.rc == 0, r
        r = bb.run(["--etcd-user-file", wrong, "-l", url, "touch", "ran"],
                   cwd=d)
        assert (r.rc, r.err) == (
            125, "supervise: cannot lock '%s': %s: etcdserver: "
            "authentication failed, invalid user ID or password\n"
            % (url, ep)), r
        assert not os.path.exists(os.path.join(d, "ran"))
        # The password is never on the command line of any process.
        assert "s3cret" not in r.err


def test_etcd_libraries_loaded_only_when_needed():
    """A run without an etcd lock maps neither libcurl nor json-c (they
    are loaded with dlopen() by runs that take one); a run with one does,
    in the front and the supervisor."""
    def libs(pid):
        maps = bb.read("/proc/%d/maps" % pid)
        return sorted({n for n in ("libcurl", "libjson-c") if n in maps})

    d = tmp()
    p = start(d, "plain", ["-l", os.path.join(d, "f"), "--", "sh", "-c",
                           "touch up; exec sleep 60"])
    bb.wait_for(lambda: os.path.exists(os.path.join(d, "up")), 30)
    sup = bb.supervisor_of(p.pid)
    assert libs(p.pid) == [] and libs(sup) == [], (libs(p.pid), libs(sup))
    p.send_signal(signal.SIGTERM)
    wait(p)
    with Cluster(1) as c:
        os.unlink(os.path.join(d, "up"))
        p = start(d, "etcd", ["-l", c.url("x"), "--", "sh", "-c",
                              "touch up; exec sleep 60"])
        bb.wait_for(lambda: os.path.exists(os.path.join(d, "up")), 30)
        sup = bb.supervisor_of(p.pid)
        assert libs(p.pid) == ["libcurl", "libjson-c"], libs(p.pid)
        assert libs(sup) == ["libcurl", "libjson-c"], libs(sup)
        # COMMAND inherits no connection to etcd.  "up" comes before
        # the exec of sleep: its command line is polled for.
        cmd = bb.wait_for(lambda: [c2 for c2 in bb.children(sup)
                                   if bb.cmdline(c2) == "sleep 60"], 30,
                          what="COMMAND's exec of sleep")
        fds = os.listdir("/proc/%d/fd" % cmd[0])
        socks = [f for f in fds if os.readlink("/proc/%d/fd/%s" % (
            cmd[0], f)).startswith("socket:")]
        assert socks == [], fds
        p.send_signal(signal.SIGTERM)
        wait(p)


def test_etcd_wait_longer_than_ttl_keeps_its_place():
    """A run that waits several times its TTL keeps its lease alive while
    it waits: it gets the lock with the key it made when it started
    waiting (its fencing token is the revision of that key)."""
    with Cluster(3) as c:
        d = tmp()
        url = c.url("q")
        a = start(d, "a", ["-l", url, "--", "sh", "-c",
                           "while [ ! -e go ]; do sleep 0.05; done"])
        bb.wait_for(lambda: len(c.keys("q/")) == 1, 30, what="A holds")
        b = start(d, "b", ["--lock-ttl", "1", "-l", url, "--", "sh", "-c",
                           "echo $SUPERVISE_FENCING_TOKEN > tok"])
        bb.wait_for(lambda: len(c.keys("q/")) == 2, 30, what="B queued")
        mine = max(rev for rev, lease, v in c.keys("q/").values())
        time.sleep(4)
        assert len(c.keys("q/")) == 2, c.keys("q/")
        open(os.path.join(d, "go"), "w").close()
        assert wait(a) == 0 and wait(b) == 0, (err_of(a), err_of(b))
        assert int(bb.read(os.path.join(d, "tok"))) == mine


def test_etcd_frozen_watch_member_is_checked():
    """The member a waiting run watches through is frozen (SIGSTOP: its
    connections stay open and say nothing), and the holder releases the
    lock through the other members: the waiting run still gets it within
    a few TTLs, by looking at the queue again through another member."""
    ttl = 2
    with Cluster(3) as c:
        m0, m1, m2 = c.members
        d = tmp()
        log = os.path.join(d, "log")
        a = start(d, "a", ["-l", c.url("app", [m1, m2]), "--", "sh", "-c",
                           "echo a >> log; while [ ! -e go ]; do "
                           "sleep 0.05; done"])
        wait_line(log, "a")
        # B's endpoints start with m0: its watch goes there.
        b = start(d, "b", ["-v", "--lock-ttl", str(ttl), "-l", c.url("app"),
                           "--", "sh", "-c", "echo b >> log"])
        watching = ("supervise: lock %s: watching the key before ours "
                    "through %s\n" % (c.url("app"), m0.endpoint))
        bb.wait_for(lambda: watching in err_of(b), 30,
                    what="B watching through m0 (stderr %r)" % err_of(b))
        m0.proc.send_signal(signal.SIGSTOP)
        try:
            def leader():
                for m in (m1, m2):
                    st = m.status()
                    if st and st.get("leader") == st.get(
                            "header", {}).get("member_id"):
                        return m
                return None
            # A releases through m1 or m2 once they have a leader.
            bb.wait_for(leader, 30, interval=0.05, what="leader of m1, m2")
            open(os.path.join(d, "go"), "w").close()
            assert wait(a) == 0, err_of(a)
            wait_line(log, "b", timeout=5 * ttl + 10)
            assert wait(b) == 0, err_of(b)
            assert lines(log) == ["a", "b"], lines(log)
            assert ("supervise: lock %s: the watch through %s missed a "
                    "change or is stale; looking again through "
                    % (c.url("app"), m0.endpoint)) in err_of(b), err_of(b)
        finally:
            m0.proc.send_signal(signal.SIGCONT)
