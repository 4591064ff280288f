"""Pipecat 1.14's LiveKit transport where its public API stops short, adapted in one place.

`LiveKitTransport` keeps its `LiveKitTransportClient` (shared with its input and output
transports) at `_client`. The bot needs three things only that client has: the `rtc.Room`
(participant kinds), the output `rtc.AudioSource` at `_audio_source` (audio handed to LiveKit
and not yet played, for playout-timed messages), and the video track's publish options, built
by `_video_publish_options()` (to keep the frame rate under load), and the `rtc.VideoSource` at
`_video_source`. The output transport's media sender (`_media_senders`, made in
`set_transport_ready`) hands each picture that came after its audio to `_set_video_image`, and
`_convert_pipecat_video_to_livekit` turns it into an `rtc.VideoFrame`; the bot publishes those
pictures through `rtc.AVSynchronizer`, whose pacing (`_fps_controller._next_frame_time`) it
restarts when the audio restarts (and moves back to the audio's time after a stall), whose
`_video_queue` tells it nothing is waiting, and which captures each picture on its tick through
the video source it is given (a wrapper tells the bot which picture is captured when). Each
subscribed participant's audio is read by the client's `_process_audio_stream` from an
`rtc.AudioStream(track)` it built at 48 kHz in 10 ms frames (registered in `_audio_streams`);
the bot reads it at the pipeline's rate in VAD-window frames instead.
tests/unit/test_livekit_transport_adapter_pipecat_1_14.py pins these internals.

Upstream: public hooks that would remove this module —
  - `LiveKitTransport.room` (the client's `room` property, passed through);
  - `LiveKitOutputTransport.queued_audio_duration` (the audio source's `queued_duration`);
  - `LiveKitParams.video_out_degradation_preference`, copied into the video publish options;
  - a video output that publishes `sync_with_audio` pictures through `rtc.AVSynchronizer`;
  - `AVSynchronizer.restart()` (pace from now) and a `pending` count of its video queue;
  - `LiveKitParams.audio_in_frame_ms`, passed with the input sample rate to `rtc.AudioStream`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import cast

from livekit import rtc
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputImageRawFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.livekit.transport import LiveKitTransport


def room_of(transport: LiveKitTransport) -> rtc.Room:
    """The transport's LiveKit room (Pipecat raises before the pipeline has set it up)."""
    return transport._client.room


def queued_audio_s(transport: BaseOutputTransport) -> float:
    """Audio the output transport handed to LiveKit that is not played yet, in seconds (0 for
    another transport, or before it connected)."""
    source = getattr(getattr(transport, "_client", None), "_audio_source", None)
    return source.queued_duration if isinstance(source, rtc.AudioSource) else 0.0


def keep_every_picture(transport: LiveKitTransport) -> None:
    """Publish the transport's video as one layer with `MAINTAIN_FRAMERATE`, so that every
    picture reaches every viewer. Under CPU or bandwidth load the WebRTC encoder then lowers the
    resolution instead of dropping frames (LiveKit's default keeps the resolution), as a talking
    face needs; and with no simulcast layers the server never switches a viewer between layers,
    which skips pictures until the new layer's key frame (LiveKit's default publishes simulcast).
    Measured on 2 cores: a viewer of the bot answering got 19.5-21 fps with simulcast, 23.5-25.5
    with one layer (tests/integration/test_bot.py); 3 rooms at once, 36-41 of 42 probe pictures
    arrived with simulcast, 39-42 with one layer (bench/av_sync_bench.py). Call before the
    pipeline connects."""
    client = transport._client
    build = client._video_publish_options

    def options() -> rtc.TrackPublishOptions:
        built = build()
        built.degradation_preference = (  # the IntEnum of the proto's enum
            rtc.DegradationPreference.MAINTAIN_FRAMERATE)  # type: ignore[assignment]
        built.simulcast = False
        return built

    client._video_publish_options = options  # type: ignore[method-assign]


