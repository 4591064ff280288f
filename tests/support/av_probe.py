"""The A/V probe a test reads at a receiving participant: a face processor in probe mode
publishing through Pipecat's LiveKitTransport (it flashes a white marker in exactly the video
frames whose audio holds a 1 kHz click), and the receiver's side: click onsets from the audio,
flash onsets from the video, and each click paired with its flash (offset = flash arrival -
click arrival; positive: the picture lags the sound)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from livekit import rtc
from loguru import logger
from pipecat.frames.frames import EndFrame, TTSAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.livekit.transport import LiveKitParams, LiveKitTransport
from pipecat.workers.runner import WorkerRunner

from processors.face.video import FaceVideoProcessor
from processors.livekit_transport_adapter import PicturesInStep, keep_every_picture
from tests.support.av_marker import AVSyncMarker, probe_marker_on, probe_signal
from tests.support.bot_process import LoggedProcess
from tests.support.human import HumanParticipant

SR = 24000
FPS = 25
# A measurement: 42 clicks per room, one every 10 video frames.
PROBE_SECONDS = 17.0
CLICK_PERIOD_S = 0.40
# Each probe bot is idle this long first, per room started at once (the processes start, the
# viewers subscribe, idle pictures flow), then speaks.
IDLE_FIRST_PER_ROOM_S = 5.0
# The face's own A/V contract (issue 12; asserted by tests/integration/test_av_sync.py, reported
# by bench/av_sync_bench.py): per room at least 40 clicks heard, 95 % of them paired with their
# flash, the median offset within +-40 ms and the 95th percentile of |offset| within 80 ms.
CONTRACT_MIN_PROBES = 40
CONTRACT_MIN_PAIRED = 0.95
CONTRACT_MEDIAN_WITHIN_MS = 40
CONTRACT_P95_WITHIN_MS = 80
# The bounds of the whole-bot probes (a GPT-SoVITS or SadTalker room, where the voice's timing
# and a render-ahead engine come in too), looser than the face's own contract above.
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
# The probe bot's last line once its clicks played and it left the room, and how the LiveKit
# SDK's native runtime reports a panic while the interpreter exits.
PROBE_DONE = "probe done: all clicks played, room left"
SDK_EXIT_PANIC = "panic in a function that cannot unwind"


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
    for at, who, picture in received:
        if who != identity:
            continue
        on = probe_marker_on(picture)
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


@dataclass(frozen=True)
class RoomOffsets:
    """One room's A/V offsets at its viewer (ms; positive: the picture lags the sound)."""

    room: str
    clicks_sent: int
    clicks_heard: int
    offsets_ms: list[float]
    video_frames: int

    @property
    def paired(self) -> int:
        return len(self.offsets_ms)

    @property
    def median_ms(self) -> float:
        return float(np.median(self.offsets_ms)) if self.offsets_ms else float("nan")

    @property
    def p95_abs_ms(self) -> float:
        return (float(np.percentile(np.abs(self.offsets_ms), 95)) if self.offsets_ms
                else float("nan"))

    def contract_miss(self) -> str | None:
        """How this room misses the face's A/V contract, or None when it meets it."""
        if self.clicks_heard < CONTRACT_MIN_PROBES:
            return f"{self.room}: only {self.clicks_heard} of {self.clicks_sent} clicks heard"
        if self.paired < CONTRACT_MIN_PAIRED * self.clicks_heard:
            return (f"{self.room}: only {self.paired} of {self.clicks_heard} clicks paired with "
                    "a flash")
        if (abs(self.median_ms) > CONTRACT_MEDIAN_WITHIN_MS
                or self.p95_abs_ms > CONTRACT_P95_WITHIN_MS):
            return (f"{self.room}: median {self.median_ms:+.0f} ms, p95 |offset| "
                    f"{self.p95_abs_ms:.0f} ms")
        return None

    def summary(self) -> str:
        ms = np.array(self.offsets_ms)
        return (f"{self.room}: A/V offset over {self.paired}/{self.clicks_heard} clicks heard "
                f"({self.clicks_sent} sent): median {self.median_ms:+.0f} ms, p95 |offset| "
                f"{self.p95_abs_ms:.0f} ms, min {ms.min(initial=0):+.0f}, "
                f"max {ms.max(initial=0):+.0f}; {self.video_frames} video frames")


