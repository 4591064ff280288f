"""The LiveKit transport adapter (processors/livekit_transport_adapter.py) against the pinned
Pipecat 1.14 and livekit rtc 1.1: each private the adapter reads or changes is checked on a real
`LiveKitTransport` (no server), so an upgrade that moves one fails here, by name."""

from __future__ import annotations

import asyncio
import inspect
import time

import numpy as np
import pipecat
import pytest
from livekit import rtc
from pipecat.frames.frames import (
    EndFrame,
    InterruptionFrame,
    OutputImageRawFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.livekit.transport import (
    LiveKitParams,
    LiveKitTransport,
    LiveKitTransportClient,
)

from processors.livekit_transport_adapter import (
    PicturesInStep,
    keep_every_picture,
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


def test_keep_every_picture_publishes_one_layer_with_maintain_framerate(transport):
    client = transport._client
    assert "self._video_publish_options()" in inspect.getsource(client.connect)
    plain = client._video_publish_options()
    assert isinstance(plain, rtc.TrackPublishOptions)
    assert not plain.HasField("degradation_preference")   # LiveKit's default: keep resolution
    assert not plain.HasField("simulcast")                # LiveKit's default: simulcast
    keep_every_picture(transport)
    options = client._video_publish_options()
    assert options.degradation_preference == rtc.DegradationPreference.MAINTAIN_FRAMERATE
    assert options.HasField("simulcast") and not options.simulcast
    assert options.source == rtc.TrackSource.SOURCE_CAMERA          # Pipecat's options kept
    assert (options.video_encoding.max_bitrate, options.video_encoding.max_framerate) == (
        BITRATE, FPS)


def test_pictures_in_step_hooks_what_pipecat_and_livekit_have():
    sender = inspect.getsource(BaseOutputTransport.MediaSender)
    # A sync_with_audio picture reaches _set_video_image from the audio task, after its audio.
    assert "await self._audio_queue.put(frame)" in sender
    assert "await self._set_video_image(frame)" in sender
    ready = inspect.getsource(BaseOutputTransport.set_transport_ready)
    assert "self._media_senders[None] = BaseOutputTransport.MediaSender(" in ready
    assert "self._client._audio_source.clear_queue()" in inspect.getsource(
        type(LiveKitTransport(url="", token="", room_name="").output()).process_frame)
    synchronizer = inspect.getsource(rtc.AVSynchronizer)
    assert "self._video_queue = asyncio.Queue" in synchronizer
    # Each picture is captured through the given video source inside the pacing's tick.
    assert ("async with self._fps_controller:\n                self._video_source.capture_frame("
            "frame)") in synchronizer
    assert "self._next_frame_time += self._frame_interval" in inspect.getsource(
        rtc.synchronizer._FPSController)


def picture(mark: int) -> OutputImageRawFrame:
    return OutputImageRawFrame(image=bytes([mark]) * (64 * 64 * 3), size=(64, 64), format="RGB")


# One 40 ms piece of speech audio at 24 kHz.
PIECE = rtc.AudioFrame(bytes(960 * 2), 24000, 1, 960)


async def pictures_in_step(transport, captured: list[tuple[float, int]], *, hold_ms: int):
    """`PicturesInStep` on the transport with real LiveKit sources (no room); each captured
    picture's time and mark go to `captured`. Returns Pipecat's `_set_video_image` (hooked)."""
    client, output = transport._client, transport.output()
    client._audio_source = rtc.AudioSource(24000, 1, queue_size_ms=200)
    client._video_source = rtc.VideoSource(64, 64)
    client._video_source.capture_frame = (  # type: ignore[method-assign]
        lambda frame, **_: captured.append((time.perf_counter(), frame.data[0])))

    async def ready(_frame):  # what Pipecat's set_transport_ready does (pinned above)
        output._media_senders[None] = BaseOutputTransport.MediaSender(
            output, destination=None, sample_rate=24000, audio_chunk_size=1920,
            params=output._params)

    async def process(_frame, _direction):  # the transport's own (clears the audio source)
        pass

    output.set_transport_ready, output.process_frame = ready, process
    PicturesInStep(transport, fps=25, queue_ms=200, hold_ms=hold_ms)
    await output.set_transport_ready(StartFrame())
    return output._media_senders[None]._set_video_image


async def test_pictures_in_step_are_captured_once_each_paced_from_their_audios_start(transport):
    client, output = transport._client, transport.output()
    captured: list[tuple[float, int]] = []
    set_image = await pictures_in_step(transport, captured, hold_ms=30)

    # Idle pictures, slower than the frame rate, each shown at once.
    for mark in (1, 2):
        await set_image(picture(mark))
        await asyncio.sleep(0.15)
    # Speech: 12 pieces of 40 ms, each followed by its picture, handed over as fast as LiveKit's
    # audio source takes them (as Pipecat's audio task does).
    started = time.perf_counter()
    for mark in range(10, 22):
        await client._audio_source.capture_frame(PIECE)
        await set_image(picture(mark))
    await asyncio.sleep(0.6)
    for mark in (30, 31, 32, 33):  # a turn cut short: its audio and pictures dropped together
        await client._audio_source.capture_frame(PIECE)
        await set_image(picture(mark))
    await output.process_frame(InterruptionFrame(), FrameDirection.DOWNSTREAM)
    assert client._audio_source.queued_duration == 0
    await asyncio.sleep(0.3)
    marks = [m for _, m in captured]
    assert 30 in marks and 33 not in marks, marks
    del marks[marks.index(30):]
    assert marks == [1, 2, *range(10, 22)]  # each picture exactly once, in order
    speech = [t - started for t, m in captured if 10 <= m < 30]
    assert 0.03 <= speech[0] < 0.05  # the first speaking picture shows as its audio starts + hold
    steps = np.diff(speech)
    assert np.all(np.abs(steps - 0.04) < 0.015), steps.round(3)  # then one per audio piece
    await output.process_frame(EndFrame(), FrameDirection.DOWNSTREAM)
    await client._audio_source.aclose()


async def test_pictures_in_step_come_back_in_step_with_their_audio_after_a_stall(transport):
    # A stalled event loop (a slow render, a busy machine) lets LiveKit's audio source run dry
    # while pictures wait in the synchronizer: the audio resumes later than the pictures' fixed
    # pacing, which kept the old anchor (at a LiveKit receiver: every click after a 250 ms stall
    # shifted by +44 ms, and by -40 ms in a CI run). Each speech picture is due when its audio
    # starts leaving the source (what the source still holds when the picture comes, less its
    # own piece), plus the hold.
    client = transport._client
    captured: list[tuple[float, int]] = []
    set_image = await pictures_in_step(transport, captured, hold_ms=20)
    due: dict[int, float] = {}
    for mark in range(1, 81):
        await client._audio_source.capture_frame(PIECE)
        due[mark] = time.perf_counter() + client._audio_source.queued_duration - 0.04 + 0.02
        await set_image(picture(mark))
        if mark == 20:
            time.sleep(0.25)  # noqa: ASYNC251 (the stall under test)
    await asyncio.sleep(0.5)
    assert [m for _, m in captured] == list(range(1, 81))
    late_ms = np.array([(t - due[m]) * 1000 for t, m in captured if m > 40])
    assert np.abs(np.median(late_ms)) < 12, late_ms.round()
    assert np.percentile(np.abs(late_ms), 90) < 20, late_ms.round()
    await transport.output().process_frame(EndFrame(), FrameDirection.DOWNSTREAM)
    await client._audio_source.aclose()


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
