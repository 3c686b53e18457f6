#!/usr/bin/env python3
"""Black-box test runner for supervise.

Runs every function named test_* in tests/bb/test_*.py, each in a forked
process of its own that is a child subreaper: whatever the run under test
leaves behind is reparented to it, so after each test the runner checks that
no process is left (and fails the test if one is).

Usage: tests/blackbox.py [-j JOBS] [-k SUBSTRING] [-v]
A test skips by raising bb.Skip("reason"); the reason is printed.
Prints one line per test and a closing line "blackbox: N passed, N failed,
N skipped".  Exit status 0 only when nothing failed.
"""
import argparse
import importlib.util
import os
import select
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "bb"))
import bb  # noqa: E402

DEFAULT_TIME_LIMIT = 120


def discover(pattern):
    tests = []
    for name in sorted(os.listdir(os.path.join(HERE, "bb"))):
        if not (name.startswith("test_") and name.endswith(".py")):
            continue
        path = os.path.join(HERE, "bb", name)
        spec = importlib.util.spec_from_file_location(name[:-3], path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for attr in sorted(vars(mod)):
            fn = getattr(mod, attr)
            if attr.startswith("test_") and callable(fn):
                full = "%s.%s" % (name[:-3], attr)
                if pattern and not any(p in full for p in pattern):
                    continue
                tests.append((full, fn))
    return tests


def run_in_child(fn, wfd):
    """Body of the forked test process; never returns."""
    code, msg = 1, ""
    try:
        os.setpgid(0, 0)
        bb.set_subreaper()
        bb.reset_signals()
        fn()
        left = bb.leftovers(timeout=10)
        if left:
            code, msg = 1, "processes left behind: %s" % left
        else:
            code = 0
    except bb.Skip as e:
        code, msg = 77, str(e)
    except BaseException:
        code, msg = 1, traceback.format_exc()
    finally:
        bb.kill_descendants()
        bb.remove_tmpdirs()
    try:
        os.write(wfd, msg.encode(errors="replace")[-60000:])
    except OSError:
        pass
    os._exit(code)


class Job:
    def __init__(self, name, fn, limit):
        self.name, self.start = name, time.monotonic()
        self.limit = getattr(fn, "time_limit", limit)
        r, w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(r)
            run_in_child(fn, w)
        os.close(w)
        self.rfd, self.out = r, b""

    def poll(self):
        while select.select([self.rfd], [], [], 0)[0]:
            data = os.read(self.rfd, 65536)
            if not data:
                break
            self.out += data
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            if time.monotonic() - self.start > self.limit:
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except OSError:
                    pass
                os.waitpid(self.pid, 0)
                self.finish()
                return 1, "time limit of %ds exceeded" % self.limit
            return None
        self.finish()
        if os.WIFEXITED(status):
            return os.WEXITSTATUS(status), self.out.decode(errors="replace")
        return 1, "test process died: %s" % status

    def finish(self):
        while True:
            data = os.read(self.rfd, 65536)
            if not data:
                break
            self.out += data
        os.close(self.rfd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("-k", action="append", default=[], help="run tests whose name contains this")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--time-limit", type=int, default=DEFAULT_TIME_LIMIT)
    args = ap.parse_args()
    if not os.access(bb.SUPERVISE, os.X_OK):
        print("blackbox: %s is not built" % bb.SUPERVISE)
        return 2
    # Every status file a test reads is validated against the schema: no
    # validator is a failure of the whole suite, not a skip.
    try:
        bb.status_validator()
    except AssertionError as e:
        print("blackbox: %s" % e)
        return 2
    tests = discover(args.k)
    queue, running = list(tests), []
    passed = failed = skipped = 0
    failures = []
    t0 = time.monotonic()
    while queue or running:
        while queue and len(running) < max(1, args.jobs):
            name, fn = queue.pop(0)
            running.append(Job(name, fn, args.time_limit))
        time.sleep(0.01)
        for job in list(running):
            res = job.poll()
            if res is None:
                continue
            running.remove(job)
            code, msg = res
            dt = time.monotonic() - job.start
            if code == 0:
                passed += 1
                print("PASS %s (%.1fs)" % (job.name, dt), flush=True)
            elif code == 77:
                skipped += 1
                print("SKIP %s: %s" % (job.name, msg.strip()), flush=True)
            else:
                failed += 1
                failures.append(job.name)
                print("FAIL %s (%.1fs)\n%s" % (job.name, dt, msg.rstrip()), flush=True)
    print("blackbox: ran %d tests in %.1fs" % (len(tests), time.monotonic() - t0))
    if failures:
        print("blackbox: failed: %s" % " ".join(failures))
    print("blackbox: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    if not tests:
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