@dataclass(frozen=True)
class Measurement:
    """The rooms of one run and the machine's CPU during it (shares of one core)."""

    rooms: list[RoomOffsets]
    cpu_bots: float  # all probe bot processes together
    cpu_viewers: float  # this process: the viewers' decoding and reading
    cpu_idle: float  # the machine's idle share (0..cores)


async def measure_av_offsets(url: str, token: Callable[[str, str, bool], str], *, rooms: int,
                             logs_dir: Path) -> Measurement:
    """Run `rooms` probe bots at once, each in its own process (as the worker runs each room's
    job) with a viewer (real LiveKit SDK) in this process; `token(room, identity, agent)` mints
    the join tokens. Each bot idles, then speaks PROBE_SECONDS of clicks."""
    import psutil

    _, clicks = probe_signal(PROBE_SECONDS, SR, FPS, period_s=CLICK_PERIOD_S)
    names = [f"face-av-sync-{rooms}-{i}" for i in range(rooms)]
    idle_first_s = 3.0 + IDLE_FIRST_PER_ROOM_S * rooms
    async with contextlib.AsyncExitStack() as stack:
        # The viewers stand for browsers on other machines: each keeps only the luma its probe
        # reads (no colour conversion here), so that they take as little of this machine's CPU
        # from the bots as they can.
        viewers = [await stack.enter_async_context(
            HumanParticipant.connect(url, token(room, f"{room}-viewer", False),
                                     video_format=rtc.VideoBufferType.I420))
            for room in names]
        bots = [stack.enter_context(LoggedProcess(
            args=["-m", "tests.support.av_probe", url, token(room, f"{room}-bot", True), room,
                  str(PROBE_SECONDS), str(CLICK_PERIOD_S), str(idle_first_s)],
            env={}, log_path=logs_dir / f"{room}.log")) for room in names]
        joined = time.monotonic()
        for viewer, room in zip(viewers, names, strict=True):
            await wait_for_tracks(viewer, f"{room}-bot", idle_first_s)
        # CPU while the clicks play (each bot speaks idle_first_s after its pipeline started,
        # about when its tracks came).
        await asyncio.sleep(max(0.0, idle_first_s - (time.monotonic() - joined)))
        procs = [psutil.Process(bot.pid) for bot in bots]
        me = psutil.Process(os.getpid())
        start = _cpu(procs), _cpu([me]), psutil.cpu_times().idle, time.monotonic()
        await asyncio.sleep(PROBE_SECONDS - 2.0)
        end = _cpu(procs), _cpu([me]), psutil.cpu_times().idle, time.monotonic()
        for bot in bots:
            code = await asyncio.to_thread(bot.wait, PROBE_SECONDS + idle_first_s + 20)
            if code != 0 and not aborted_after_probe(bot.log()):
                raise RuntimeError(f"probe bot exited {code}:\n{bot.log()[-3000:]}")
            if code != 0:
                logger.warning(f"{bot.log_path.name}: the probe played all its clicks and left "
                               f"the room, then the LiveKit SDK aborted the process at exit "
                               f"(status {code}, a Rust panic in its native teardown)")
    wall = end[3] - start[3]
    return Measurement(
        rooms=[_room_offsets(viewer, room, len(clicks))
               for viewer, room in zip(viewers, names, strict=True)],
        cpu_bots=round((end[0] - start[0]) / wall, 2),
        cpu_viewers=round((end[1] - start[1]) / wall, 2),
        cpu_idle=round((end[2] - start[2]) / wall, 2),
    )


def aborted_after_probe(log: str) -> bool:
    """Whether a probe bot's log shows its whole probe done, then only the LiveKit SDK's native
    runtime aborting the process as Python exits (seen once in CI: "panic in a function that
    cannot unwind" from a tokio worker, after the room was left). Any other end is a failure."""
    done = log.rfind(PROBE_DONE)
    return done >= 0 and SDK_EXIT_PANIC in log[done:]


def _cpu(procs) -> float:
    """User + system seconds of `procs` so far."""
    return sum(t.user + t.system for t in (p.cpu_times() for p in procs))


def _room_offsets(viewer: HumanParticipant, room: str, sent: int) -> RoomOffsets:
    identity = f"{room}-bot"
    heard, offsets = av_offsets(viewer, identity)
    return RoomOffsets(room=identity, clicks_sent=sent, clicks_heard=len(heard),
                       offsets_ms=[round(o * 1000, 1) for o in offsets],
                       video_frames=sum(1 for _, who, _ in viewer.video if who == identity))


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
    keep_every_picture(transport)
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
    print(PROBE_DONE, flush=True)


if __name__ == "__main__":
    main()
