"""Usage errors: exit status 125 and a first line of stderr that names what
was typed.  Only the first line is pinned, so that a hint may follow it."""
import os

import bb

# Every long option that takes no argument.
FLAGS = ["foreground", "help", "ignore-parent-death", "no-new-privs",
         "preserve-status", "quiet", "verbose", "version"]


def usage_error(args, first_line):
    """Runs supervise with args, then COMMAND (which must not run): exit
    status 125, nothing on stdout, and first_line first on stderr."""
    d = bb.tmpdir()
    ran = os.path.join(d, "ran")
    r = bb.run(list(args) + ["touch", ran])
    assert r.rc == 125, r
    assert r.out == "", r
    assert r.err.split("\n", 1)[0] == first_line, r
    assert r.err.endswith("\n"), r
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
    assert r.err.split("\n", 1)[0] == \
        "supervise: option '--timeout' requires an argument", r
