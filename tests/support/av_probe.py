"""The A/V probe a test reads at a receiving participant: a face processor in probe mode
publishing through Pipecat's LiveKitTransport (it flashes a white marker in exactly the video
frames whose audio holds a 1 kHz click), and the receiver's side: click onsets from the audio,
flash onsets from the video, and each click paired with its flash (offset = flash arrival -
click arrival; positive: the picture lags the sound)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Sequence

import numpy as np
from pipecat.frames.frames import EndFrame, TTSAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.livekit.transport import LiveKitParams, LiveKitTransport
from pipecat.workers.runner import WorkerRunner

from processors.face.av_marker import AVSyncMarker, probe_marker_on, probe_signal
from processors.face.video import FaceVideoProcessor
from processors.livekit_transport_adapter import PicturesInStep, keep_video_framerate
from tests.support.human import HumanParticipant

SR = 24000
FPS = 25
# The bounds of the whole-bot probes (a GPT-SoVITS or SadTalker room, where the voice's timing
# and a render-ahead engine come in too); tests/integration/test_av_sync.py holds the face's own
# contract (median +-40 ms, p95 80 ms, 95 % paired).
FAIL_BEYOND_S = 0.100
# A click starts where the received audio first exceeds this after at least QUIET_S of quiet.
CLICK_THRESHOLD = 0.15 * 32767
QUIET_S = 0.2
PAIR_WINDOW_S = 0.3
# The A/V queue as the bot runs it (BOT_AUDIO_OUT_QUEUE_MS): LiveKit's audio source queue, the
# AVSynchronizer's video queue and how far ahead the face renders.
AUDIO_OUT_QUEUE_MS = 200
# The video track as the bot publishes it (BOT_VIDEO_MAX_BITRATE, its encoding's frame-rate cap).
VIDEO_MAX_BITRATE = 1_200_000
# Clicks whose flash is received (every picture is sent once; a loaded machine's encoder or a
# receiver may still drop one): half of them are plenty for a median.
MIN_PAIRED = 0.5
STOP_TIMEOUT_S = 10


def audio_onsets(received: list[tuple[float, str, np.ndarray, int]], identity: str) -> list[float]:
    """Arrival time of each click's first loud sample (frame arrival + position in the frame)."""
    onsets, last_loud = [], -1e9
    for at, who, samples, sr in received:
        if who != identity:
            continue
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > CLICK_THRESHOLD)
        if len(loud):
            t = at + loud[0] / sr
            if t - last_loud > QUIET_S:
                onsets.append(t)
            last_loud = at + loud[-1] / sr
    return onsets


def video_onsets(received: list[tuple[float, str, np.ndarray]], identity: str) -> list[float]:
    """Arrival time of each frame where the probe marker turns white."""
    onsets, was_on = [], False
    for at, who, rgb in received:
        if who != identity:
            continue
        on = probe_marker_on(rgb)
        if on and not was_on:
            onsets.append(at)
        was_on = on
    return onsets


def pair_offsets(clicks: list[float], flashes: list[float]) -> list[float]:
    """For each click, the offset of the nearest flash within PAIR_WINDOW_S (unpaired: left out)."""
    flashes_arr = np.array(flashes)
    offsets = []
    for c in clicks:
        if len(flashes_arr) == 0:
            break
        d = flashes_arr - c
        i = int(np.argmin(np.abs(d)))
        if abs(d[i]) < PAIR_WINDOW_S:
            offsets.append(float(d[i]))
    return offsets


def av_offsets(viewer: HumanParticipant, identity: str) -> tuple[list[float], list[float]]:
    """(click onsets heard, offsets of the clicks paired with a flash) of `identity`'s tracks."""
    heard = audio_onsets(viewer.audio, identity)
    return heard, pair_offsets(heard, video_onsets(viewer.video, identity))


async def wait_for_tracks(viewer: HumanParticipant, identity: str, timeout: float) -> None:  # noqa: ASYNC109 (poll deadline)
    """Until `viewer` receives both `identity`'s audio and its video."""
    await viewer.wait_for(
        lambda: (
            any(w == identity for _, w, _ in viewer.video)
            and any(w == identity for _, w, _, _ in viewer.audio)
        ),
        timeout,
        what="the bot's audio and video tracks",
    )


@contextlib.asynccontextmanager
async def probe_face_bot(
    url: str,
    token: str,
    room: str,
    *,
    before_face: Sequence[FrameProcessor] = (),
    audio_queue_ms: int = AUDIO_OUT_QUEUE_MS,
) -> AsyncIterator[PipelineWorker]:
    """The face processor in probe mode publishing through Pipecat's LiveKitTransport with the
    bot's A/V synchronizer, run in this process, with `before_face` (a TTS, say) between the
    transport's input and the face."""
    transport = LiveKitTransport(
        url=url,
        token=token,
        room_name=room,
        params=LiveKitParams(
            audio_in_enabled=False,
            audio_out_enabled=True,
            audio_out_sample_rate=SR,
            audio_out_queue_size_ms=audio_queue_ms,
            video_out_enabled=True,
            video_out_is_live=FaceVideoProcessor.VIDEO_OUT_IS_LIVE,
            video_out_width=512,
            video_out_height=512,
            video_out_framerate=FPS,
            video_out_max_bitrate=VIDEO_MAX_BITRATE,
        ),
    )
    keep_video_framerate(transport)
    PicturesInStep(transport, fps=FPS, queue_ms=audio_queue_ms)
    face = FaceVideoProcessor(marker=AVSyncMarker(), fps=FPS, ahead_ms=audio_queue_ms)
    worker = PipelineWorker(
        Pipeline([transport.input(), *before_face, face, transport.output()]),
        params=PipelineParams(audio_out_sample_rate=SR),
        cancel_on_idle_timeout=False,
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    run = asyncio.create_task(runner.run())
    try:
        yield worker
    finally:
        await worker.queue_frame(EndFrame())
        try:
            await asyncio.wait_for(run, STOP_TIMEOUT_S)
        except TimeoutError:
            await worker.cancel()
            await run


async def speak_probe(url: str, token: str, room: str, *, seconds: float, period_s: float,
                      after_s: float) -> None:
    """Join as the probe bot, stay idle `after_s` (viewers subscribe, idle frames flow), then
    speak `seconds` of probe clicks at once like a fast TTS, and leave once they played."""
    audio, _ = probe_signal(seconds, SR, FPS, period_s=period_s)
    step = SR // 50  # 20 ms TTS chunks
    async with probe_face_bot(url, token, room) as bot:
        await asyncio.sleep(after_s)
        await bot.queue_frames([
            TTSAudioRawFrame(audio=audio[i : i + step].tobytes(), sample_rate=SR, num_channels=1)
            for i in range(0, len(audio), step)
        ])
        await asyncio.sleep(seconds + 1.5)


def main() -> None:
    """`python -m tests.support.av_probe URL TOKEN ROOM SECONDS PERIOD AFTER`: one probe bot in
    its own process, as each room's bot job runs in production."""
    url, token, room, seconds, period_s, after_s = sys.argv[1:7]
    asyncio.run(speak_probe(url, token, room, seconds=float(seconds), period_s=float(period_s),
                            after_s=float(after_s)))


if __name__ == "__main__":
    main()
