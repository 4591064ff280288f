"""A/V offset of the face video, measured at a receiving participant over the real livekit-server.

A Pipecat pipeline (FaceVideoProcessor in probe mode -> LiveKitTransport output) publishes probe
audio: one-frame 1 kHz clicks on video-frame boundaries. The processor flashes a white marker in
exactly the frames whose audio holds a click. A HumanParticipant (real LiveKit SDK) records what
it receives; click onsets are recovered from the received audio, marker onsets from the decoded
video, and each click is paired with its flash. offset = flash arrival - click arrival (positive:
the picture lags the sound). The aim is within +-40 ms; the test fails beyond +-100 ms.
"""

from __future__ import annotations

import asyncio

import numpy as np
from loguru import logger
from pipecat.frames.frames import TTSAudioRawFrame

from processors.face.av_marker import probe_signal
from tests.support.av_probe import (
    FAIL_BEYOND_S,
    FPS,
    MIN_PAIRED,
    SR,
    av_offsets,
    probe_face_bot,
    wait_for_tracks,
)
from tests.support.human import HumanParticipant

PROBE_SECONDS = 8.0
CLICK_PERIOD_S = 0.52


async def test_av_offset_at_the_receiver(livekit, make_token):
    room = "face-av-sync"
    bot_identity = "face-bot"
    bot_token = make_token(room, bot_identity, agent=True)
    async with HumanParticipant.connect(livekit.url, make_token(room, "viewer")) as viewer, \
            probe_face_bot(livekit.url, bot_token, room) as bot:
        await wait_for_tracks(viewer, bot_identity, 20)
        await asyncio.sleep(1.0)  # idle frames first, as between turns
        audio, clicks = probe_signal(PROBE_SECONDS, SR, FPS, period_s=CLICK_PERIOD_S)
        step = SR // 50  # 20 ms TTS chunks, sent at once like a fast TTS
        await bot.queue_frames(
            [
                TTSAudioRawFrame(
                    audio=audio[i : i + step].tobytes(), sample_rate=SR, num_channels=1
                )
                for i in range(0, len(audio), step)
            ]
        )
        await asyncio.sleep(PROBE_SECONDS + 1.5)

    heard, offsets = av_offsets(viewer, bot_identity)
    ms = np.array(offsets) * 1000
    logger.info(
        f"A/V offset over {len(ms)}/{len(clicks)} clicks: "
        f"median {np.median(ms):+.0f} ms, mean {ms.mean():+.0f}, min {ms.min():+.0f}, "
        f"max {ms.max():+.0f} (heard {len(heard)})"
    )
    assert len(heard) >= 0.8 * len(clicks), f"only {len(heard)} of {len(clicks)} clicks heard"
    assert len(offsets) >= MIN_PAIRED * len(clicks), (
        f"only {len(offsets)} clicks paired with a flash"
    )
    assert abs(np.median(ms)) <= FAIL_BEYOND_S * 1000, f"A/V offset {np.median(ms):+.0f} ms"
