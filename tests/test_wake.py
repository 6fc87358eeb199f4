"""The wake channel: a real Unix datagram socket in a short temp directory."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailroom.errors import ConfigError
from mailroom.service.wake import Wake, WakeReceiver, WakeSender, decode_wake, encode_wake


@pytest.fixture
def sock_path() -> Iterator[Path]:
    # Short on purpose: AF_UNIX paths are limited to 107 bytes.
    with tempfile.TemporaryDirectory(prefix="mrw", dir="/tmp") as d:
        yield Path(d) / "wake.sock"


def test_a_wake_survives_encoding() -> None:
    w = Wake(changed={"Email": "s42", "Mailbox": "m7"}, reason="state")
    assert decode_wake(encode_wake(w)) == w


def test_encoded_wake_is_plain_json() -> None:
    data = encode_wake(Wake(changed={"Email": "s1"}, reason="connect"))
    assert data == b'{"changed": {"Email": "s1"}, "reason": "connect"}'


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'{"changed": {}, "reason": "other"}',
        b'{"changed": [], "reason": "state"}',
        b'{"changed": {"Email": 3}, "reason": "state"}',
        b'{"reason": "state"}',
    ],
)
def test_malformed_datagrams_decode_to_none(data: bytes) -> None:
    assert decode_wake(data) is None


def test_sent_wakes_are_received_in_order(sock_path: Path) -> None:
    receiver = WakeReceiver(sock_path)
    sender = WakeSender(sock_path)
    try:
        first = Wake(changed={"Email": "a"}, reason="state")
        second = Wake(changed={}, reason="connect")
        assert sender.send(first)
        assert sender.send(second)
        assert receiver.wait(5.0) == [first, second]
        assert receiver.drain() == []
        assert sender.dropped == 0
    finally:
        sender.close()
        receiver.close()


def test_wait_times_out_empty_when_nothing_arrives(sock_path: Path) -> None:
    receiver = WakeReceiver(sock_path)
    try:
        assert receiver.wait(0.0) == []
    finally:
        receiver.close()


def test_send_without_a_worker_is_dropped_and_counted(sock_path: Path) -> None:
    sender = WakeSender(sock_path)
    try:
        assert not sender.send(Wake(changed={"Email": "a"}, reason="state"))
        assert not sender.send(Wake(changed={"Email": "b"}, reason="state"))
        assert sender.dropped == 2
    finally:
        sender.close()


def test_send_to_a_dead_socket_file_is_dropped(sock_path: Path) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead.bind(str(sock_path))
    dead.close()  # the file stays, nobody listens: connection refused
    sender = WakeSender(sock_path)
    try:
        assert not sender.send(Wake(changed={}, reason="connect"))
        assert sender.dropped == 1
    finally:
        sender.close()


def test_send_never_blocks_when_the_worker_buffer_is_full(sock_path: Path) -> None:
    receiver = WakeReceiver(sock_path)
    sender = WakeSender(sock_path)
    try:
        w = Wake(changed={"Email": "x" * 1000}, reason="state")
        results = [sender.send(w) for _ in range(5000)]
        assert results[0]
        assert not all(results)
        assert sender.dropped == results.count(False)
        assert len(receiver.drain()) == results.count(True)
    finally:
        sender.close()
        receiver.close()


def test_receiver_replaces_a_stale_socket(sock_path: Path) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(sock_path))
    stale.close()
    receiver = WakeReceiver(sock_path)
    sender = WakeSender(sock_path)
    try:
        assert sender.send(Wake(changed={"Email": "a"}, reason="state"))
        assert len(receiver.wait(5.0)) == 1
    finally:
        sender.close()
        receiver.close()


def test_receiver_leaves_a_regular_file_alone(sock_path: Path) -> None:
    sock_path.write_text("mine")
    with pytest.raises(ConfigError, match="is not a socket"):
        WakeReceiver(sock_path)
    assert sock_path.read_text() == "mine"


def test_malformed_datagrams_are_ignored(sock_path: Path) -> None:
    receiver = WakeReceiver(sock_path)
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        raw.sendto(b"garbage", str(sock_path))
        good = Wake(changed={"Email": "b"}, reason="state")
        raw.sendto(encode_wake(good), str(sock_path))
        assert receiver.wait(5.0) == [good]
    finally:
        raw.close()
        receiver.close()


def test_interrupt_ends_a_wait_early_with_no_wakes(sock_path: Path) -> None:
    receiver = WakeReceiver(sock_path)
    try:
        receiver.interrupt()
        # A 60 s wait that returns at once: the interrupt made the socket readable.
        assert receiver.wait(60.0) == []
    finally:
        receiver.close()


def test_close_removes_the_socket_file(sock_path: Path) -> None:
    receiver = WakeReceiver(sock_path)
    assert sock_path.exists()
    receiver.close()
    assert not sock_path.exists()


def test_a_socket_path_too_long_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="MAILROOM_STATE_DIR"):
        WakeReceiver(Path("/tmp/" + "d" * 120) / "wake.sock")
