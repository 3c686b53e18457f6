"""Black-box tests of supervise's capability limits (--caps, --no-new-privs)
and of the warning printed when COMMAND's exec changes credentials: see
the CAPABILITIES section of the man page.

COMMAND is tests/helpers/caps_probe, which prints its uids, its
parent-death signal (prctl(PR_GET_PDEATHSIG)), the Cap*/NoNewPrivs lines
of /proc/self/status and, with --bind, whether it could bind
127.0.0.1:PORT.  The probe's parent-death signal is what the kernel really
did at the exec, so each warning case also checks that the warning is
printed exactly when the kernel cleared the signal.

Most tests need root (to limit capabilities, setcap, chown, setpriv) and
skip with a reason otherwise.  Binaries given file capabilities or
set-user-ID bits are copies in a temporary directory that the nobody user
can reach (mode 755), removed afterwards.  What runs as nobody runs from
such copies too (as_nobody(), staged()): the checkout may be where nobody
cannot reach it, in a home directory of mode 700.
"""
import errno
import os
import shlex
import shutil
import signal
import subprocess

import bb

SUP = bb.SUPERVISE
Q = shlex.quote
CAP_NET_BIND_SERVICE = 10
CAP_NET_RAW = 13
CAP_KEYS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]

# Build the C helper once, at discovery (before the tests fork).
subprocess.run(["make", "-s", "-C", bb.ROOT, "tests/helpers/caps_probe"],
               check=False, stdout=subprocess.DEVNULL)
PROBE = os.path.join(bb.HELPERS, "caps_probe")


# ---------------------------------------------------------------- helpers


def tmpdir(mode=0o755):
    """A temporary directory the nobody user can reach (removed when the
    test ends)."""
    d = bb.shared_tmpdir()
    os.chmod(d, mode)
    return d


_staged = []


def staged():
    """(supervise, probe): copies the nobody user can run, made once per
    test in a directory of their own (bb.stage)."""
    if not _staged:
        _staged.extend(bb.stage(tmpdir(), SUP, PROBE))
    return tuple(_staged)


def as_nobody(*extra):
    """run()/probe() keywords: supervise, the staged copy, run as nobody
    by setpriv with the EXTRA options too."""
    return dict(prefix=AS_NOBODY + list(extra), sup=staged()[0])


def run(args, prefix=(), cwd="/", timeout=60, env=None, sup=SUP):
    """Runs [prefix...] supervise ARGS; Result with text stdout/stderr."""
    p = subprocess.run(list(prefix) + [sup] + list(args), capture_output=True,
                       text=True, errors="replace", timeout=timeout, cwd=cwd,
                       stdin=subprocess.DEVNULL, env=env)
    return bb.Result(p.returncode, p.stdout, p.stderr)


def parse_probe(text):
    """The probe's report as a dict: pid, uid, euid, pdeathsig, bind (or
    None), Cap* as ints, NoNewPrivs as int."""
    out = {"bind": None}
    for line in text.splitlines():
        if line.startswith("pid "):
            out["pid"] = int(line.split()[1])
        elif line.startswith("uid "):
            out["uid"], out["euid"] = (int(x) for x in line.split()[1:3])
        elif line.startswith("pdeathsig "):
            out["pdeathsig"] = int(line.split()[1])
        elif line.startswith("bind "):
            out["bind"] = int(line.split()[1])
        elif line.startswith("Cap"):
            k, v = line.split(":")
            out[k] = int(v.strip(), 16)
        elif line.startswith("NoNewPrivs:"):
            out["NoNewPrivs"] = int(line.split(":")[1])
    missing = [k for k in ("pid", "uid", "pdeathsig", "NoNewPrivs") + CAP_KEYS if k not in out]
    assert not missing, "probe output lacks %s: %r" % (missing, text)
    return out


