"""Status files: atomic writes, tolerant reads."""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailroom.run.statefiles import (
    StatusFile,
    iso,
    read_status,
    seconds,
    stamp,
    stamped,
    utc_stamp,
    write_status,
)


def test_written_status_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "worker.json"
    write_status(path, {"pid": 12, "counters": {"passes": 3}, "last": None})
    assert read_status(path) == {"pid": 12, "counters": {"passes": 3}, "last": None}


def test_a_write_replaces_the_whole_document(tmp_path: Path) -> None:
    path = tmp_path / "worker.json"
    write_status(path, {"a": 1, "b": 2})
    write_status(path, {"a": 3})
    assert read_status(path) == {"a": 3}


def test_a_write_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "listener.json"
    for n in range(3):
        write_status(path, {"n": n})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["listener.json"]


def test_a_write_goes_through_rename_so_readers_never_see_half(tmp_path: Path) -> None:
    path = tmp_path / "worker.json"
    write_status(path, {"n": 1})
    inode_before = os.stat(path).st_ino
    write_status(path, {"n": 2})
    # A new inode: the old file was replaced whole, not rewritten in place.
    assert os.stat(path).st_ino != inode_before


def test_an_unserialisable_document_leaves_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "worker.json"
    write_status(path, {"n": 1})
    with pytest.raises(TypeError):
        write_status(path, {"n": object()})
    assert read_status(path) == {"n": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["worker.json"]


def test_a_missing_file_reads_as_none(tmp_path: Path) -> None:
    assert read_status(tmp_path / "nope.json") is None


@pytest.mark.parametrize(
    "content",
    [b"", b'{"pid": 1, "heart', b"\xff\xfe\x00", b"[1, 2]", b"null", b"42"],
)
def test_a_torn_or_foreign_file_reads_as_none(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "worker.json"
    path.write_bytes(content)
    assert read_status(path) is None


def test_a_directory_in_place_of_the_file_reads_as_none(tmp_path: Path) -> None:
    (tmp_path / "worker.json").mkdir()
    assert read_status(tmp_path / "worker.json") is None


def test_timestamps_round_trip_as_iso_utc() -> None:
    text = iso(1_700_000_000.25)
    assert text == "2023-11-14T22:13:20.250000+00:00"
    doc = stamp("started_at", 1_700_000_000.25)
    assert doc["started_at"] == text
    assert stamped(doc, "started_at") == 1_700_000_000.25


@pytest.mark.parametrize(
    "value", [None, "yesterday", "", "2024-05-01T12:00:00+00:00", True, float("nan"), float("inf")]
)
def test_non_timestamps_parse_as_none(value: object) -> None:
    assert seconds(value) is None
    assert stamped({"t_epoch": value}, "t") is None


def sample_timestamps() -> list[float]:
    rng = random.Random(8601)
    fixed = [0.0, 0.5, 951782400.0, 1709251199.999999, 1_800_000_000.0000005, 4102444800.25]
    return (
        fixed
        + [rng.uniform(0, 4e10) for _ in range(2000)]
        + [rng.randint(0, 2**33) + rng.randint(0, 999_999) / 1e6 for _ in range(2000)]
    )


def test_every_time_read_back_is_the_time_written() -> None:
    for ts in sample_timestamps():
        assert stamped(json.loads(json.dumps(stamp("t", ts))), "t") == ts, ts


def test_log_stamps_match_datetimes_rounding() -> None:
    for ts in sample_timestamps():
        expected = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert utc_stamp(ts) == expected, ts


def test_a_status_file_update_writes_the_fields_and_a_heartbeat(tmp_path: Path) -> None:
    status = StatusFile(tmp_path / "worker.json", {"pid": 7, "n": 0}, wall=lambda: 1_700_000_000.0)
    assert status.update(n=1)
    assert read_status(tmp_path / "worker.json") == {
        "pid": 7,
        "n": 1,
        "heartbeat": 1_700_000_000.0,
    }


def test_a_beat_refreshes_only_the_heartbeat(tmp_path: Path) -> None:
    now = [100.0]
    status = StatusFile(tmp_path / "w.json", {"n": 1}, wall=lambda: now[0])
    status.update()
    now[0] = 200.0
    assert status.beat()
    doc = read_status(tmp_path / "w.json")
    assert doc is not None
    assert doc["n"] == 1
    assert seconds(doc["heartbeat"]) == 200.0


def test_a_status_file_that_cannot_be_written_does_not_raise(tmp_path: Path) -> None:
    status = StatusFile(tmp_path / "gone" / "worker.json", {"n": 1})
    assert not status.update(n=2)
    assert status.snapshot()["n"] == 2


def test_a_snapshot_is_a_copy(tmp_path: Path) -> None:
    status = StatusFile(tmp_path / "w.json", {"counters": {"passes": 1}})
    status.snapshot()["counters"]["passes"] = 99
    assert status.snapshot()["counters"] == {"passes": 1}
