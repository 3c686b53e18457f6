"""Message details: one line per message, whatever the user gave."""
import os
import re
import signal
import time

import bb


def test_control_characters_in_a_quoted_value_stay_on_one_line():
    r = bb.run(["-t", "1\n2\x1b[31m", "true"])
    assert r.rc == 125, r
    assert r.err == "supervise: invalid duration '1?2?[31m'\n", r


def test_external_sigalrm_says_who_and_when():
    # COMMAND sends SIGALRM to the supervisor (its parent) after ~0.2 s.
    r = bb.run(["--", "sh", "-c", "sleep 0.2; kill -ALRM $PPID; sleep 100"])
    assert r.rc == 124, r
    m = re.fullmatch(r"supervise: timed out by SIGALRM from pid (\d+) after "
                     r"([0-9.]+)(ms|s); stopping the run with SIGTERM\n", r.err)
    assert m, r
    after = float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
    assert after >= 0.2, r