def own_status():
    """This (test) process's Cap* and NoNewPrivs values."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Cap"):
                k, v = line.split(":")
                out[k] = int(v.strip(), 16)
            elif line.startswith("NoNewPrivs:"):
                out["NoNewPrivs"] = int(line.split(":")[1])
    return out


def probe(args, prefix=(), probe_path=None, probe_args=(), **kw):
    """Runs supervise ARGS -- PROBE PROBE_ARGS; returns (Result, report or
    None when the probe did not run)."""
    r = run(list(args) + ["--", probe_path or PROBE] + list(probe_args), prefix=prefix, **kw)
    return r, (parse_probe(r.out) if r.out.strip() else None)


def assert_caps(rep, mask, r):
    for k in CAP_KEYS:
        assert rep[k] == mask, "%s is %#x, expected %#x (%r)" % (k, rep[k], mask, r)
    assert rep["NoNewPrivs"] == 1, (rep, r)


def copy_probe(d, name, caps=None, owner=None, group=None, mode=0o755):
    """A copy of the probe at d/NAME with file capabilities (setcap text),
    owner/group and mode as given."""
    path = os.path.join(d, name)
    shutil.copyfile(PROBE, path)
    if owner is not None or group is not None:
        os.chown(path, -1 if owner is None else owner, -1 if group is None else group)
    os.chmod(path, mode)   # after chown, which clears set-user-ID bits
    if caps is not None:
        r = subprocess.run(["setcap", caps, path], capture_output=True, text=True)
        if r.returncode != 0:
            raise bb.Skip("setcap %s does not work here: %s" % (caps, r.stderr.strip()))
    return path


def warning(path, why):
    return ("supervise: warning: running '%s' changes credentials (%s): the kernel "
            "clears its parent-death signal\n" % (path, why))


def nobody_ids():
    import pwd
    import grp
    return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid


def check_warning(r, rep, path, why):
    """Exactly the warning (or no output at all when why is None), and the
    kernel did (did not) clear the probe's parent-death signal."""
    assert r.rc == 0, r
    assert rep is not None, r
    if why is None:
        assert rep["pdeathsig"] == signal.SIGKILL, \
            "the kernel cleared the parent-death signal but there was no warning: %r" % (r,)
        assert r.err == "", \
            "a warning, but the kernel kept the parent-death signal (%d): %r" % (
                rep["pdeathsig"], r)
    else:
        assert r.err == warning(path, why), r
        assert rep["pdeathsig"] == 0, \
            "warning printed, but the kernel kept the parent-death signal (%d): %r" % (
                rep["pdeathsig"], r)


def _collect(problems, fn, *args):
    """Runs fn(*args); an AssertionError is added to problems (so that one
    test can report several cases)."""
    try:
        fn(*args)
    except AssertionError as e:
        problems.append(str(e))


# ---------------------------------------------------------------- --caps sets

@bb.default_signal_state
def test_caps_none_clears_every_set():
    """--caps=none: all five sets zero in COMMAND, NoNewPrivs 1."""
    bb.require_root()
    r, rep = probe(["--caps=none"])
    assert r.rc == 0 and r.err == "", r
    assert_caps(rep, 0, r)
    assert rep["uid"] == 0 and rep["euid"] == 0, rep
    assert rep["pdeathsig"] == signal.SIGKILL, rep


@bb.default_signal_state
def test_caps_keep_net_bind_service_binds_port_80():
    """--caps=cap_net_bind_service: exactly bit 10 in all five sets, and
    COMMAND can bind 127.0.0.1:80; with --caps=none it gets EACCES."""
    bb.require_root()
    r, rep = probe(["--caps=cap_net_bind_service"], probe_args=["--bind", "80"])
    assert r.rc == 0 and r.err == "", r
    assert_caps(rep, 1 << CAP_NET_BIND_SERVICE, r)
    assert rep["bind"] == 0, "bind to port 80 failed: %s" % os.strerror(rep["bind"])

    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        unpriv = int(f.read())
    r, rep = probe(["--caps=none"], probe_args=["--bind", "80"])
    assert r.rc == 0 and r.err == "", r
    assert_caps(rep, 0, r)
    if unpriv <= 80:
        raise bb.Skip("net.ipv4.ip_unprivileged_port_start is %d: anyone may bind "
                      "port 80 here, so --caps=none cannot be seen to prevent it" % unpriv)
    assert rep["bind"] == errno.EACCES, \
        "bind to port 80 without the capability: %r" % (rep["bind"],)


