"""Pipecat processor that turns TTS audio into audio plus lip-synced video, in step.

Consumes `SentenceTimingFrame` + `TTSAudioRawFrame` and re-emits the audio in video-frame
sized pieces, each followed by its picture (`OutputImageRawFrame`, `sync_with_audio=True`),
like Pipecat's avatar services. Frame k of a sentence covers its samples k*sr/fps ...
(k+1)*sr/fps (the audio sample clock), and a wall-clock loop at `fps` paces both.

A/V sync on LiveKit: the output transport switches a sync_with_audio picture when the audio
before it has been handed to LiveKit's AudioSource, which plays it later by however much audio
it holds. So this processor never lets the AudioSource hold more than `audio_lead_frames`
frames: it sends audio at most that far ahead of the picture and holds each picture back
until its own audio is the one being played, plus `video_delay_ms` for the audio path's
latency after the AudioSource (network packetisation, the receiver's jitter buffer). (Needs
`video_out_is_live=False` on the transport: live video drops sync_with_audio pictures.)
Between turns it sends idle frames (blinks, breathing, sway) at `idle_fps`, each picture sent
once (the transport keeps showing it); on InterruptionFrame it drops every queued piece of
audio and picture at once, and the next tick's resting face is sent without the delay (the
audio stops now too, so the mouth closes with it). An engine that `renders_ahead` (SadTalker) gets
each whole sentence once its audio is in and renders it in a worker; each piece of audio waits for
its picture, so when the engine is behind real time both are held together (the time held goes out
as an RTVI processing metric). The loop never waits on such a picture: the pictures already queued
(whose audio was sent) keep their ticks, then idle pictures show while the audio is held (waiting
there would leave the sent audio playing ahead of its pictures for the whole render).
An optional `FrameMarker` marks each picture with its audio (the A/V sync probe: av_marker.py).
"""

from __future__ import annotations

import asyncio
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

from processors.face.av_marker import AVSyncMarker
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
# Audio frames sent ahead of the picture on screen: the most LiveKit's AudioSource holds, and
# the margin against a late loop before the listener hears a gap.
DEFAULT_AUDIO_LEAD_FRAMES = 4
# Pictures are held back this much more, for the audio path's extra latency after the
# AudioSource (Opus packetisation, the receiver's jitter buffer); measured at a LiveKit
# receiver by tests/integration/test_av_sync.py (video led by 65-110 ms without it).
DEFAULT_VIDEO_DELAY_MS = 40
# RTVI processing metric (processor name + suffix): seconds a render-ahead engine (SadTalker)
# held a sentence's audio and pictures back because it was behind real time.
HELD_METRIC_SUFFIX = ":face-held"


# Between turns the face moves slowly (breathing, sway, blinks): it is rendered, sent and
# encoded at this rate, a third of the cost of speech's rate.
DEFAULT_IDLE_FPS = 8


