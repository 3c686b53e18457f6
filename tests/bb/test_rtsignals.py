"""Real-time signal names, as SIGNALS in the manual describes them: counted
from the C library's SIGRTMIN, 34 with glibc and 35 with musl (make
static), while SIGRTMAX is 64 with both.  The same tests pass against
either build (make check, make check-static)."""
import bb


def killed_by(stop):
    """Times out `sleep` with stop signal stop; returns the number of the
    signal that killed it and what supervise said."""
    r = bb.run(["--preserve-status", "-t", "0.1", "-k", "5", "-s", stop,
                "--", "sleep", "30"])
    assert 128 < r.rc < 128 + 65, r
    return r.rc - 128, r.err


def test_rtmin_names_count_from_the_c_library_sigrtmin():
    rtmin, err = killed_by("RTMIN")
    assert rtmin in (34, 35), (rtmin, err)
    assert err == ("supervise: timed out after 100ms; stopping the run "
                   "with SIGRTMIN\n"), err
    sig, err = killed_by("RTMIN+2")
    assert sig == rtmin + 2, (sig, rtmin, err)
    assert err.endswith("stopping the run with SIGRTMIN+2\n"), err
    # A number is that number, named from the same SIGRTMIN.
    sig, err = killed_by(str(rtmin + 2))
    assert sig == rtmin + 2 and err.endswith("with SIGRTMIN+2\n"), (sig, err)


def test_rtmax_names_are_the_same_numbers_with_either_library():
    sig, err = killed_by("RTMAX")
    assert sig == 64, (sig, err)
    sig, err = killed_by("RTMAX-1")
    assert sig == 63, (sig, err)


def test_signals_below_sigrtmin_have_no_name():
    rtmin, _ = killed_by("RTMIN")
    for n in range(32, rtmin):
        sig, err = killed_by(str(n))
        assert sig == n, (n, sig, err)
        assert err.endswith("stopping the run with signal %d\n" % n), err