@bb.default_signal_state
def test_caps_name_in_upper_case():
    """CAP_NET_BIND_SERVICE (any case) is the same capability."""
    bb.require_root()
    for name in ("CAP_NET_BIND_SERVICE", "Cap_Net_Bind_Service"):
        r, rep = probe(["--caps=" + name], probe_args=["--bind", "80"])
        assert r.rc == 0 and r.err == "", (name, r)
        assert_caps(rep, 1 << CAP_NET_BIND_SERVICE, r)
        assert rep["bind"] == 0, (name, rep)


@bb.default_signal_state
def test_caps_two_names():
    """Two names: exactly those two bits in all five sets."""
    bb.require_root()
    r, rep = probe(["--caps=cap_net_bind_service,CAP_NET_RAW"])
    assert r.rc == 0 and r.err == "", r
    assert_caps(rep, (1 << CAP_NET_BIND_SERVICE) | (1 << CAP_NET_RAW), r)


@bb.default_signal_state
def test_caps_teardown_keeps_full_capabilities():
    """--caps=none limits COMMAND only: the teardown has supervise's own
    capabilities (the same as this test process's) and no no_new_privs;
    also in --foreground."""
    bb.require_root()
    own = own_status()
    d = tmpdir()
    for mode in ([], ["--foreground"]):
        td_out = os.path.join(d, "td%d" % len(mode))
        td = "grep -E '^(Cap|NoNewPrivs)' /proc/self/status > %s" % Q(td_out)
        r, rep = probe(mode + ["--caps=none", "-q", "-T", td, "--teardown-on=always"])
        assert r.rc == 0 and r.err == "", (mode, r)
        assert_caps(rep, 0, r)
        got = {}
        for line in bb.read(td_out).splitlines():
            k, v = line.split(":")
            got[k] = int(v.strip(), 16) if k.startswith("Cap") else int(v)
        assert got, "the teardown did not run (%r)" % (mode,)
        for k in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs"):
            assert got[k] == own[k], "%s: teardown's %s is %#x, the test's %#x" % (
                mode, k, got[k], own[k])


@bb.default_signal_state
def test_caps_no_new_privs_alone():
    """--no-new-privs alone: NoNewPrivs 1, capabilities unchanged."""
    own = own_status()
    r, rep = probe(["--no-new-privs"])
    assert r.rc == 0 and r.err == "", r
    assert rep["NoNewPrivs"] == 1, rep
    for k in CAP_KEYS:
        assert rep[k] == own[k], "%s: %#x in COMMAND, %#x here" % (k, rep[k], own[k])
    # Without the option, COMMAND has no no_new_privs of its own.
    r, rep = probe([])
    assert r.rc == 0 and rep["NoNewPrivs"] == own["NoNewPrivs"], (r, rep)


@bb.default_signal_state
def test_caps_cannot_be_regained_by_exec():
    """Under --caps=none, executing a set-user-ID-root copy of the probe
    (directly, and from a shell) gives no capability; a copy with file
    capabilities either cannot be executed (EPERM, 126) or gives none."""
    bb.require_root()
    d = tmpdir()
    suid = copy_probe(d, "suid-root", owner=0, mode=0o4755)
    assert os.stat(suid).st_mode & 0o4000
    for args in ([suid], ["sh", "-c", "exec %s" % Q(suid)], ["sh", "-c", "%s; :" % Q(suid)]):
        r = run(["--caps=none", "--"] + args)
        assert r.rc == 0 and r.err == "", (args, r)
        rep = parse_probe(r.out)
        assert rep["euid"] == 0, rep
        assert_caps(rep, 0, r)

    fcap = copy_probe(d, "fcap", caps="cap_net_raw+ep")
    r = run(["--caps=none", "--", fcap])
    if r.rc == 126:
        assert r.err == "supervise: cannot run '%s': Operation not permitted\n" % fcap, r
        assert r.out == "", r
    else:
        assert r.rc == 0 and r.err == "", r
        assert_caps(parse_probe(r.out), 0, r)


# ---------------------------------------------------------------- bad lists

