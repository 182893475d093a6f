"""The pieces of the local provisioner that need no node: backoff and crash window
arithmetic, log rotation and tails, the state directory's records, spec validation.
(Real node processes: tests/integration/test_local_provisioner.py.)"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from consortia.control.provision import NodeSpec, NodeStatus, SupervisionPolicy, _logs
from consortia.control.provision._records import Record, Records, Wanted
from consortia.control.provision.policy import CrashHistory, backoff_delay, nominal_delay
from consortia.types.errors import ConfigError


def _spec(tmp_path: Path, node_id: str = "nd-1") -> NodeSpec:
    return NodeSpec(node_id, tmp_path / "node.toml", tmp_path / "data", tmp_path / "node.log",
                    "http://127.0.0.1:7050")


def test_nominal_backoff_doubles_up_to_the_cap() -> None:
    p = SupervisionPolicy(backoff_base=1.0, backoff_cap=30.0)
    assert [nominal_delay(p, n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert nominal_delay(p, 10_000) == 30.0               # no overflow far along


def test_jittered_backoff_stays_within_half_and_all_of_the_nominal_delay() -> None:
    p = SupervisionPolicy(backoff_base=0.5, backoff_cap=8.0)
    rng = random.Random(7)
    for n in range(1, 10):
        d = nominal_delay(p, n)
        delays = [backoff_delay(p, n, rng) for _ in range(200)]
        assert all(d / 2 <= x <= d for x in delays)
        assert max(delays) - min(delays) > d / 4          # actually spread out


def test_the_crash_window_forgets_old_crashes() -> None:
    h = CrashHistory(window=10.0)
    assert [h.record(t) for t in (0.0, 1.0, 2.0)] == [1, 2, 3]
    assert h.count(10.5) == 2                            # the crash at 0 has aged out
    assert h.record(30.0) == 1
    h.clear()
    assert h.count(30.0) == 0


@pytest.mark.parametrize("field, value", [
    ("poll_interval", 0), ("crash_limit", 0), ("stop_grace", -1.0), ("backoff_cap", 0.5),
    ("log_max_bytes", 100),
])
def test_a_policy_refuses_nonsense(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        SupervisionPolicy(**{field: value})


@pytest.mark.parametrize("node_id", ["", "../etc", "a/b", ".hidden", "x" * 65, "sp ace"])
def test_node_ids_are_safe_file_names(tmp_path: Path, node_id: str) -> None:
    with pytest.raises(ValueError, match="node id"):
        _spec(tmp_path, node_id)


def test_an_api_url_is_http(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="api url"):
        NodeSpec("n", tmp_path, tmp_path, tmp_path, "127.0.0.1:7050")


def test_a_closed_log_is_rotated_by_renaming(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    for generation in range(5):
        log.write_bytes(str(generation).encode() * 2000)
        assert _logs.rotate_closed(log, max_bytes=1024, backups=3)
        assert not log.exists()
    assert [(tmp_path / f"node.log.{i}").read_bytes()[:1] for i in (1, 2, 3)] == [
        b"4", b"3", b"2"]
    assert not (tmp_path / "node.log.4").exists()
    log.write_bytes(b"small")
    assert not _logs.rotate_closed(log, max_bytes=1024, backups=3)


def test_an_open_log_is_copied_and_truncated_under_its_writer(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    fd, offset = _logs.open_for_child(log, "starting nd-1 (created)")
    try:
        assert offset == log.stat().st_size
        os.write(fd, b"line\n" * 300)                   # the child's output
        assert _logs.rotate_open(log, max_bytes=1024, backups=2)
        os.write(fd, b"after rotation\n")               # O_APPEND: lands at the new end
    finally:
        os.close(fd)
    assert log.read_bytes() == b"after rotation\n"      # no hole of NULs before it
    rotated = (tmp_path / "node.log.1").read_text()
    assert rotated.startswith("--- ") and rotated.count("line\n") == 300
    # The run's offset now lies past the end: its tail is read from the start.
    assert _logs.tail(log, offset, lines=5) == ["after rotation"]


def test_the_tail_is_the_last_lines_of_this_run(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    log.write_text("earlier run\n")
    fd, offset = _logs.open_for_child(log, "restart 1 after a crash")
    with os.fdopen(fd, "w") as f:
        f.write("".join(f"line {i}\n" for i in range(50)) + "\n   \n")
    assert _logs.tail(log, offset, lines=3) == ["line 47", "line 48", "line 49"]
    assert _logs.tail(tmp_path / "missing.log", 0, lines=3) == []
    fd, offset = _logs.open_for_child(log, "restart 2 after a crash")
    os.close(fd)
    assert _logs.tail(log, offset, lines=3) == []       # it wrote nothing


def test_records_round_trip_and_a_bad_one_is_reported(tmp_path: Path) -> None:
    records = Records(tmp_path / "state")
    assert records.load_all() == []
    rec = Record(_spec(tmp_path), Wanted.RUNNING, NodeStatus.AVAILABLE, None, 2, 1.5)
    records.save(rec)
    gone = Record(_spec(tmp_path, "nd-2"), Wanted.DELETED, NodeStatus.DELETING, None, 0, 2.0,
                  remove_data=True)
    records.save(gone)
    assert records.load_all() == [rec, gone]
    records.remove("nd-2")
    assert records.load_all() == [rec]

    path = records.node_dir("nd-1") / "record.json"
    path.write_text(path.read_text().replace('"AVAILABLE"', '"SLEEPING"'))
    with pytest.raises(ConfigError, match="unreadable"):
        records.load_all()
    path.write_text(path.read_text().replace('"SLEEPING"', '"AVAILABLE"')
                    .replace('"version": 1', '"version": 9'))
    with pytest.raises(ConfigError, match="version 9"):
        records.load_all()


def test_records_keep_the_resource_class_and_read_older_ones_as_small(tmp_path: Path) -> None:
    records = Records(tmp_path)
    spec = NodeSpec("nd-2", tmp_path / "node.toml", tmp_path / "data", tmp_path / "node.log",
                    "http://127.0.0.1:7050", "large")
    records.save(Record(spec, Wanted.RUNNING, NodeStatus.CREATING, None, 0, 1.0))
    (loaded,) = records.load_all()
    assert loaded.spec == spec
    path = records.node_dir("nd-2") / "record.json"
    doc = json.loads(path.read_text())
    del doc["spec"]["resource_class"]                  # as written before the field existed
    path.write_text(json.dumps(doc))
    (loaded,) = records.load_all()
    assert loaded.spec.resource_class == "small"
    with pytest.raises(ValueError, match="resource class"):
        NodeSpec("nd-3", tmp_path, tmp_path, tmp_path, "http://h:1", "huge")
