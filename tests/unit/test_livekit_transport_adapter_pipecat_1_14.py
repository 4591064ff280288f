"""The LiveKit transport adapter (processors/livekit_transport_adapter.py) against the pinned
Pipecat 1.14 and livekit rtc 1.1: each private the adapter reads or changes is checked on a real
`LiveKitTransport` (no server), so an upgrade that moves one fails here, by name."""

from __future__ import annotations

import asyncio
import inspect

import numpy as np
import pipecat
import pytest
from livekit import rtc
from pipecat.frames.frames import OutputImageRawFrame
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.livekit.transport import (
    LiveKitParams,
    LiveKitTransport,
    LiveKitTransportClient,
)

from processors.livekit_transport_adapter import (
    capture_changed_pictures_only,
    keep_video_framerate,
    queued_audio_s,
    receive_audio_as,
    room_of,
)

PINNED = "1.14"
PINNED_RTC = "1.1"
BITRATE, FPS = 1_000_000, 27


@pytest.fixture
def transport() -> LiveKitTransport:
    return LiveKitTransport(
        url="ws://localhost:1", token="token", room_name="room",
        params=LiveKitParams(video_out_enabled=True, video_out_width=64, video_out_height=64,
                             video_out_framerate=FPS, video_out_max_bitrate=BITRATE))


def test_the_pinned_versions():
    assert pipecat.__version__.startswith(PINNED) and rtc.__version__.startswith(PINNED_RTC), (
        f"Pipecat {pipecat.__version__}, livekit rtc {rtc.__version__}: re-check "
        f"processors/livekit_transport_adapter.py against them and rename this test")


def test_the_transport_and_its_output_share_one_client(transport):
    assert isinstance(transport._client, LiveKitTransportClient)
    assert transport.output()._client is transport._client


def test_room_of_is_the_clients_room(transport):
    assert isinstance(LiveKitTransportClient.room, property)
    with pytest.raises(Exception, match="missing room object"):   # not set up yet
        room_of(transport)
    room = rtc.Room()
    transport._client._room = room                 # what the client's setup does
    assert room_of(transport) is room


async def test_queued_audio_s_is_what_the_clients_audio_source_still_holds(transport):
    client = transport._client
    assert client._audio_source is None            # until connected, then:
    assert "self._audio_source = rtc.AudioSource(" in inspect.getsource(client.connect)
    assert "self._audio_source.capture_frame(" in inspect.getsource(client.publish_audio)
    output = transport.output()
    assert queued_audio_s(output) == 0.0
    client._audio_source = rtc.AudioSource(24000, 1, queue_size_ms=1000)
    pcm = np.zeros(24 * 200, np.int16)
    await client._audio_source.capture_frame(rtc.AudioFrame(pcm.tobytes(), 24000, 1, len(pcm)))
    assert 0.15 <= queued_audio_s(output) <= 0.2
    assert queued_audio_s(BaseOutputTransport(TransportParams())) == 0.0
    await client._audio_source.aclose()


def test_keep_video_framerate_publishes_the_video_with_maintain_framerate(transport):
    client = transport._client
    assert "self._video_publish_options()" in inspect.getsource(client.connect)
    plain = client._video_publish_options()
    assert isinstance(plain, rtc.TrackPublishOptions)
    assert not plain.HasField("degradation_preference")   # LiveKit's default: keep resolution
    keep_video_framerate(transport)
    options = client._video_publish_options()
    assert options.degradation_preference == rtc.DegradationPreference.MAINTAIN_FRAMERATE
    assert options.source == rtc.TrackSource.SOURCE_CAMERA          # Pipecat's options kept
    assert (options.video_encoding.max_bitrate, options.video_encoding.max_framerate) == (
        BITRATE, FPS)


async def test_capture_changed_pictures_only_drops_re_draws_of_the_same_picture(transport):
    # Pipecat's non-live loop re-draws the current picture object through write_video_frame.
    sender = inspect.getsource(BaseOutputTransport.MediaSender)
    assert "self._video_images = itertools.cycle([image])" in sender
    assert "await self._transport.write_video_frame(frame)" in sender
    output = transport.output()
    written: list[OutputImageRawFrame] = []

    async def write(frame: OutputImageRawFrame) -> bool:
        written.append(frame)
        return True

    output.write_video_frame = write  # stands in for LiveKit's video source (no server here)
    capture_changed_pictures_only(transport, keepalive_s=0.2)
    one, two = (OutputImageRawFrame(image=bytes(12), size=(2, 2), format="RGB") for _ in range(2))
    for frame in (one, one, one, two, two):
        assert await output.write_video_frame(frame)
    assert written == [one, two]
    await asyncio.sleep(0.25)
    assert await output.write_video_frame(two)  # a keep-alive for new subscribers
    assert written == [one, two, two]


async def test_receive_audio_as_reads_each_participant_at_the_pipelines_rate_and_frame(transport):
    client = transport._client
    subscribed = inspect.getsource(client._async_on_track_subscribed)
    assert "self._audio_tracks[participant.identity] = track" in subscribed
    assert "audio_stream = rtc.AudioStream(track)" in subscribed
    assert "self._process_audio_stream(audio_stream, participant.identity)" in subscribed
    assert "self._audio_streams[participant.identity] = (audio_stream, task)" in subscribed
    receive_audio_as(transport, sample_rate=16000, frame_ms=32)
    # A local track stands in for a subscribed one (no server here); it is read the same way.
    source = rtc.AudioSource(48000, 1, queue_size_ms=1000)
    track = rtc.LocalAudioTrack.create_audio_track("person", source)
    client._audio_tracks["person"] = track
    pipecats = rtc.AudioStream(track)
    task = asyncio.create_task(client._process_audio_stream(pipecats, "person"))
    client._audio_streams["person"] = (pipecats, task)   # what _async_on_track_subscribed does next
    pcm = (np.sin(np.arange(480) * 0.1) * 8000).astype(np.int16).tobytes()
    for _ in range(20):
        await source.capture_frame(rtc.AudioFrame(pcm, 48000, 1, 480))
    event, identity = await asyncio.wait_for(client._audio_queue.get(), 5)
    assert identity == "person"
    assert (event.frame.sample_rate, event.frame.samples_per_channel) == (16000, 512)
    own, owner = client._audio_streams["person"]
    assert own is not pipecats and owner is task            # unsubscribing closes the bot's own
    await client._close_audio_stream("person")
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)
    assert task.done()
    await source.aclose()