@bb.default_signal_state
def test_caps_unknown_name():
    """An unknown name: 125, the message names it, COMMAND not started."""
    d = tmpdir(0o777)
    marker = os.path.join(d, "started")
    for caps, bad in (("cap_bogus", "cap_bogus"),
                      ("cap_net_raw,cap_bogus", "cap_bogus"),
                      ("cap_bogus,cap_net_raw", "cap_bogus")):
        r = run(["--caps=" + caps, "--", "sh", "-c", "touch %s" % Q(marker)])
        assert r.rc == 125, (caps, r)
        assert r.err == ("supervise: invalid capability '%s'\n" % bad +
                         bb.TRY_HELP), (caps, r)
        assert not os.path.exists(marker), "COMMAND was started (%s)" % caps


@bb.default_signal_state
def test_caps_empty_lists():
    """--caps= and a trailing comma: 125 with one 'invalid capability'
    line and the --help hint, COMMAND not started."""
    d = tmpdir(0o777)
    marker = os.path.join(d, "started")
    for caps in ("", "cap_net_raw,", ",cap_net_raw", "cap_net_raw,,cap_chown"):
        r = run(["--caps=" + caps, "--", "sh", "-c", "touch %s" % Q(marker)])
        assert r.rc == 125, (caps, r)
        lines = r.err.splitlines(True)
        assert len(lines) == 2 and lines[1] == bb.TRY_HELP and \
            lines[0].startswith("supervise: invalid capability '"), (caps, r)
        assert not os.path.exists(marker), "COMMAND was started (%r)" % caps


@bb.default_signal_state
def test_caps_non_root_refused():
    """Not root (nobody via setpriv), or root without CAP_SETPCAP: --caps
    fails before COMMAND starts, 125, with the message.  (When the tests
    do not run as root, supervise runs as the test's own user.)"""
    d = tmpdir(0o777)
    marker = os.path.join(d, "started")
    msg = "supervise: cannot limit capabilities: CAP_SETPCAP is needed (run as root)\n"
    if os.geteuid() == 0:
        users = [as_nobody(), dict(prefix=["setpriv", "--bounding-set=-setpcap"])]
    else:
        users = [{}]
    for kw in users:
        prefix = kw.get("prefix", [])
        for caps in ("none", "cap_net_bind_service"):
            r = run(["--caps=" + caps, "--", "sh", "-c", "touch %s" % Q(marker)], **kw)
            assert r.rc == 125, (prefix, caps, r)
            assert r.err == msg, (prefix, caps, r)
            assert not os.path.exists(marker), "COMMAND was started (%s)" % prefix
    # The same user can start COMMAND without --caps (the test is fair).
    r = run(["--", "sh", "-c", "touch %s" % Q(marker)], **users[0])
    assert r.rc == 0 and os.path.exists(marker), r


@bb.default_signal_state
def test_caps_non_root_with_setpcap():
    """A non-root user that holds CAP_SETPCAP (ambient) may limit: COMMAND
    gets none; keeping a capability it does not hold is refused (125)."""
    bb.require_root()
    amb = as_nobody("--inh-caps=+setpcap", "--ambient-caps=+setpcap")
    probe_copy = staged()[1]
    r, rep = probe(["--caps=none"], probe_path=probe_copy, **amb)
    assert r.rc == 0 and r.err == "", r
    assert rep["uid"] != 0, rep
    assert_caps(rep, 0, r)
    r, rep = probe(["--caps=cap_net_bind_service"], probe_path=probe_copy, **amb)
    assert r.rc == 125, r
    assert r.err == ("supervise: cannot keep capability cap_net_bind_service: "
                     "supervise does not hold it\n"), r
    assert rep is None, r


@bb.default_signal_state
def test_caps_keep_capability_not_held():
    """root whose bounding set lacks cap_net_raw cannot keep it: 125 with
    the message, COMMAND not started; other names still work."""
    bb.require_root()
    d = tmpdir(0o777)
    marker = os.path.join(d, "started")
    prefix = ["setpriv", "--bounding-set=-net_raw"]
    r = run(["--caps=cap_net_bind_service,cap_net_raw", "--", "sh", "-c",
             "touch %s" % Q(marker)], prefix=prefix)
    assert r.rc == 125, r
    assert r.err == ("supervise: cannot keep capability cap_net_raw: supervise "
                     "does not hold it\n"), r
    assert not os.path.exists(marker), "COMMAND was started"
    r, rep = probe(["--caps=cap_net_bind_service"], prefix=prefix)
    assert r.rc == 0 and r.err == "", r
    assert_caps(rep, 1 << CAP_NET_BIND_SERVICE, r)


