"""Pipecat processor that turns TTS audio into audio plus lip-synced video, in step.

Consumes `SentenceTimingFrame` + `TTSAudioRawFrame` and re-emits the audio in video-frame
sized pieces, each followed by its picture (`OutputImageRawFrame`, `sync_with_audio=True`),
like Pipecat's avatar services: frame k of a sentence covers its samples k*sr/fps ...
(k+1)*sr/fps. Frames between a sentence's timing frame and its first audio (Pipecat's TTS sends
the sentence's word frames there) go out before its first piece and leave it open, with its
visemes; a frame after some of its audio ends it and waits behind that audio. It renders, it
does not pace: the output transport publishes each picture after its audio through LiveKit's
`rtc.AVSynchronizer` (processors/livekit_transport_adapter.py, `PicturesInStep`), the one owner
of the A/V clock. This processor only keeps its rendering at
most `ahead_ms` ahead of playout (the A/V queue: LiveKit's audio source and the synchronizer's
video queue hold that much), so an interruption discards little work.
(Needs `video_out_is_live=False` on the transport: live video drops sync_with_audio pictures.)
Between turns, once the speech it sent has played, it sends an idle picture (blinks, breathing,
sway) every 1/`idle_fps`; on InterruptionFrame it drops every queued piece of audio at once and
sends the resting face (the transport drops what it queued, so the mouth closes with the sound).
An engine that `renders_ahead` (SadTalker) gets each whole sentence once its audio is in and
renders it in a worker; each piece of audio waits for its picture, so when the engine is behind
real time both are held together (the time held goes out as an RTVI processing metric), and
idle pictures show while the audio is held.
An optional `FrameMarker` marks each picture with its audio (the A/V sync probe's marker, a test
wrapper: tests/support/av_marker.py, tests/support/probe_bot.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, cast

import numpy as np
from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    MetricsFrame,
    OutputImageRawFrame,
    StartFrame,
    SystemFrame,
    TTSAudioRawFrame,
)
from pipecat.metrics.metrics import ProcessingMetricsData
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from processors.face.base import (
    DEFAULT_AVATAR,
    Avatar,
    FaceEngine,
    RenderedAhead,
    RendersAhead,
    frame_bounds,
)
from processors.face.builtin import BuiltinFaceEngine
from processors.face.timeline import VisemeTimeline
from processors.frames import SentenceTimingFrame

IMAGE_FORMAT = "RGB"
DEFAULT_FPS = 25
DEFAULT_SIZE = 512
# Speech rendered and sent at most this far ahead of playout: the A/V queue the bot gives LiveKit's
# audio source and the synchronizer's video queue (BOT_AUDIO_OUT_QUEUE_MS).
DEFAULT_AHEAD_MS = 200
# RTVI processing metric (processor name + suffix): seconds a render-ahead engine (SadTalker)
# held a sentence's audio and pictures back because it was behind real time.
HELD_METRIC_SUFFIX = ":face-held"


# Between turns the face moves slowly (breathing, sway, blinks): it is rendered, sent and
# encoded at this rate, a third of the cost of speech's rate.
DEFAULT_IDLE_FPS = 8


@dataclass(frozen=True, slots=True)
class FaceSettings:
    """Face video output: avatar image, frame size and rate, engine, idle rate."""

    avatar_image_path: Path = DEFAULT_AVATAR
    fps: int = DEFAULT_FPS
    width: int = DEFAULT_SIZE
    height: int = DEFAULT_SIZE
    engine: str = "builtin"  # processors.face.engines.ENGINES
    idle_fps: int = DEFAULT_IDLE_FPS


class FrameMarker(Protocol):
    """Marks a picture in place just before it is queued, from the audio it goes with."""

    def mark(self, image: np.ndarray, audio: np.ndarray | None) -> None:
        """`audio`: the picture's own samples (int16 mono); None for an idle picture."""
        ...


