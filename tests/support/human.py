"""A "human" test participant on the real LiveKit SDK: a microphone fed from arrays, and
recorders for everything the room sends back (remote audio, video frames, data messages)."""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import numpy as np
from livekit import rtc

from tests.support.probe import SPEECH_DBFS, level_dbfs

MIC_SAMPLE_RATE = 48000
MIC_FRAME_MS = 10
# A short queue so that "captured" is within ~30 ms of "sent": figures measured from the
# capture clock stay honest.
MIC_QUEUE_MS = 30


@dataclass
class Received:
    """What the participant got from others, each item stamped with time.monotonic() on arrival."""

    audio: list[tuple[float, str, np.ndarray, int]] = field(default_factory=list)
    video: list[tuple[float, str, np.ndarray]] = field(default_factory=list)
    messages: list[tuple[float, str, str, bytes]] = field(default_factory=list)

    def summary(self) -> str:
        """Counts of what arrived per sender (audio frames, those carrying speech, video frames,
        message types), so that a timed-out wait says what did come."""
        out: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for _, who, samples, _ in list(self.audio):
            out[who]["audio"] += 1
            out[who]["audio with speech"] += int(level_dbfs(samples) > SPEECH_DBFS)
        for _, who, _ in list(self.video):
            out[who]["video"] += 1
        for _, who, topic, payload in list(self.messages):
            try:
                kind = json.loads(payload).get("type", "?")
            except (ValueError, AttributeError):
                kind = "?"
            out[who][f"msg:{topic or '-'}:{kind}"] += 1
        parts = [f"{who or '?'}: {dict(counts)}" for who, counts in out.items()]
        return "; ".join(parts) or "nothing"


