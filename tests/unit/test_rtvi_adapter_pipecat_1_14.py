"""The RTVI adapter (processors/rtvi_adapter.py) against the pinned Pipecat 1.14.

Two halves: what Pipecat 1.14's own `RTVIObserver` sends for the frames of this pipeline (the
deviations the adapter exists for, and the override point it uses — when an upgrade changes
these, this file says so), and what the adapter sends for the same frames instead.
"""

from __future__ import annotations

import numpy as np
import pipecat
import pipecat.processors.frameworks.rtvi.models as RTVI
from livekit import rtc
from pipecat.frames.frames import (
    AggregatedTextFrame,
    AggregatedTextProgressFrame,
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    InterruptionFrame,
    MetricsFrame,
    OutputAudioRawFrame,
    TextType,
)
from pipecat.metrics.metrics import TTFBMetricsData, TurnMetricsData
from pipecat.observers.base_observer import FramePushed
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.processors.frameworks.rtvi import RTVIObserver
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams

from processors.frames import PlayoutServerMessageFrame
from processors.rtvi_adapter import PlayoutRTVIObserver, PlayoutRTVIProcessor

PINNED = "1.14"


class Recording(PlayoutRTVIProcessor):
    """The adapter's RTVI processor, recording what it would put on the data channel."""

    def __init__(self, client_version=(2, 2, 0)):
        super().__init__()
        self._client_version = list(client_version)
        self.sent: list[dict] = []

    async def push_transport_message(self, model, exclude_none: bool = True):
        self.sent.append(model.model_dump(exclude_none=exclude_none))


class Pipeline:
    """Feeds an observer frames as the pipeline would push them."""

    def __init__(self, observer: RTVIObserver):
        self.observer = observer
        self.output = BaseOutputTransport(TransportParams())
        self.other = FrameProcessor()

    async def push(self, frame, *, by_output: bool = False, first_push: bool = True):
        source = self.output if by_output else self.other
        await self.observer.on_push_frame(FramePushed(
            source=source, destination=self.other, frame=frame,
            direction=FrameDirection.DOWNSTREAM, timestamp=0, first_push=first_push))


def sentence(text: str) -> AggregatedTextFrame:
    frame = AggregatedTextFrame(text=text, text_type=TextType.SENTENCE)
    frame.will_be_spoken = True
    return frame


def progress(segment: AggregatedTextFrame, accumulated: str, remaining: str):
    return AggregatedTextProgressFrame(
        segment_id=segment.id, context_id=None, text=segment.text, text_type=TextType.SENTENCE,
        accumulated_text=accumulated, remaining_text=remaining)


async def conversation(pipeline: Pipeline) -> None:
    """A barge-in on silence, metrics the observer cannot translate, and a sentence whose
    first word is played before the bot counts as speaking."""
    await pipeline.push(InterruptionFrame())
    await pipeline.push(MetricsFrame(data=[TurnMetricsData(
        processor="turn", is_complete=True, probability=0.9, e2e_processing_time_ms=1.0)]))
    await pipeline.push(MetricsFrame(data=[TTFBMetricsData(processor="tts", value=0.1)]))
    hello = sentence("Hello there.")
    await pipeline.push(hello, by_output=True, first_push=False)
    await pipeline.push(progress(hello, "Hello", " there."), by_output=True, first_push=False)
    await pipeline.push(BotStartedSpeakingFrame(), by_output=True)
    await pipeline.push(progress(hello, "Hello there.", ""), by_output=True, first_push=False)
    await pipeline.push(InterruptionFrame())
    await pipeline.push(BotStoppedSpeakingFrame(), by_output=True)


def types(sent: list[dict]) -> list[str]:
    return [m["type"] + (f":{m['data']['spoken_status']}" if m["type"] == "bot-output" else "")
            for m in sent]


def test_the_pinned_version():
    assert pipecat.__version__.startswith(PINNED), (
        f"Pipecat {pipecat.__version__}: re-check processors/rtvi_adapter.py against this "
        f"version's RTVIObserver and rename this test")