@dataclass(slots=True)
class _Sentence:
    """Audio of one sentence as it arrives, and how many video frames were taken from it."""

    sample_rate: int
    visemes: VisemeTimeline | None  # None: envelope fallback
    context_id: str | None
    chunks: list[np.ndarray] = field(default_factory=list)
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    frames_done: int = 0
    complete: bool = False
    # Frames that came after its timing frame but before any of its audio (the TTS's word
    # frames): they go out just before its first piece, and do not end it.
    lead: list[Frame] = field(default_factory=list)
    ahead: RenderedAhead | None = None  # the engine's render-ahead of this sentence, if any
    held_s: float = 0.0  # seconds its audio waited for the render-ahead's pictures
    held_since: float | None = None  # since when the next piece waits for its picture
    _timeline: VisemeTimeline | None = None
    _timeline_samples: int = -1

    def samples(self) -> np.ndarray:
        if self.chunks:
            self.audio = np.concatenate([self.audio, *self.chunks])
            self.chunks.clear()
        return self.audio

    def timeline(self) -> VisemeTimeline:
        """The viseme timeline with the audio received so far (rebuilt as audio arrives)."""
        audio = self.samples()
        if self._timeline_samples != len(audio):
            self._timeline = (self.visemes.with_audio(audio, self.sample_rate) if self.visemes
                              else VisemeTimeline.from_audio(audio, self.sample_rate))
            self._timeline_samples = len(audio)
        # _timeline is set just above
        return self._timeline  # type: ignore[return-value]


