"""Tests of what ships beside the binary: the bash completion
(completion/supervise.bash) against what supervise accepts, the Debian
changelog's version, and the examples (examples/, installed by the Debian
package) against the README's recipes."""
import os
import re
import shutil
import subprocess

import bb

COMPLETION = os.path.join(bb.ROOT, "completion", "supervise.bash")


def complete(*words):
    """What the completion offers for the command line words (the last is
    the word being completed), one entry per offer."""
    if shutil.which("bash") is None:
        raise bb.Skip("bash is not installed")
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); '
              '_supervise; printf "%s\\n" "${COMPREPLY[@]}"')
    p = subprocess.run(["bash", "--norc", "-c", script, "bash", COMPLETION,
                        "supervise"] + list(words),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stderr == "", p
    return [w for w in p.stdout.split("\n") if w]


def help_text():
    r = bb.run(["--help"])
    assert r.rc == 0, r
    return r.out


def test_completion_offers_the_options_of_help():
    want = set()
    for line in help_text().splitlines():
        m = re.match(r"^ +(-[A-Za-z], )?(--[a-z0-9-]+)", line)
        if m:
            want.add(m.group(2))
            if m.group(1):
                want.add(m.group(1)[:2])
    assert len(want) > 30, want
    got = complete("-")
    assert "--" in got, got
    got = set(got) - {"--"}
    assert got == want, (sorted(got - want), sorted(want - got))
    assert complete("--teardown-") == ["--teardown-on", "--teardown-timeout",
                                       "--teardown-log"]


def test_completion_knows_which_options_take_an_argument():
    """After an option that takes an argument ("--lock=FILE" in --help), a
    word is that argument, never an option; after one that takes none,
    options are offered again."""
    with_arg, without = set(), set()
    for line in help_text().splitlines():
        m = re.match(r"^ +(-[A-Za-z], )?(--[a-z0-9-]+)(=?)", line)
        if m:
            names = [m.group(2)] + ([m.group(1)[:2]] if m.group(1) else [])
            (with_arg if m.group(3) else without).update(names)
    assert "--lock" in with_arg and "-l" in with_arg, with_arg
    for opt in sorted(with_arg):
        assert complete(opt, "--") == [], opt
    for opt in sorted(without):
        assert "--timeout" in complete(opt, "--"), opt


def test_completion_signals_are_stop_signals_supervise_accepts():
    names = complete("-s", "")
    assert "TERM" in names and "KILL" in names and "RTMIN" in names, names
    for name in names + ["SIG" + n for n in names]:
        r = bb.run(["-s", name, "true"])
        assert (r.rc, r.err) == (0, ""), (name, r)
    assert complete("--signal", "=", "te") == []
    assert complete("--signal", "=", "TE") == ["TERM"]
    assert complete("-qs", "SIGK") == ["SIGKILL"]
    # The job-control signals are refused as stop signals, and not offered.
    for name in ("STOP", "TSTP", "TTIN", "TTOU", "CONT"):
        assert name not in names


def test_completion_teardown_events_are_those_of_help():
    m = re.search(r"comma list of ([a-z, \n]+?)\s*\(default", help_text())
    assert m, help_text()
    want = re.split(r"[,\s]+", m.group(1).strip())
    assert complete("--teardown-on", "=", "") == want
    assert complete("--teardown-on", "timeout,c") == ["timeout,cancel"]
    for ev in want:
        r = bb.run(["--teardown-on=" + ev, "true"])
        assert (r.rc, r.err) == (0, ""), (ev, r)


def test_completion_cgroup_modes_are_those_supervise_accepts():
    r = bb.run(["--cgroup=bogus", "true"])
    assert r.rc == 125, r
    m = re.search(r"\(([a-z]+), ([a-z]+) or ([a-z]+)\)", r.err)
    assert m, r.err
    assert complete("--cgroup", "") == list(m.groups())


def test_completion_capabilities_are_names_supervise_accepts():
    caps = complete("--caps", "")
    assert "none" in caps and "cap_net_bind_service" in caps, caps
    for cap in caps:
        # Without root or CAP_SETPCAP the run fails, but not on the name.
        r = bb.run(["--caps=" + cap, "true"])
        assert "invalid capability" not in r.err, (cap, r)
    assert complete("--caps", "cap_chown,cap_k") == ["cap_chown,cap_kill"]


def test_completion_hands_command_words_to_files_and_commands():
    assert complete("-t", "5", "-k", "1", "--", "supervise-no-such-command-") == []
    assert "sh" in complete("-t", "5", "s")
    # Durations get nothing; -qt5 carries its own argument.
    assert complete("-t", "") == []
    assert complete("-qt5", "--st") == ["--status-file"]


def test_debian_changelog_has_the_version_of_the_binary():
    with open(os.path.join(bb.ROOT, "debian", "changelog")) as f:
        first = f.readline()
    m = re.match(r"^supervise \(([^)]+)\) ", first)
    assert m, first
    r = bb.run(["--version"])
    assert r.out == "supervise %s\n" % m.group(1), (r, first)


def test_examples_are_recipes_of_the_readme():
    with open(os.path.join(bb.ROOT, "README.md")) as f:
        readme = f.read()
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```$", readme, re.S | re.M)
    d = os.path.join(bb.ROOT, "examples")
    names = sorted(os.listdir(d))
    assert names, d
    for name in names:
        with open(os.path.join(d, name)) as f:
            text = f.read()
        assert text in blocks, "examples/%s is not a recipe of README.md" % name
