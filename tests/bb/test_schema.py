"""The status file's schema (schema/status-v1.schema.json) itself: a valid
draft 2020-12 schema that accepts the documented example and rejects
records that are wrong, so that validating every record the other tests
read (bb.read_status()) cannot pass for want of constraints."""
import json
import os
import re

import bb
from test_status import KEYS, REASONS


def _man_example():
    """The example record of the man page's STATUS FILE section."""
    with open(os.path.join(bb.ROOT, "man", "supervise.1")) as f:
        man = f.read()
    m = re.search(r"^\.Sh STATUS FILE$.*?^\.Ss Example$.*?^\.Bd -literal[^\n]*\n"
                  r"(.*?)^\.Ed$", man, re.M | re.S)
    assert m, "no example in the man page's STATUS FILE section"
    return m.group(1).replace("\\e", "\\")


def _readme_examples():
    """The status records among README.md's JSON examples."""
    with open(os.path.join(bb.ROOT, "README.md")) as f:
        readme = f.read()
    return [json.loads(block)
            for block in re.findall(r"^```json\n(.*?)^```$", readme, re.M | re.S)
            if '"supervise_version"' in block]


def _example():
    return json.loads(_man_example())


def _valid(rec):
    return not bb.status_errors(rec)


def test_schema_is_a_valid_schema():
    """The schema passes its meta-schema (draft 2020-12), pins version 1,
    and lists every field of the record (test_status.KEYS) as required,
    with no other field allowed."""
    with open(bb.STATUS_SCHEMA) as f:
        schema = json.load(f)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"], schema["$id"]
    v = bb.status_validator()        # check_schema() on the way
    v.check_schema(schema)
    assert schema["properties"]["version"]["const"] == 1
    assert set(schema["required"]) == KEYS == set(schema["properties"])
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]["reason"]["enum"]) == REASONS


def test_schema_accepts_the_documented_examples():
    """The example in the man page is a valid record, and so is every one
    in the README."""
    man = json.loads(_man_example())
    assert bb.status_errors(man) == [], bb.status_errors(man)
    for rec in _readme_examples():
        assert bb.status_errors(rec) == [], (bb.status_errors(rec), rec)
    # As the file holds it: one line and a newline.
    assert bb.parse_status((json.dumps(man) + "\n").encode()) == man


def _with(**changes):
    """The example with top-level fields changed (None-valued kwargs are
    JSON null); a key _drop removes that field."""
    rec = _example()
    drop = changes.pop("_drop", None)
    rec.update(changes)
    if drop is not None:
        del rec[drop]
    return rec


def _nested(path, value):
    """The example with one nested field (a list of keys) set, or removed
    when value is _DROP."""
    rec = _example()
    obj = rec
    for k in path[:-1]:
        obj = obj[k]
    if value is _DROP:
        del obj[path[-1]]
    else:
        obj[path[-1]] = value
    return rec


_DROP = object()
_CANCEL = {"reason": "cancel", "signal": "SIGTERM", "exit_status": 143}


def test_schema_accepts_every_legal_shape():
    """Each nullable field null, each alternative of an object, and the
    reasons with what goes with them."""
    lock_timeout = dict(reason="lock-timeout", command_pid=None,
                        command_status=None, stop=None, teardown=None,
                        exit_status=125)
    cases = [
        ("cancel", _with(**_CANCEL, teardown=dict(
            _example()["teardown"], reason="cancel"))),
        ("cancel by a real-time signal", _with(**dict(_CANCEL, signal="SIGRTMIN+3"))),
        ("signal without a name", _with(command_status={"signaled": "signal 32"})),
        ("exited", _with(reason="exit", command_status={"exited": 0},
                         exit_status=0, stop=None)),
        ("exit with leftovers", _with(reason="exit", command_status={"exited": 3},
                                      exit_status=3, stop=dict(
                                          _example()["stop"], leftovers=5))),
        ("parent-death", _with(reason="parent-death", exit_status=129,
                               cause={"process": 4242, "ancestor": True})),
        ("hangup", _with(reason="hangup", exit_status=129,
                         cause={"stream": "stderr"})),
        ("lock-timeout", _with(**lock_timeout)),
        ("exec-failed", _with(reason="exec-failed", command_pid=None,
                              command_status=None, stop=None, exit_status=127)),
        ("error, COMMAND still running", _with(reason="error", command_status=None,
                                               exit_status=125)),
        ("no locks", _with(locks=[])),
        ("containment cgroup", _with(containment="cgroup")),
        ("teardown killed", _with(teardown=dict(
            _example()["teardown"], exit=None, signaled="SIGKILL",
            timed_out=True))),
        ("teardown not started", _with(teardown=dict(
            _example()["teardown"], exit=None, signaled=None))),
        ("integral seconds", _with(duration_s=0)),
        ("dropped bytes", _with(output_dropped_bytes=2 ** 64 - 1)),
    ]

    def check(rec):
        errors = bb.status_errors(rec)
        assert not errors, errors
    bb.check_cases(cases, check)


