"""core_inherit.py DIR SECONDS PROGRAM [ARG]...: execs PROGRAM with a child.

Forks a child (stdio on /dev/null) that writes its pid to DIR/child,
sleeps SECONDS and exits 0; then this process execs PROGRAM (supervise),
which so starts with a child it did not fork.
"""
import os
import sys
import time

d, seconds = sys.argv[1], float(sys.argv[2])
if os.fork() == 0:
    fd = os.open(os.devnull, os.O_RDWR)
    for i in (0, 1, 2):
        os.dup2(fd, i)
    with open(os.path.join(d, "child.tmp"), "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(os.path.join(d, "child.tmp"), os.path.join(d, "child"))
    time.sleep(seconds)
    os._exit(0)
os.execv(sys.argv[3], sys.argv[3:])
