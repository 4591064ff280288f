"""Pipecat 1.14's LiveKit transport where its public API stops short, adapted in one place.

`LiveKitTransport` keeps its `LiveKitTransportClient` (shared with its input and output
transports) at `_client`. The bot needs three things only that client has: the `rtc.Room`
(participant kinds), the output `rtc.AudioSource` at `_audio_source` (audio handed to LiveKit
and not yet played, for playout-timed messages), and the video track's publish options, built
by `_video_publish_options()` (to keep the frame rate under load).
tests/unit/test_livekit_transport_adapter_pipecat_1_14.py pins these internals.

Upstream: public hooks that would remove this module —
  - `LiveKitTransport.room` (the client's `room` property, passed through);
  - `LiveKitOutputTransport.queued_audio_duration` (the audio source's `queued_duration`);
  - `LiveKitParams.video_out_degradation_preference`, copied into the video publish options.
"""

from __future__ import annotations

from livekit import rtc
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
