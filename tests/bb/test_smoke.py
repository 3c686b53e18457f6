import bb


def test_exit_status_passes_through():
    for code in (0, 1, 2, 127, 255):
        r = bb.run(["--", "sh", "-c", "exit %d" % code])
        assert r.rc == code, r
        assert r.err == "", r