class HumanParticipant:
    """Joins a room, talks through a real published microphone track, records what it receives.

    The microphone sends 10 ms frames continuously (silence between utterances), as a browser
    does, so voice-activity detectors on the other side see speech end.
    """

    def __init__(self, *, room: rtc.Room, video_format: rtc.VideoBufferType.ValueType) -> None:
        self.room = room
        self.received = Received()
        self._video_format = video_format
        self._source = rtc.AudioSource(MIC_SAMPLE_RATE, 1, queue_size_ms=MIC_QUEUE_MS)
        self._pending: collections.deque[np.ndarray] = collections.deque()
        self._tasks: set[asyncio.Task] = set()
        self._audio_tracks: dict[str, rtc.Track] = {}
        self.speech_started_at: float | None = None
        self.speech_ended_at: float | None = None

    # -- public API -----------------------------------------------------------------------------
    @classmethod
    @asynccontextmanager
    async def connect(cls, url: str, token: str, *, video_format=rtc.VideoBufferType.RGB24,
                      video: bool = True):
        """Join; with `video=False` only audio tracks are subscribed (no video is received or
        decoded here, so the load measured is the server side's); `video_format` I420 keeps
        only each picture's luma plane (2-D)."""
        room = rtc.Room()
        human = cls(room=room, video_format=video_format)
        room.on("track_subscribed", human._on_track)
        room.on("data_received", human._on_data)
        if not video:
            room.on("track_published", _subscribe_audio)
        await room.connect(url, token, rtc.RoomOptions(auto_subscribe=video))
        if not video:
            for participant in room.remote_participants.values():
                for publication in participant.track_publications.values():
                    _subscribe_audio(publication, participant)
        track = rtc.LocalAudioTrack.create_audio_track("microphone", human._source)
        await room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
        human._spawn(human._mic_loop())
        try:
            yield human
        finally:
            for task in human._tasks:
                task.cancel()
            await asyncio.gather(*human._tasks, return_exceptions=True)
            await room.disconnect()

    @property
    def identity(self) -> str:
        return self.room.local_participant.identity

    @property
    def audio(self):
        return self.received.audio

    @property
    def video(self):
        return self.received.video

    @property
    def messages(self):
        return self.received.messages

    async def publish_audio(
        self, samples: np.ndarray, sample_rate: int, *, wait: bool = True
    ) -> None:
        """Speak `samples` (int16 mono) into the microphone; with wait, return once all was sent.

        `speech_started_at` / `speech_ended_at` then hold when its first / last sample left.
        """
        if sample_rate != MIC_SAMPLE_RATE:
            samples = resample(samples, sample_rate, MIC_SAMPLE_RATE)
        self._pending.append(samples.astype(np.int16))
        self._queued += 1
        target = self._queued
        if wait:
            while self._spoken < target:  # noqa: ASYNC110 (polls foreign state)
                await asyncio.sleep(0.01)

    def stop_audio(self) -> None:
        """Drop what is still to be said, at once (as a bot cuts its audio on barge-in)."""
        self._pending.clear()
        self._cut = True
        self._source.clear_queue()

    async def wait_for(
        self, predicate: Callable[[], object], timeout: float, *, what: str = ""  # noqa: ASYNC109 (poll deadline)
    ) -> object:
        """Poll predicate until it returns something truthy; TimeoutError names `what`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            await asyncio.sleep(0.05)
        raise TimeoutError(
            f"timed out after {timeout:.0f}s waiting for {what or predicate}; "
            f"received: {self.received.summary()}"
        )

    async def playout_delay_s(self, identity: str) -> float:
        """Mean receive jitter-buffer delay of `identity`'s audio so far (WebRTC inbound-rtp
        stats), the delay a browser client adds to a timing message's clock as well."""
        track = self._audio_tracks.get(identity)
        if track is None:
            return 0.0
        for stat in await track.get_stats():
            if stat.WhichOneof("stats") == "inbound_rtp":
                inbound = stat.inbound_rtp.inbound
                if inbound.jitter_buffer_emitted_count:
                    return inbound.jitter_buffer_delay / inbound.jitter_buffer_emitted_count
        return 0.0

    async def send_data(self, payload: bytes | str, *, topic: str = "") -> None:
        await self.room.local_participant.publish_data(payload, reliable=True, topic=topic)

    # -- internals ------------------------------------------------------------------------------
    _queued = 0
    _spoken = 0
    _cut = False

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)

    async def _mic_loop(self) -> None:
        """Feed the source one 10 ms frame at a time; AudioSource paces it to real time."""
        frame_len = MIC_SAMPLE_RATE * MIC_FRAME_MS // 1000
        silence = np.zeros(frame_len, np.int16)
        current: np.ndarray | None = None
        pos = 0
        while True:
            last = False
            if self._cut:
                self._cut = False
                if current is not None:
                    current, self._spoken = None, self._queued
                    self.speech_ended_at = time.monotonic()
            if current is None and self._pending:
                current, pos = self._pending.popleft(), 0
                self.speech_started_at = time.monotonic() + MIC_QUEUE_MS / 1000
                self.speech_ended_at = None
            if current is not None:
                chunk = current[pos : pos + frame_len]
                pos += frame_len
                if len(chunk) < frame_len:
                    chunk = np.concatenate([chunk, silence[: frame_len - len(chunk)]])
                last = pos >= len(current)
            else:
                chunk = silence
            await self._source.capture_frame(
                rtc.AudioFrame(chunk.tobytes(), MIC_SAMPLE_RATE, 1, frame_len)
            )
            if last:
                # the last speech frame was just accepted into a MIC_QUEUE_MS queue
                self.speech_ended_at = time.monotonic() + MIC_QUEUE_MS / 1000
                current = None
                self._spoken += 1

    def _on_track(self, track: rtc.Track, publication, participant: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            self._audio_tracks[participant.identity] = track
            self._spawn(self._read_audio(track, participant.identity))
        elif track.kind == rtc.TrackKind.KIND_VIDEO:
            self._spawn(self._read_video(track, participant.identity))

    async def _read_audio(self, track: rtc.Track, identity: str) -> None:
        stream = rtc.AudioStream(track, sample_rate=MIC_SAMPLE_RATE, num_channels=1)
        async for event in stream:
            data = np.frombuffer(event.frame.data, dtype=np.int16).copy()
            self.received.audio.append((time.monotonic(), identity, data, event.frame.sample_rate))

    async def _read_video(self, track: rtc.Track, identity: str) -> None:
        stream = rtc.VideoStream(track, format=self._video_format)
        async for event in stream:
            frame = event.frame
            data = np.frombuffer(frame.data, dtype=np.uint8)
            if self._video_format == rtc.VideoBufferType.I420:
                # The decoder's own format, kept as its luma plane only: no colour conversion
                # and a third of the copy (a viewer that only reads brightness, the A/V probe).
                pixels = data[: frame.width * frame.height].reshape(frame.height, frame.width)
            else:
                channels = 3 if self._video_format == rtc.VideoBufferType.RGB24 else 4
                pixels = data.reshape(frame.height, frame.width, channels)
            self.received.video.append((time.monotonic(), identity, pixels.copy()))

    def _on_data(self, packet: rtc.DataPacket) -> None:
        sender = packet.participant.identity if packet.participant else ""
        self.received.messages.append(
            (time.monotonic(), sender, packet.topic or "", bytes(packet.data))
        )


def _subscribe_audio(publication: rtc.RemoteTrackPublication, _participant) -> None:
    if publication.kind == rtc.TrackKind.KIND_AUDIO:
        publication.set_subscribed(True)


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """int16 resampling with scipy's polyphase filter (test-side only)."""
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(src_rate, dst_rate)
    out = resample_poly(samples.astype(np.float32), dst_rate // g, src_rate // g)
    return np.clip(out, -32768, 32767).astype(np.int16)


