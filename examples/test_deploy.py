# test_deploy.py
import json
import os
import subprocess

import pytest


def deploy(app, status_file):
    """Deploys and tests APP under supervise; returns (status, record, output)."""
    proc = subprocess.run(
        ["supervise", "-t", "20m", "-k", "30s",
         "--parent-pid=%d" % os.getpid(),
         "-l", "/run/lock/deploy-%s" % app, "-w", "10m",
         "-T", "/srv/ci/teardown.sh %s" % app, "--teardown-on=always",
         "--status-file=%s" % status_file,
         "--", "./ci/deploy-and-test.sh", app],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if not os.path.exists(status_file):  # bad usage, or a refused FILE
        pytest.fail(proc.stdout)
    with open(status_file) as f:
        return proc.returncode, json.load(f), proc.stdout


@pytest.mark.parametrize("app", ["shop", "blog"])
def test_deploy(app, tmp_path):
    status, record, output = deploy(app, tmp_path / "status.json")
    assert record["exit_status"] == status
    if record["reason"] == "lock-timeout":
        pytest.skip("another run kept the lock for %s" % app)
    assert record["reason"] == "exit", output  # not "timeout" or "cancel"
    assert record["command_status"] == {"exited": 0}, output
    teardown = record["teardown"]
    assert teardown["exit"] == 0 and not teardown["timed_out"], output