def test_schema_rejects_malformed_records():
    """A missing key, an unknown key, a wrong type, a value out of its
    range or its enumeration, and fields that contradict the reason."""
    ex = _example()
    cases = [
        ("missing key", _with(_drop="containment")),
        ("missing version", _with(_drop="version")),
        ("unknown key", _with(extra=1)),
        ("other version", _with(version=2)),
        ("version as a string", _with(version="1")),
        ("unknown reason", _with(reason="crashed")),
        ("pid as a string", _with(pid="16357")),
        ("pid 0", _with(pid=0)),
        ("pid a boolean", _with(pid=True)),
        ("negative command_pid", _with(command_pid=-1)),
        ("empty command", _with(command=[])),
        ("command not strings", _with(command=["sh", 3])),
        ("command a string", _with(command="sh -c true")),
        ("time without milliseconds", _with(started_at="2026-11-27T00:09:36Z")),
        ("time not in UTC", _with(ended_at="2026-11-27T00:41:21.974+01:00")),
        ("time month 13", _with(ended_at="2026-13-27T00:41:21.974Z")),
        ("negative duration", _with(duration_s=-0.001)),
        ("duration a string", _with(duration_s="1905.123")),
        ("exit_status 256", _with(exit_status=256)),
        ("exit_status negative", _with(exit_status=-1)),
        ("exit_status null", _with(exit_status=None)),
        ("signal without cancel", _with(signal="SIGTERM")),
        ("cancel without signal", _with(reason="cancel", exit_status=143)),
        ("signal not a name", _with(**dict(_CANCEL, signal="TERM"))),
        ("signal a number", _with(**dict(_CANCEL, signal=15))),
        ("cause without its reason", _with(cause={"stream": "stdout"})),
        ("parent-death without cause", _with(reason="parent-death", exit_status=129)),
        ("parent-death with a stream", _with(reason="parent-death", exit_status=129,
                                             cause={"stream": "stdout"})),
        ("hangup with a process", _with(reason="hangup", exit_status=129,
                                        cause={"process": 1, "ancestor": False})),
        ("unknown stream", _with(reason="hangup", exit_status=129,
                                 cause={"stream": "stdin"})),
        ("cause without ancestor", _with(reason="parent-death", exit_status=129,
                                         cause={"process": 4242})),
        ("command_status both", _with(command_status={"exited": 0,
                                                      "signaled": "SIGKILL"})),
        ("command_status empty", _with(command_status={})),
        ("command_status exited 300", _with(command_status={"exited": 300})),
        ("command_status unknown key", _with(command_status={"stopped": "SIGSTOP"})),
        ("status of what never started", _with(command_pid=None)),
        ("exit without a status", _with(reason="exit", command_status=None,
                                        exit_status=0, stop=None)),
        ("exec-failed with a pid", _with(reason="exec-failed", command_status=None,
                                         stop=None, exit_status=127)),
        ("lock-timeout with a pid", _with(reason="lock-timeout", command_status=None,
                                          stop=None, teardown=None, exit_status=125)),
        ("leftovers without exit", _nested(["stop", "leftovers"], 2)),
        ("stop missing unstoppable", _nested(["stop", "unstoppable"], _DROP)),
        ("stop negative count", _nested(["stop", "processes_signaled"], -1)),
        ("stop escalated as a number", _nested(["stop", "escalated_to_kill"], 1)),
        ("stop signal null", _nested(["stop", "signal"], None)),
        ("stop unknown key", _nested(["stop", "frozen"], False)),
        ("unknown containment", _with(containment="namespace")),
        ("containment null", _with(containment=None)),
        ("teardown exited and killed", _nested(["teardown", "signaled"], "SIGKILL")),
        ("teardown unknown reason", _nested(["teardown", "reason"], "error")),
        ("teardown missing duration", _nested(["teardown", "duration_s"], _DROP)),
        ("teardown timed_out null", _nested(["teardown", "timed_out"], None)),
        ("teardown a boolean", _with(teardown=False)),
        ("locks null", _with(locks=None)),
        ("lock without wait", _with(locks=[{"path": "/lk"}])),
        ("lock with empty path", _with(locks=[{"path": "", "wait_s": 0}])),
        ("lock unknown key", _with(locks=[{"path": "/lk", "wait_s": 0, "fd": 3}])),
        ("lock negative wait", _with(locks=[{"path": "/lk", "wait_s": -1}])),
        ("dropped bytes negative", _with(output_dropped_bytes=-1)),
        ("dropped bytes a fraction", _with(output_dropped_bytes=0.5)),
        ("supervise_version not a version", _with(supervise_version="dev")),
        ("not an object", [ex]),
    ]

    def check(rec):
        assert not _valid(rec), "accepted: %r" % (rec,)
    bb.check_cases(cases, check)


def test_status_parse_is_strict():
    """bb.parse_status() refuses what json.loads() alone would take: more
    than one line, no newline at the end, a duplicate key, NaN, bytes that
    are not UTF-8; and a record the schema rejects."""
    good = json.dumps(_example())
    cases = [
        ("two lines", (good.replace(", ", ",\n", 1) + "\n").encode()),
        ("no newline", good.encode()),
        ("two newlines", (good + "\n\n").encode()),
        ("duplicate key", (good[:-1] + ', "version": 1}\n').encode()),
        ("NaN", good.replace('"duration_s": 1905.123', '"duration_s": NaN')
         .encode() + b"\n"),
        ("not UTF-8", good.replace("staging", "stag\\u00e9").encode()
         .replace(b"\\u00e9", b"\xe9") + b"\n"),
        ("invalid record", json.dumps(_with(version=2)).encode() + b"\n"),
    ]

    def check(data):
        try:
            bb.parse_status(data)
        except (AssertionError, ValueError):
            return
        raise AssertionError("accepted: %r" % data[:80])
    bb.check_cases(cases, check)
    assert bb.parse_status((good + "\n").encode()) == _example()