async def test_pipecat_observer_deviations_the_adapter_exists_for():
    rtvi = Recording()
    pipeline = Pipeline(RTVIObserver(rtvi))    # the plain observer, through the same processor
    await conversation(pipeline)
    assert types(rtvi.sent) == [
        "bot-interrupted",                     # while the bot was silent
        "metrics", "metrics",
        "bot-output:in-progress",              # before its segment's "new"
        "bot-started-speaking",
        "bot-output:new",
        "bot-output:completed",
        "bot-interrupted",
        "bot-stopped-speaking",
    ]
    assert rtvi.sent[1]["data"] == {}          # metrics it cannot translate: empty
    assert rtvi.sent[5]["data"]["spoken"] is False   # the v1 field, to a 2.2.0 client


async def test_adapter_sends_conforming_messages():
    rtvi = Recording()
    observer = rtvi.create_rtvi_observer()
    assert isinstance(observer, PlayoutRTVIObserver)
    await conversation(Pipeline(observer))
    assert types(rtvi.sent) == [
        "metrics",
        "bot-output:new",                      # announced with its first word
        "bot-output:in-progress",
        "bot-started-speaking",
        "bot-output:completed",
        "bot-interrupted",                     # only while it spoke
        "bot-stopped-speaking",
    ]
    new = rtvi.sent[1]["data"]
    assert new["text"] == "Hello there." and new["will_be_spoken"] is True
    assert new["spoken_progress"] == {"accumulated_text": "", "remaining_text": "Hello there."}
    assert all("spoken" not in m["data"] for m in rtvi.sent if m["type"] == "bot-output")
    for message in rtvi.sent:                  # each still a valid Pipecat RTVI message
        if message["type"] == "bot-output":
            RTVI.BotOutputMessage.model_validate(message)


async def test_adapter_keeps_v1_output_for_a_legacy_client():
    rtvi = Recording(client_version=(1, 4, 0))
    await conversation(Pipeline(rtvi.create_rtvi_observer()))
    outputs = [m["data"] for m in rtvi.sent if m["type"] == "bot-output"]
    assert outputs and all("spoken" in d for d in outputs)


async def test_playout_message_is_sent_when_the_output_transport_passes_it_on():
    rtvi = Recording()
    pipeline = Pipeline(rtvi.create_rtvi_observer())
    message = PlayoutServerMessageFrame(data={"type": "bot-tts-timing", "seq": 1})
    await pipeline.push(message)               # pushed by the TTS: not yet
    assert rtvi.sent == []
    await pipeline.push(message, by_output=True, first_push=False)
    assert rtvi.sent == [{"label": "rtvi-ai", "type": "server-message",
                          "data": {"type": "bot-tts-timing", "seq": 1}}]


async def test_a_message_with_the_next_audio_waits_for_that_audio_to_be_handed_over():
    rtvi = Recording()
    pipeline = Pipeline(rtvi.create_rtvi_observer())
    source = rtc.AudioSource(24000, 1, queue_size_ms=1000)
    pipeline.output._client = type("Client", (), {"_audio_source": source})()

    async def hand_over(ms: int):
        """What the LiveKit output transport does with an audio frame: write, then push it."""
        pcm = np.zeros(24 * ms, np.int16)
        await source.capture_frame(rtc.AudioFrame(pcm.tobytes(), 24000, 1, len(pcm)))
        await pipeline.push(OutputAudioRawFrame(pcm.tobytes(), 24000, 1), by_output=True,
                            first_push=False)

    await hand_over(300)                       # the end of the sentence before
    timing = PlayoutServerMessageFrame(data={"type": "bot-tts-timing", "played_ms": 0},
                                       with_next_audio=True)
    await pipeline.push(timing, by_output=True, first_push=False)
    assert rtvi.sent == []                     # not before its sentence's first audio
    await hand_over(40)
    played = rtvi.sent[0]["data"]["played_ms"]
    assert -300 <= played <= -250, played      # 300 ms of the sentence before still to play

    await pipeline.push(timing, by_output=True, first_push=False)
    await pipeline.push(InterruptionFrame())   # cut off before its audio: never sent
    await hand_over(40)
    assert len(rtvi.sent) == 1
    await source.aclose()