# A picture whose audio queue holds at most this many frames' worth restarts the pacing.
RESTART_FRAMES = 1.5
# The pacing follows the audio again once this many speech pictures in a row were scheduled more
# than DRIFT_TOLERANCE_FRAMES of a frame from their audio's start (a stall shifted the audio; one
# short last piece of a sentence does not).
DRIFT_PICTURES = 3
DRIFT_TOLERANCE_FRAMES = 0.5
# Pictures are captured this much after their audio leaves the source: a WebRTC receiver plays
# audio later than it shows video (20 ms Opus packets, then the audio jitter buffer, while
# a decoded picture shows at once and LiveKit's tracks are not one lip-sync group). Measured at a
# LiveKit receiver by tests/integration/test_av_sync.py (medians of 42 clicks): pictures led by
# 27-56 ms with no hold (8 runs), lagged by 9-30 ms with 40 ms (4 runs), -6..+14 ms with 20.
AUDIO_PATH_HOLD_MS = 20


class PicturesInStep:
    """Publishes the transport's pictures through LiveKit's `rtc.AVSynchronizer`, bound to the
    transport's own audio and video sources: the one owner of the A/V clock.

    Pipecat hands a `sync_with_audio` picture to the output only after the audio before it went
    to LiveKit's `AudioSource` (both travel in its audio queue), then its non-live loop samples
    "the current picture" at the track rate, which skips some pictures and re-draws others. Here
    each picture is pushed to the synchronizer instead, whose video queue (`queue_ms`, the same
    length as the audio source's queue) captures it exactly once, at `fps`. The pacing restarts
    with the audio: a picture that comes while nothing is queued (the first of a turn, or after
    the audio ran dry) is captured at once, so picture k shows k frames after the first, as
    audio k plays, shifted by `hold_ms` for the audio's longer path at the receiver. Each speech
    picture is also due at a time of its own, when its audio starts leaving the source (what the
    source holds as it comes, less its own piece): a stall (a slow render, a busy machine) lets
    the audio run dry while pictures wait, and the fixed pacing would then keep them a frame or
    more off their sound for the rest of the turn, so when DRIFT_PICTURES in a row are captured
    off by more than DRIFT_TOLERANCE_FRAMES, the pacing moves to the audio's time. On
    interruption both queues are cleared together.
    """

    def __init__(self, transport: LiveKitTransport, *, fps: int, queue_ms: int,
                 hold_ms: int = AUDIO_PATH_HOLD_MS) -> None:
        self._client = transport._client
        self._output = transport.output()
        self._fps = fps
        self._queue_ms = queue_ms
        self._hold_s = hold_ms / 1000
        self._sync: rtc.AVSynchronizer | None = None
        self._due: dict[int, float] = {}  # id(queued speech picture) -> when it is due
        # The last speech pictures' scheduled - due (s).
        self._drifts: deque[float] = deque(maxlen=DRIFT_PICTURES)
        self._sources: tuple[rtc.AudioSource, rtc.VideoSource] | None = None
        ready, process = self._output.set_transport_ready, self._output.process_frame

        async def set_transport_ready(frame: StartFrame) -> None:
            await ready(frame)
            for sender in self._output._media_senders.values():
                sender._set_video_image = self.push  # type: ignore[method-assign]

        async def process_frame(frame: Frame, direction: FrameDirection) -> None:
            await process(frame, direction)
            if isinstance(frame, InterruptionFrame) and self._sync is not None:
                await self._sync.clear_queue()
                self._due.clear()
            elif isinstance(frame, EndFrame | CancelFrame):
                await self.aclose()

        self._output.set_transport_ready = set_transport_ready  # type: ignore[method-assign]
        self._output.process_frame = process_frame  # type: ignore[method-assign]

    async def _synchronizer(self) -> tuple[rtc.AVSynchronizer, rtc.AudioSource] | None:
        """The synchronizer of the client's current sources (new ones after a reconnect), and
        its audio source; None before the client connected."""
        audio, video = self._client._audio_source, self._client._video_source
        if audio is None or video is None:
            return None
        if self._sync is None or self._sources != (audio, video):
            await self.aclose()
            self._sync = rtc.AVSynchronizer(
                audio_source=audio, video_source=cast(rtc.VideoSource, _Captures(video, self)),
                video_fps=self._fps, video_queue_size_ms=self._queue_ms)
            self._sources = (audio, video)
        return self._sync, audio

    async def push(self, image: OutputImageRawFrame) -> None:
        """Queue `image` to be captured on the synchronizer's clock (dropped before connect)."""
        bound = await self._synchronizer()
        frame = self._output._convert_pipecat_video_to_livekit(image)
        if bound is None or frame is None:
            return
        sync, audio = bound
        queued = audio.queued_duration
        due = time.perf_counter() + max(queued - 1 / self._fps, 0.0) + self._hold_s
        if queued > 0:  # a speech picture, after its audio
            self._due[id(frame)] = due
        # Nothing waiting and at most the picture's own audio queued: the audio (re)starts now
        # (or an idle picture comes), so this picture sets the pacing, not a tick left behind by
        # slower idle pictures.
        if sync._video_queue.empty() and queued * self._fps <= RESTART_FRAMES:
            sync._fps_controller._next_frame_time = due
            self._drifts.clear()
        await sync.push(frame)

    def captured(self, frame: rtc.VideoFrame) -> None:
        """The synchronizer captures `frame` now, on its pacing's tick: once DRIFT_PICTURES
        speech pictures in a row were off their audio, the pacing continues from this one's due
        time."""
        due = self._due.pop(id(frame), None)
        if due is None or self._sync is None:
            return
        pacing = self._sync._fps_controller
        assert pacing._next_frame_time is not None  # set before each capture
        self._drifts.append(pacing._next_frame_time - due)
        if (len(self._drifts) == DRIFT_PICTURES
                and (all(d > DRIFT_TOLERANCE_FRAMES / self._fps for d in self._drifts)
                     or all(d < -DRIFT_TOLERANCE_FRAMES / self._fps for d in self._drifts))):
            pacing._next_frame_time = due
            self._drifts.clear()

    async def aclose(self) -> None:
        if self._sync is not None:
            await self._sync.aclose()
            self._sync, self._sources = None, None
            self._due.clear()


