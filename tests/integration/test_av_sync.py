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

import asyncio
import contextlib

import numpy as np
import pytest

from processors.face.av_marker import probe_signal
from tests.support.av_probe import FPS, SR, av_offsets, wait_for_tracks
from tests.support.bot_process import LoggedProcess
from tests.support.human import HumanParticipant

# 42 clicks, one every 10 video frames.
PROBE_SECONDS = 17.0
CLICK_PERIOD_S = 0.40
# Each probe bot is idle this long first, per room started at once (the processes start, the
# viewers subscribe, idle pictures flow), then speaks.
IDLE_FIRST_PER_ROOM_S = 5.0
MIN_PROBES = 40
MIN_PAIRED = 0.95
MEDIAN_WITHIN_S = 0.040
P95_WITHIN_S = 0.080


THREE_ROOMS_OVERLOAD = pytest.mark.xfail(strict=False, reason=(
    "known defect (issues 12 and 14, open): three face bots and three decoding viewers saturate "
    "2 cores (0 % idle); measured per room: 33-38 of 41-42 clicks paired, medians +2..+107 ms, "
    "p95 |offset| 94-258 ms (before the AVSynchronizer: 15-25 of 42 paired, medians -134..+86, "
    "p95 ~290)"))


@pytest.mark.parametrize("rooms", [1, pytest.param(3, marks=THREE_ROOMS_OVERLOAD)],
                         ids=["1 room", "3 rooms"])
async def test_av_offset_at_the_receiver(livekit, make_token, logs_dir, rooms):
    _, clicks = probe_signal(PROBE_SECONDS, SR, FPS, period_s=CLICK_PERIOD_S)
    assert len(clicks) >= MIN_PROBES
    names = [f"face-av-sync-{rooms}-{i}" for i in range(rooms)]
    idle_first_s = 3.0 + IDLE_FIRST_PER_ROOM_S * rooms
    async with contextlib.AsyncExitStack() as stack:
        viewers = [await stack.enter_async_context(
            HumanParticipant.connect(livekit.url, make_token(room, f"{room}-viewer")))
            for room in names]
        # Each room's bot in its own process, as the worker runs each room's job.
        bots = [stack.enter_context(LoggedProcess(
            args=["-m", "tests.support.av_probe", livekit.url,
                  make_token(room, f"{room}-bot", agent=True), room, str(PROBE_SECONDS),
                  str(CLICK_PERIOD_S), str(idle_first_s)],
            env={}, log_path=logs_dir / f"{room}.log")) for room in names]
        for viewer, room in zip(viewers, names, strict=True):
            await wait_for_tracks(viewer, f"{room}-bot", idle_first_s)
        for bot in bots:
            code = await asyncio.to_thread(bot.wait, PROBE_SECONDS + idle_first_s + 20)
            assert code == 0, f"probe bot exited {code}:\n{bot.log()[-3000:]}"

    failures = []
    for viewer, room in zip(viewers, names, strict=True):
        identity = f"{room}-bot"
        heard, offsets = av_offsets(viewer, identity)
        ms = np.array(offsets) * 1000
        shown = sum(1 for _, who, _ in viewer.video if who == identity)
        median = float(np.median(ms)) if len(ms) else float("nan")
        p95 = float(np.percentile(np.abs(ms), 95)) if len(ms) else float("nan")
        print(
            f"{identity}: A/V offset over {len(ms)}/{len(heard)} clicks heard ({len(clicks)} "
            f"sent): median {median:+.0f} ms, p95 |offset| {p95:.0f} ms, "
            f"min {ms.min(initial=0):+.0f}, max {ms.max(initial=0):+.0f}; {shown} video frames"
        )
        if len(heard) < MIN_PROBES:
            failures.append(f"{identity}: only {len(heard)} of {len(clicks)} clicks heard")
        elif len(offsets) < MIN_PAIRED * len(heard):
            failures.append(f"{identity}: only {len(offsets)} of {len(heard)} clicks paired "
                            "with a flash")
        elif abs(median) > MEDIAN_WITHIN_S * 1000 or p95 > P95_WITHIN_S * 1000:
            failures.append(f"{identity}: median {median:+.0f} ms, p95 |offset| {p95:.0f} ms")
    assert not failures, "; ".join(failures)
