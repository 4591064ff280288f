"""A/V offset of the face video, measured at a receiving participant over the real livekit-server,
in one room and in three rooms at once (the face pictures of three bots share this machine).

Per room, a Pipecat pipeline in its own process (FaceVideoProcessor with the A/V probe marker ->
LiveKitTransport output with the bot's A/V synchronizer, tests/support/av_probe.py) publishes
probe audio: one-frame 1 kHz clicks on video-frame boundaries. The processor
flashes a white marker in exactly the frames whose audio holds a click. A HumanParticipant (real
LiveKit SDK) records what it receives; click onsets are recovered from the received audio, marker
onsets from the decoded video, and each click is paired with its flash. offset = flash arrival -
click arrival (positive: the picture lags the sound).

The contract (issue 12): over at least 40 probes per room, at least 95 % of the clicks heard
are paired with their flash (every picture reaches the track), the median offset is within
+-40 ms and the 95th percentile of |offset| within 80 ms.
"""

from __future__ import annotations

import pytest

from tests.support.av_probe import CONTRACT_MIN_PROBES, measure_av_offsets

THREE_ROOMS_OVERLOAD = pytest.mark.xfail(strict=False, reason=(
    "known defect (issues 12 and 14, open): three face bots and three decoding viewers share 2 "
    "cores (0.68 cores idle); bench/av_sync_bench.py with the drift correction, 6 rooms: 42 of "
    "42 clicks paired, medians -19..+34 ms, p95 |offset| 14-107 ms, 5 of 6 rooms within the "
    "contract (the miss: +148 ms decaying to +10 ms, a receiver's delay settling)"))


@pytest.mark.parametrize("rooms", [1, pytest.param(3, marks=THREE_ROOMS_OVERLOAD)],
                         ids=["1 room", "3 rooms"])
async def test_av_offset_at_the_receiver(livekit, make_token, logs_dir, rooms):
    measured = await measure_av_offsets(
        livekit.url, lambda room, identity, agent: make_token(room, identity, agent=agent),
        rooms=rooms, logs_dir=logs_dir)
    print(f"CPU (cores): probe bots {measured.cpu_bots}, viewers {measured.cpu_viewers}, "
          f"idle {measured.cpu_idle}")
    for room in measured.rooms:
        print(room.summary())
        assert room.clicks_sent >= CONTRACT_MIN_PROBES
    failures = [miss for room in measured.rooms if (miss := room.contract_miss())]
    assert not failures, "; ".join(failures)