class _Captures:
    """The synchronizer's video source: the transport's, telling `PicturesInStep` of each
    capture first (the synchronizer captures inside its pacing, after the tick's wait)."""

    def __init__(self, source: rtc.VideoSource, pictures: PicturesInStep) -> None:
        self._source, self._pictures = source, pictures

    def capture_frame(self, frame: rtc.VideoFrame, **kwargs) -> None:
        self._pictures.captured(frame)
        self._source.capture_frame(frame, **kwargs)


def receive_audio_as(transport: LiveKitTransport, *, sample_rate: int, frame_ms: int) -> None:
    """Read each participant's audio from LiveKit already at `sample_rate`, in `frame_ms` frames:
    Pipecat reads it at 48 kHz in 10 ms frames and resamples each one in Python, so every
    person costs the event loop 100 frames a second (each a VAD call through a thread pool)
    before anyone speaks. LiveKit's own resampler and frame buffer do it natively; a frame of one
    VAD window (Silero: 32 ms at 16 kHz) is analysed as soon as it arrives. Call before the
    pipeline connects."""
    client = transport._client
    process = client._process_audio_stream

    async def process_as(stream: rtc.AudioStream, participant_id: str) -> None:
        await stream.aclose()   # Pipecat's 48 kHz stream; nothing has read it yet
        own = rtc.AudioStream(client._audio_tracks[participant_id], sample_rate=sample_rate,
                              num_channels=1, frame_size_ms=frame_ms)
        task = asyncio.current_task()
        assert task is not None
        client._audio_streams[participant_id] = (own, task)  # closed on unsubscribe
        try:
            await process(own, participant_id)
        finally:
            await own.aclose()

    client._process_audio_stream = process_as  # type: ignore[method-assign,assignment]
