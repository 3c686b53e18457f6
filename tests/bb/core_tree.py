"""core_tree.py DIR [EXIT_CODE]: a process tree for supervise's tests.

This process (COMMAND) writes its pid to DIR/cmd, then builds:
  DIR/bg      a background child, in COMMAND's process group, that sleeps;
  DIR/sess    a grandchild (the background child's child) that called
              setsid() and sleeps;
  DIR/daemon  a double-forked daemon: setsid(), its parent exited, stdio
              on /dev/null; it sleeps.
Each writes its own pid.  Once all are in place COMMAND writes DIR/ready,
then sleeps, or exits with EXIT_CODE when given (leaving the tree behind).
"""
import os
import sys
import time

d = sys.argv[1]


def put(name, text):
    tmp = os.path.join(d, name + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, os.path.join(d, name))


def wait_file(name):
    while not os.path.exists(os.path.join(d, name)):
        time.sleep(0.01)


def sleep_forever():
    while True:
        time.sleep(1000)


put("cmd", "%d\n" % os.getpid())

if os.fork() == 0:
    put("bg", "%d\n" % os.getpid())
    if os.fork() == 0:
        os.setsid()
        put("sess", "%d\n" % os.getpid())
        sleep_forever()
    sleep_forever()

middle = os.fork()
if middle == 0:
    if os.fork() == 0:
        os.setsid()
        fd = os.open(os.devnull, os.O_RDWR)
        for i in (0, 1, 2):
            os.dup2(fd, i)
        put("daemon", "%d\n" % os.getpid())
        sleep_forever()
    os._exit(0)
os.waitpid(middle, 0)

for name in ("bg", "sess", "daemon"):
    wait_file(name)
put("ready", "\n")
if len(sys.argv) > 2:
    sys.exit(int(sys.argv[2]))
sleep_forever()
