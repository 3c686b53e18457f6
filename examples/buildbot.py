from buildbot.plugins import steps

# A list command: supervise is the worker's child.
factory.addStep(steps.ShellCommand(
    name="deploy",
    command=["supervise", "-t", "30m", "-k", "1m",
             "-T", "/srv/ci/teardown.sh staging",
             "--teardown-log=/var/log/ci/staging-teardown.log",
             "--", "./ci/deploy.sh", "staging"]))

# A string command runs under /bin/sh -c: exec supervise ...
factory.addStep(steps.ShellCommand(
    name="deploy",
    command="exec supervise -t 30m -k 1m -- ./ci/deploy.sh staging"))

# ... or, when more follows, name the worker (the shell's parent).
factory.addStep(steps.ShellCommand(
    name="deploy-and-check",
    command="supervise --parent-pid=$PPID -t 30m -k 1m -- ./ci/deploy.sh staging && ./ci/check.sh"))