@dataclass(frozen=True, slots=True)
class FaceSettings:
    """Face video output: avatar image, frame size and rate, A/V sync lead, probe mode."""

    avatar_image_path: Path = DEFAULT_AVATAR
    fps: int = DEFAULT_FPS
    width: int = DEFAULT_SIZE
    height: int = DEFAULT_SIZE
    audio_lead_frames: int = DEFAULT_AUDIO_LEAD_FRAMES
    video_delay_ms: int = DEFAULT_VIDEO_DELAY_MS
    probe: bool = False  # FACE_PROBE: mark pictures with av_marker.AVSyncMarker
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
    """Re-emits TTS audio with lip-synced avatar frames, paced on the audio sample clock."""

    # The output transport must run non-live video: live video drops sync_with_audio pictures.
    VIDEO_OUT_IS_LIVE = False

    def __init__(self, *, engine: FaceEngine | None = None,
                 avatar_image_path: str | Path = DEFAULT_AVATAR, fps: int = DEFAULT_FPS,
                 width: int = DEFAULT_SIZE, height: int = DEFAULT_SIZE,
                 audio_lead_frames: int = DEFAULT_AUDIO_LEAD_FRAMES,
                 video_delay_ms: int = DEFAULT_VIDEO_DELAY_MS, marker: FrameMarker | None = None,
                 idle_fps: int = DEFAULT_IDLE_FPS, **kwargs) -> None:
        super().__init__(**kwargs)
        if audio_lead_frames < 0 or video_delay_ms < 0:
            raise ValueError("audio_lead_frames and video_delay_ms must be >= 0")
        self._engine: FaceEngine = engine or BuiltinFaceEngine(width=width, height=height, fps=fps)
        if self._engine.fps != fps:
            raise ValueError(f"engine renders at {self._engine.fps} fps, processor set to {fps}")
        self._fps = fps
        self._avatar: Avatar = self._engine.load_avatar(Path(avatar_image_path))
        if self._avatar.size != (width, height):
            raise ValueError(
                f"engine frames are {self._avatar.size}, processor set to {(width, height)}"
            )
        self._lead = audio_lead_frames
        self._marker = marker
        self._items: deque[_Sentence | Frame] = deque()  # speech and the frames queued behind it
        self._pending: deque[np.ndarray] = deque()  # pictures whose audio is already sent
        self._delay_frames = round(video_delay_ms * fps / 1000)
        self._delayed: deque[np.ndarray] = deque()  # pictures due, held for the delay
        self._clock = 0.0  # idle-motion time of the next picture shown
        self._generation = 0  # bumped on interruption, so in-flight renders are dropped
        self._loop_task: asyncio.Task | None = None
        # Idle pictures: one rendered every `_idle_every` ticks, the last one repeated between.
        self._idle_every = max(1, round(fps / max(1, idle_fps)))
        self._idle_image: np.ndarray | None = None
        self._idle_ticks = 0
        self._shown: np.ndarray | None = None  # the picture last sent to the transport
        self._rest_now = False  # interrupted: the next idle picture skips the delay

    @classmethod
    def from_settings(
        cls, settings: FaceSettings, *, engine: FaceEngine | None = None
    ) -> FaceVideoProcessor:
        return cls(
            engine=engine,
            avatar_image_path=settings.avatar_image_path,
            fps=settings.fps,
            width=settings.width,
            height=settings.height,
            audio_lead_frames=settings.audio_lead_frames,
            video_delay_ms=settings.video_delay_ms,
            marker=AVSyncMarker() if settings.probe else None,
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
        elif self._items or (isinstance(frame, EndFrame) and self._loop_task):
            # Keep later frames (TTSStoppedFrame, text, EndFrame) behind the audio before them.
            self._close_sentence()
            self._items.append(frame)
        else:
            await self.push_frame(frame, direction)

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
        if dropped or self._pending:
            logger.debug(
                f"{self}: interrupted, dropping {dropped} sentence(s) and "
                f"{len(self._pending)} queued picture(s)"
            )
        for item in self._items:
            if isinstance(item, _Sentence) and item.ahead is not None:
                item.ahead.close()
        self._items.clear()
        self._pending.clear()
        self._delayed.clear()
        self._rest_now = True
        self._generation += 1

    async def _stop_loop(self) -> None:
        if self._loop_task:
            await self.cancel_task(self._loop_task)
            self._loop_task = None

    async def _run(self) -> None:
        """Every 1/fps: send audio up to `lead` frames ahead, then show one picture."""
        period = 1.0 / self._fps
        next_tick = time.monotonic()
        while True:
            while len(self._pending) <= self._lead:
                step = await self._next_speech_frame()
                if step is None:
                    break
                if step is EndFrame:
                    return
            image = self._pending.popleft() if self._pending else None
            await self._push_image(image)
            next_tick += period
            now = time.monotonic()
            behind = self._lead + 1  # frames of audio the AudioSource held at the last tick
            if next_tick < now - behind * period:
                # Later than the queued audio lasted: the listener heard a gap, so only the
                # pictures of the audio that did play are caught up on; the rest shifts.
                logger.debug(f"{self}: video loop {now - next_tick:.3f} s late, audio ran dry")
                next_tick = now - behind * period
            elif next_tick > now:
                await asyncio.sleep(next_tick - now)

    async def _push_image(self, image: np.ndarray | None) -> None:
        """Queue this tick's picture (idle when None) and show the one due after the delay."""
        rest_now = image is None and self._rest_now
        self._rest_now = False
        if image is None:
            if self._idle_image is None or self._idle_ticks % self._idle_every == 0:
                self._idle_image = await asyncio.to_thread(
                    self._engine.idle, self._avatar, self._clock
                )
                if self._marker is not None:
                    self._marker.mark(self._idle_image, None)
            image = self._idle_image
            self._idle_ticks += 1
        else:
            self._idle_image, self._idle_ticks = None, 0
        self._clock += 1.0 / self._fps
        if rest_now:
            await self._send_picture(image)
            return
        self._delayed.append(image)
        if len(self._delayed) > self._delay_frames:
            await self._send_picture(self._delayed.popleft())

    async def _send_picture(self, image: np.ndarray) -> None:
        if image is self._shown:  # a repeated idle picture: the transport still shows it
            return
        self._shown = image
        frame = OutputImageRawFrame(
            image=image.tobytes(), size=self._avatar.size, format=IMAGE_FORMAT
        )
        frame.sync_with_audio = True
        await self.push_frame(frame)

    async def _next_speech_frame(self):
        """Send the next video frame's worth of audio and queue its picture; push frames queued
        behind finished sentences. Returns None when no audio is ready (or EndFrame waits for
        the last pictures), the EndFrame class once EndFrame was pushed."""
        while self._items:
            item = self._items[0]
            if isinstance(item, EndFrame):
                if self._pending:  # let the last pictures play out first
                    return None
                self._items.popleft()
                while self._delayed:
                    await self._send_picture(self._delayed.popleft())
                await self.push_frame(item)
                return EndFrame
            if isinstance(item, Frame):
                self._items.popleft()
                await self.push_frame(item)
                continue
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
        clock = self._clock + len(self._pending) / self._fps  # when this picture will show
        image = await asyncio.to_thread(self._render, item, piece, start, clock)
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
        self._pending.append(image)
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