# ---------------------------------------------------------------- warnings

@bb.default_signal_state
def test_caps_warning_file_capabilities_non_root():
    """nobody runs a binary with file capabilities (setcap cap_net_raw+ep):
    exactly one warning line naming it; the kernel indeed cleared the
    parent-death signal.  -q hides the warning."""
    bb.require_root()
    d = tmpdir()
    f = copy_probe(d, "fcap", caps="cap_net_raw+ep")
    r, rep = probe([], probe_path=f, **as_nobody())
    check_warning(r, rep, f, "file capabilities")
    assert rep["uid"] != 0 and rep["CapEff"] == 1 << CAP_NET_RAW, rep
    r, rep = probe(["-q"], probe_path=f, **as_nobody())
    assert r.rc == 0 and r.err == "", r
    assert rep["pdeathsig"] == 0, rep
    # The effective bit makes it a "secure exec" even under no_new_privs.
    r, rep = probe(["--no-new-privs"], probe_path=f, **as_nobody())
    check_warning(r, rep, f, "file capabilities")


@bb.default_signal_state
def test_caps_no_warning_file_capabilities_root():
    """root runs the same file: the kernel keeps the signal, no warning."""
    bb.require_root()
    d = tmpdir()
    f = copy_probe(d, "fcap", caps="cap_net_raw+ep")
    r, rep = probe([], probe_path=f)
    check_warning(r, rep, f, None)


@bb.default_signal_state
def test_caps_warning_file_capabilities_permitted_only():
    """File capabilities without the effective bit (cap_net_raw+p) run by
    nobody: the permitted set grows (warning) unless --no-new-privs stops
    that (no warning)."""
    bb.require_root()
    d = tmpdir()
    f = copy_probe(d, "fcap-p", caps="cap_net_raw+p")
    r, rep = probe([], probe_path=f, **as_nobody())
    check_warning(r, rep, f, "file capabilities")
    r, rep = probe(["--no-new-privs"], probe_path=f, **as_nobody())
    check_warning(r, rep, f, None)
    # Inheritable file capabilities alone give nothing: no change.
    fi = copy_probe(d, "fcap-i", caps="cap_net_raw+i")
    r, rep = probe([], probe_path=fi, **as_nobody())
    check_warning(r, rep, fi, None)


@bb.default_signal_state
def test_caps_warning_setuid():
    """root runs a set-user-ID file owned by nobody: "(set-user-ID)"
    warning; with --no-new-privs (or --caps) none.  root runs a
    set-user-ID-root file: no warning; nobody runs it: warning."""
    bb.require_root()
    uid, gid = nobody_ids()
    d = tmpdir()
    su_nobody = copy_probe(d, "su-nobody", owner=uid, mode=0o4755)
    su_root = copy_probe(d, "su-root", owner=0, mode=0o4755)
    r, rep = probe([], probe_path=su_nobody)
    check_warning(r, rep, su_nobody, "set-user-ID")
    assert rep["euid"] == uid, rep
    for opt in (["--no-new-privs"], ["--caps=none"]):
        r, rep = probe(opt, probe_path=su_nobody)
        check_warning(r, rep, su_nobody, None)
        assert rep["euid"] == 0, rep
    r, rep = probe([], probe_path=su_root)
    check_warning(r, rep, su_root, None)
    r, rep = probe([], probe_path=su_root, **as_nobody())
    check_warning(r, rep, su_root, "set-user-ID")
    assert rep["euid"] == 0 and rep["uid"] == uid, rep
    r, rep = probe(["--no-new-privs"], probe_path=su_root, **as_nobody())
    check_warning(r, rep, su_root, None)


@bb.default_signal_state
def test_caps_warning_setgid():
    """root runs a set-group-ID file of group nogroup: "(set-group-ID)";
    a group set-ID bit without group execute is no set-group-ID: none;
    nobody (already of group nogroup) runs it: none."""
    bb.require_root()
    uid, gid = nobody_ids()
    d = tmpdir()
    sg = copy_probe(d, "sg", group=gid, mode=0o2755)
    sg_nox = copy_probe(d, "sg-nox", group=gid, mode=0o2745)
    r, rep = probe([], probe_path=sg)
    check_warning(r, rep, sg, "set-group-ID")
    r, rep = probe([], probe_path=sg_nox)
    check_warning(r, rep, sg_nox, None)
    r, rep = probe([], probe_path=sg, **as_nobody())
    check_warning(r, rep, sg, None)


