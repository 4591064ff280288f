"""Pipecat 1.14's LiveKit transport where its public API stops short, adapted in one place.

`LiveKitTransport` keeps its `LiveKitTransportClient` (shared with its input and output
transports) at `_client`. The bot needs three things only that client has: the `rtc.Room`
(participant kinds), the output `rtc.AudioSource` at `_audio_source` (audio handed to LiveKit
and not yet played, for playout-timed messages), and the video track's publish options, built
by `_video_publish_options()` (to keep the frame rate under load). Its non-live video loop
re-draws the current picture (the same `OutputImageRawFrame`) at `video_out_framerate` through
the output transport's `write_video_frame`, which the bot gates to pictures that changed.
Each subscribed participant's audio is read by the client's `_process_audio_stream` from an
`rtc.AudioStream(track)` it built at 48 kHz in 10 ms frames (registered in `_audio_streams`);
the bot reads it at the pipeline's rate in VAD-window frames instead.
tests/unit/test_livekit_transport_adapter_pipecat_1_14.py pins these internals.

Upstream: public hooks that would remove this module —
  - `LiveKitTransport.room` (the client's `room` property, passed through);
  - `LiveKitOutputTransport.queued_audio_duration` (the audio source's `queued_duration`);
  - `LiveKitParams.video_out_degradation_preference`, copied into the video publish options;
  - a non-live video mode that draws a picture once (plus a keep-alive) instead of re-drawing it;
  - `LiveKitParams.audio_in_frame_ms`, passed with the input sample rate to `rtc.AudioStream`.
"""

from __future__ import annotations

import asyncio
import time

from livekit import rtc
from pipecat.frames.frames import OutputImageRawFrame
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


def keep_video_framerate(transport: LiveKitTransport) -> None:
    """Publish the transport's video with `MAINTAIN_FRAMERATE`: under CPU or bandwidth load the
    WebRTC encoder then lowers the resolution instead of dropping frames (LiveKit's default
    keeps the resolution), as a talking face needs. Call before the pipeline connects."""
    client = transport._client
    build = client._video_publish_options

    def options() -> rtc.TrackPublishOptions:
        built = build()
        built.degradation_preference = (  # the IntEnum of the proto's enum
            rtc.DegradationPreference.MAINTAIN_FRAMERATE)  # type: ignore[assignment]
        return built

    client._video_publish_options = options  # type: ignore[method-assign]


def capture_changed_pictures_only(transport: LiveKitTransport, *, keepalive_s: float) -> None:
    """Hand LiveKit's video source a picture only when it changed, or when the last one is
    `keepalive_s` old: Pipecat's non-live loop re-draws the current picture at the track's frame
    rate, and each re-draw costs a colour conversion and a video encode (most of an idle room's
    CPU while the face is still or moves at its idle rate). Receivers keep showing the last
    picture; the keep-alive lets a new subscriber's key frame come without waiting for a change.
    Call before the pipeline starts."""
    output = transport.output()
    write = output.write_video_frame
    last: OutputImageRawFrame | None = None
    last_at = 0.0

    async def write_changed(frame: OutputImageRawFrame) -> bool:
        nonlocal last, last_at
        now = time.monotonic()
        if frame is last and now - last_at < keepalive_s:
            return True
        last, last_at = frame, now
        return await write(frame)

    output.write_video_frame = write_changed  # type: ignore[method-assign]


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
