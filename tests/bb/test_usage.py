"""Usage errors: exit status 125, a first line of stderr that names what
was typed, and a second that points to --help (as coreutils do)."""
import os

import bb

# Every long option that takes no argument.
FLAGS = ["foreground", "help", "ignore-parent-death", "no-new-privs",
         "preserve-status", "quiet", "verbose", "version"]


def usage_error(args, first_line):
    """Runs supervise with args, then COMMAND (which must not run): exit
    status 125, nothing on stdout, and on stderr first_line, then the
    pointer to --help."""
    d = bb.tmpdir()
    ran = os.path.join(d, "ran")
    r = bb.run(list(args) + ["touch", ran])
    assert r.rc == 125, r
    assert r.out == "", r
    assert r.err == first_line + "\n" + bb.TRY_HELP, r
    assert not os.path.exists(ran), r
    os.rmdir(d)


def test_argument_to_a_flag_is_refused_by_name():
    for name in FLAGS:
        usage_error(["--%s=1" % name],
                    "supervise: option '--%s' doesn't allow an argument"
                    % name)


def test_argument_to_an_abbreviated_flag_is_named_as_typed():
    usage_error(["--qui=1"],
                "supervise: option '--qui' doesn't allow an argument")
    usage_error(["-t", "5", "--fore="],
                "supervise: option '--fore' doesn't allow an argument")


def test_other_usage_errors_keep_their_messages():
    usage_error(["--bogus=1"], "supervise: unknown option '--bogus'")
    usage_error(["-x"], "supervise: unknown option '-x'")
    r = bb.run(["--timeout"])
    assert r.rc == 125, r
    assert r.err == ("supervise: option '--timeout' requires an argument\n" +
                     bb.TRY_HELP), r


def test_every_kind_of_usage_error_points_to_help():
    """Each way the command line can be wrong: its one line, then "Try
    'supervise --help' for more information.", and 125."""
    d = bb.tmpdir()
    locks = []
    for i in range(65):
        locks += ["-l", os.path.join(d, "l%02d" % i)]
    cases = [
        ("unknown option", ["--bogus"], "unknown option '--bogus'"),
        ("unknown short option", ["-x"], "unknown option '-x'"),
        ("unwanted argument", ["--quiet=1"],
         "option '--quiet' doesn't allow an argument"),
        ("bad duration", ["-t", "5x"], "invalid duration '5x'"),
        ("bad lock wait", ["-w", "soon"], "invalid duration 'soon'"),
        ("bad teardown timeout", ["--teardown-timeout=1y"],
         "invalid duration '1y'"),
        ("unknown signal", ["-s", "FOO"], "invalid signal 'FOO'"),
        ("unusable stop signal", ["-s", "STOP"],
         "signal 'STOP' cannot be the stop signal"),
        ("bad process id", ["--parent-pid=0"], "invalid process id '0'"),
        ("bad cgroup mode", ["--cgroup=maybe"],
         "invalid cgroup mode 'maybe' (auto, off or require)"),
        ("bad teardown event", ["--teardown-on=never"],
         "invalid teardown event 'never'"),
        ("bad capability", ["--caps=cap_bogus"],
         "invalid capability 'cap_bogus'"),
        ("empty lock file", ["-l", ""], "invalid lock file ''"),
        ("too many locks", locks, "too many locks (at most 64)"),
        ("empty status file", ["--status-file="], "invalid status file ''"),
        ("empty teardown log", ["--teardown-log="],
         "invalid teardown log file ''"),
    ]

    def check(args, line):
        usage_error(args, "supervise: " + line)
    bb.check_cases(cases, check)
    # Nothing may follow these: run without a COMMAND.
    for args, line in ((["-k"], "option '-k' requires an argument"),
                       (["--lock"], "option '--lock' requires an argument"),
                       ([], "missing command"),
                       (["--"], "missing command"),
                       (["-t", "5", "--"], "missing command")):
        r = bb.run(args)
        assert (r.rc, r.out, r.err) == (
            125, "", "supervise: %s\n%s" % (line, bb.TRY_HELP)), r
    os.rmdir(d)


def test_runtime_errors_do_not_point_to_help():
    """A COMMAND that cannot be found, or a lock file that cannot be
    used, is no usage error: one line, no pointer to --help."""
    d = bb.tmpdir()
    r = bb.run(["--", "no-such-command-here"], cwd=d)
    assert (r.rc, r.err) == (
        127, "supervise: cannot run 'no-such-command-here': "
        "No such file or directory\n"), r
    r = bb.run(["-l", d, "--", "true"])
    assert (r.rc, r.err) == (
        125, "supervise: lock file '%s' is not a regular file\n" % d), r
    os.rmdir(d)