@bb.default_signal_state
def test_caps_warning_names_file_found_in_path():
    """COMMAND given as a bare name found in PATH: the warning names the
    file that is executed."""
    bb.require_root()
    d = tmpdir()
    f = copy_probe(d, "fcap-in-path", caps="cap_net_raw+ep")
    env = dict(os.environ, PATH=d + ":/usr/bin:/bin")
    r = run(["--", "fcap-in-path"], env=env, **as_nobody())
    check_warning(r, parse_probe(r.out), f, "file capabilities")


@bb.default_signal_state
def test_caps_no_warning_for_setuid_script():
    """The kernel ignores set-user-ID bits and file capabilities of a "#!"
    script (the interpreter is what is executed): it keeps the signal, so
    no warning."""
    bb.require_root()
    uid, gid = nobody_ids()
    d = tmpdir()
    script = os.path.join(d, "su-script")
    with open(script, "w") as fh:
        # The staged probe: nobody runs the copy of the script below.
        fh.write("#!/bin/sh\nexec %s\n" % staged()[1])
    os.chown(script, uid, -1)
    os.chmod(script, 0o4755)
    problems = []
    r, rep = probe([], probe_path=script)
    assert rep is not None and rep["euid"] == 0, (r, rep)
    _collect(problems, check_warning, r, rep, script, None)

    fscript = os.path.join(d, "fcap-script")
    shutil.copyfile(script, fscript)
    os.chmod(fscript, 0o755)
    s = subprocess.run(["setcap", "cap_net_raw+ep", fscript], capture_output=True, text=True)
    if s.returncode != 0:
        raise bb.Skip("setcap on a script fails here: %s" % s.stderr.strip())
    r, rep = probe([], probe_path=fscript, **as_nobody())
    assert rep is not None and rep["CapEff"] == 0, (r, rep)
    _collect(problems, check_warning, r, rep, fscript, None)
    assert not problems, "\n".join(problems)


@bb.default_signal_state
def test_caps_no_warning_on_nosuid_mount():
    """On a nosuid mount (a tmpfs in a private mount namespace, gone with
    it) the kernel ignores set-user-ID bits and file capabilities: no
    warning."""
    bb.require_root()
    uid, gid = nobody_ids()
    d = tmpdir()
    ns = os.path.join(d, "ns")
    os.mkdir(ns)
    su, fc = os.path.join(ns, "su-nobody"), os.path.join(ns, "fcap")
    script = "\n".join([
        "set -e",
        "mount -t tmpfs -o nosuid,mode=755 tmpfs %s || exit 99" % Q(ns),
        "cp %s %s; cp %s %s" % (Q(PROBE), Q(su), Q(PROBE), Q(fc)),
        "chown %d %s; chmod 4755 %s" % (uid, Q(su), Q(su)),
        "setcap cap_net_raw+ep %s || exit 98" % Q(fc),
        "set +e",
        "%s -- %s > %s/out1 2> %s/err1; echo $? > %s/rc1" % (Q(SUP), Q(su), Q(d), Q(d), Q(d)),
        "%s %s -- %s > %s/out2 2> %s/err2; echo $? > %s/rc2" % (
            " ".join(AS_NOBODY), Q(staged()[0]), Q(fc), Q(d), Q(d), Q(d)),
    ])
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=60)
    if p.returncode in (98, 99) or "unshare:" in p.stderr:
        raise bb.Skip("cannot set up a nosuid tmpfs with file capabilities here: %r"
                      % p.stderr.strip())
    assert p.returncode == 0, p
    problems = []
    for i, path in ((1, su), (2, fc)):
        r = bb.Result(int(bb.read(os.path.join(d, "rc%d" % i)).strip() or -1),
                      bb.read(os.path.join(d, "out%d" % i)),
                      bb.read(os.path.join(d, "err%d" % i)))
        _collect(problems, check_warning, r, parse_probe(r.out), path, None)
    assert not problems, "\n".join(problems)