class FaceVideoProcessor(FrameProcessor):
    """Re-emits TTS audio with lip-synced avatar frames, each picture right after its audio."""

    # The output transport must run non-live video: live video drops sync_with_audio pictures.
    VIDEO_OUT_IS_LIVE = False

    def __init__(self, *, engine: FaceEngine | None = None,
                 avatar_image_path: str | Path = DEFAULT_AVATAR, fps: int = DEFAULT_FPS,
                 width: int = DEFAULT_SIZE, height: int = DEFAULT_SIZE,
                 ahead_ms: int = DEFAULT_AHEAD_MS, marker: FrameMarker | None = None,
                 idle_fps: int = DEFAULT_IDLE_FPS, **kwargs) -> None:
        super().__init__(**kwargs)
        if ahead_ms * fps < 1000:
            raise ValueError(f"ahead_ms={ahead_ms} is less than one frame at {fps} fps")
        self._engine: FaceEngine = engine or BuiltinFaceEngine(width=width, height=height, fps=fps)
        if self._engine.fps != fps:
            raise ValueError(f"engine renders at {self._engine.fps} fps, processor set to {fps}")
        self._fps = fps
        self._avatar: Avatar = self._engine.load_avatar(Path(avatar_image_path))
        if self._avatar.size != (width, height):
            raise ValueError(
                f"engine frames are {self._avatar.size}, processor set to {(width, height)}"
            )
        self._ahead_s = ahead_ms / 1000
        self._marker = marker
        self._items: deque[_Sentence | Frame] = deque()  # speech and the frames queued behind it
        self._arrived = asyncio.Event()  # something was queued (or the queue was dropped)
        self._t0 = time.monotonic()  # the idle-motion clock's origin
        self._played_at = 0.0  # monotonic time when the speech sent so far will have played
        self._idle_period = 1.0 / max(1, idle_fps)
        self._next_idle = 0.0  # monotonic time of the next idle picture
        self._generation = 0  # bumped on interruption, so in-flight renders are dropped
        self._loop_task: asyncio.Task | None = None

    @classmethod
    def from_settings(
        cls, settings: FaceSettings, *, engine: FaceEngine | None = None,
        ahead_ms: int = DEFAULT_AHEAD_MS, marker: FrameMarker | None = None,
    ) -> FaceVideoProcessor:
        return cls(
            engine=engine,
            avatar_image_path=settings.avatar_image_path,
            fps=settings.fps,
            width=settings.width,
            height=settings.height,
            ahead_ms=ahead_ms,
            marker=marker,
            idle_fps=settings.idle_fps,
        )

    @property
    def avatar(self) -> Avatar:
        return self._avatar

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction == FrameDirection.UPSTREAM:
            await self.push_frame(frame, direction)
        elif isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            self._loop_task = self.create_task(self._run())
        elif isinstance(frame, InterruptionFrame):
            self._interrupt()
            await self.push_frame(frame, direction)
        elif isinstance(frame, CancelFrame):
            await self._stop_loop()
            await self.push_frame(frame, direction)
        elif isinstance(frame, SystemFrame):
            await self.push_frame(frame, direction)
        elif isinstance(frame, SentenceTimingFrame):
            self._close_sentence()
            timeline = VisemeTimeline.from_visemes(frame.visemes) if frame.visemes else None
            self._items.append(_Sentence(frame.sample_rate, timeline, frame.context_id))
        elif isinstance(frame, TTSAudioRawFrame):
            self._add_audio(frame)
            self._arrived.set()
        elif not isinstance(frame, EndFrame) and (sentence := self._awaiting_audio()):
            sentence.lead.append(frame)
        elif self._items or (isinstance(frame, EndFrame) and self._loop_task):
            # Keep later frames (TTSStoppedFrame, text, EndFrame) behind the audio before them.
            self._close_sentence()
            self._items.append(frame)
            self._arrived.set()
        else:
            await self.push_frame(frame, direction)

    def _awaiting_audio(self) -> _Sentence | None:
        """The last sentence, if it is open and none of its audio came yet."""
        last = self._items[-1] if self._items else None
        if (isinstance(last, _Sentence) and not last.complete and not last.chunks
                and len(last.audio) == 0):
            return last
        return None

    def _close_sentence(self) -> None:
        if self._items and isinstance(self._items[-1], _Sentence):
            self._items[-1].complete = True

    def _add_audio(self, frame: TTSAudioRawFrame) -> None:
        samples = np.frombuffer(frame.audio, dtype=np.int16)
        if frame.num_channels > 1:
            samples = samples.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
        last = self._items[-1] if self._items else None
        if not (
            isinstance(last, _Sentence)
            and not last.complete
            and last.sample_rate == frame.sample_rate
        ):
            self._close_sentence()
            last = _Sentence(frame.sample_rate, None, frame.context_id)
            self._items.append(last)
        last.chunks.append(samples)

    def _interrupt(self) -> None:
        dropped = sum(1 for item in self._items if isinstance(item, _Sentence))
        if dropped:
            logger.debug(f"{self}: interrupted, dropping {dropped} sentence(s)")
        for item in self._items:
            if isinstance(item, _Sentence) and item.ahead is not None:
                item.ahead.close()
        self._items.clear()
        # The transport drops the audio it queued: the resting face goes out at once.
        self._played_at = self._next_idle = time.monotonic()
        self._generation += 1
        self._arrived.set()

    async def _stop_loop(self) -> None:
        if self._loop_task:
            await self.cancel_task(self._loop_task)
            self._loop_task = None

    async def _run(self) -> None:
        """Send each piece of speech with its picture as soon as its audio is in, at most
        `ahead` before it plays; once the speech sent has played, an idle picture now and then."""
        while True:
            self._arrived.clear()  # what arrives from here on wakes the waits below
            now = time.monotonic()
            full = self._played_at - self._ahead_s - now
            if full > 0:  # enough is queued downstream (an interruption wakes it early)
                await self._wait_for_arrival(full)
                continue
            step = await self._next_speech_frame()
            if step is EndFrame:
                return
            if step is not None:
                continue
            now = time.monotonic()
            if now >= self._played_at:
                if now >= self._next_idle:
                    await self._send_idle(now)
                    # on the idle clock; after a late tick, half a period on
                    self._next_idle = (max(self._next_idle, now - self._idle_period / 2)
                                       + self._idle_period)
                wait = self._next_idle - now
            else:
                wait = self._played_at - now
            if self._items:  # a render-ahead engine's picture may come meanwhile
                wait = min(wait, 1.0 / self._fps)
            await self._wait_for_arrival(wait)

    async def _wait_for_arrival(self, seconds: float) -> None:
        """Until something is queued or dropped (`_arrived`), at most `seconds`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), max(seconds, 0.0))

    async def _send_idle(self, now: float) -> None:
        image = await asyncio.to_thread(self._engine.idle, self._avatar, now - self._t0)
        if self._marker is not None:
            self._marker.mark(image, None)
        await self._send_picture(image)

    async def _send_picture(self, image: np.ndarray) -> None:
        frame = OutputImageRawFrame(
            image=image.tobytes(), size=self._avatar.size, format=IMAGE_FORMAT
        )
        frame.sync_with_audio = True
        await self.push_frame(frame)

    async def _next_speech_frame(self):
        """Send the next video frame's worth of audio and its picture; push frames queued behind
        finished sentences. Returns None when no audio is ready, the EndFrame class once
        EndFrame was pushed."""
        while self._items:
            item = self._items[0]
            if isinstance(item, EndFrame):
                self._items.popleft()
                await self.push_frame(item)
                return EndFrame
            if isinstance(item, Frame):
                self._items.popleft()
                await self.push_frame(item)
                continue
            while item.lead:
                await self.push_frame(item.lead.pop(0))
            audio = item.samples()
            if self._renders_ahead() and item.ahead is None:
                if not item.complete:
                    return None  # a render-ahead engine renders whole sentences
                engine = cast(RendersAhead, self._engine)  # checked by _renders_ahead
                item.ahead = engine.render_ahead(self._avatar, audio, item.sample_rate)
            if item.ahead is not None and not self._picture_ready(item, item.ahead):
                return None  # the queued pictures play out, then idle ones, audio held
            start, end = frame_bounds(item.frames_done, item.sample_rate, self._fps)
            if end > len(audio):
                if not item.complete:
                    return None
                if start >= len(audio):
                    self._items.popleft()
                    await self._sentence_done(item)
                    continue
                audio = np.concatenate([audio, np.zeros(end - len(audio), np.int16)])
            return await self._send_speech_frame(item, audio[start:end], start)
        return None

    async def _send_speech_frame(self, item: _Sentence, piece: np.ndarray, start: int):
        generation = self._generation
        shows_at = max(time.monotonic(), self._played_at)
        image = await asyncio.to_thread(self._render, item, piece, start, shows_at - self._t0)
        if generation != self._generation:  # interrupted while rendering
            return None
        item.frames_done += 1
        audio = TTSAudioRawFrame(
            audio=piece.tobytes(),
            sample_rate=item.sample_rate,
            num_channels=1,
            context_id=item.context_id,
        )
        await self.push_frame(audio)
        await self._send_picture(image)
        self._played_at = max(time.monotonic(), self._played_at) + len(piece) / item.sample_rate
        return audio

    def _renders_ahead(self) -> bool:
        return getattr(self._engine, "renders_ahead", False)

    @staticmethod
    def _picture_ready(item: _Sentence, ahead: RenderedAhead) -> bool:
        """Whether `ahead` has the sentence's next picture; counts the time its audio is held."""
        ready = item.frames_done >= ahead.count or ahead.ready(item.frames_done)
        now = time.monotonic()
        if not ready and item.held_since is None:
            item.held_since = now
        elif ready and item.held_since is not None:
            item.held_s += now - item.held_since
            item.held_since = None
        return ready

    async def _sentence_done(self, item: _Sentence) -> None:
        """Report how long a render-ahead engine held this sentence's audio (RTVI metrics)."""
        if item.ahead is None:
            return
        item.ahead.close()
        held = item.held_s + item.ahead.held_s
        if held > 0:
            logger.debug(f"{self}: held audio {held:.3f} s for the face engine")
            await self.push_frame(
                MetricsFrame(
                    data=[
                        ProcessingMetricsData(
                            processor=f"{self.name}{HELD_METRIC_SUFFIX}", value=held
                        )
                    ]
                )
            )

    def _render(self, item: _Sentence, piece: np.ndarray, start: int, clock: float) -> np.ndarray:
        sr = item.sample_rate
        if item.ahead is not None:  # rendered (_picture_ready): audio waited with it
            image = item.ahead.frame(item.frames_done)
        else:
            frames = self._engine.render(
                self._avatar, piece, sr, item.timeline(), start=start / sr, clock=clock
            )
            image = next(iter(frames))
        if self._marker is not None:
            self._marker.mark(image, piece)
        return image

    async def cleanup(self):
        await self._stop_loop()
        await super().cleanup()
