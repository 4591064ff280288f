"""The A/V probe's receiver side (tests/support/av_probe.py): a click is paired with the nearest
flash within the window, a room misses the face's A/V contract by what it lacks, and only the
LiveKit SDK's abort after a finished probe is forgiven."""

from __future__ import annotations

import pytest

from tests.support.av_probe import (
    PAIR_WINDOW_S,
    PROBE_DONE,
    SDK_EXIT_PANIC,
    RoomOffsets,
    aborted_after_probe,
    pair_offsets,
)


def test_each_click_is_paired_with_its_nearest_flash_inside_the_window():
    clicks = [1.0, 2.0, 3.0]
    flashes = [1.02, 1.9, 2.05, 3.0 + PAIR_WINDOW_S + 0.01]
    assert pair_offsets(clicks, flashes) == pytest.approx([0.02, 0.05])
    assert pair_offsets(clicks, []) == []


@pytest.mark.parametrize(("log", "forgiven"), [
    (f"... room left\n{PROBE_DONE}\nthread 'tokio-rt-worker' panicked\n{SDK_EXIT_PANIC}\n", True),
    (f"{PROBE_DONE}\n", False),                                    # exit status != 0, no panic
    (f"{SDK_EXIT_PANIC}\n", False),                                # aborted before the probe ended
    (f"{SDK_EXIT_PANIC}\n{PROBE_DONE}\nTraceback (most recent call last):\n", False),
    ("Traceback (most recent call last):\n", False),
])
def test_only_the_sdk_abort_after_a_finished_probe_is_forgiven(log, forgiven):
    assert aborted_after_probe(log) is forgiven


def _room(heard: int, offsets_ms: list[float]) -> RoomOffsets:
    return RoomOffsets(room="r-bot", clicks_sent=42, clicks_heard=heard, offsets_ms=offsets_ms,
                       video_frames=500)


@pytest.mark.parametrize(("room", "miss"), [
    (_room(42, [0.0] * 40 + [70.0, -70.0]), None),
    (_room(39, [0.0] * 39), "only 39 of 42 clicks heard"),
    (_room(42, [0.0] * 39), "only 39 of 42 clicks paired"),
    (_room(42, [41.0] * 42), "median +41 ms"),
    (_room(42, [0.0] * 38 + [90.0] * 4), "p95 |offset| 90 ms"),
])
def test_a_room_misses_the_contract_by_what_it_lacks(room, miss):
    found = room.contract_miss()
    assert found is None if miss is None else miss in found
