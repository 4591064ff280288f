"""The utterance latency observer (processors/utterance_latency.py) against the pinned Pipecat
1.14: the turns the bot's pipeline makes (utterance ended and transcribed, then the user turn
opens with an interruption) are fed to the stock observer and to ours on a driven clock. The
stock one measures them from the client connecting (the behaviour worked around, so a fix
upstream shows here); ours from the end of each utterance, turn after turn."""

from __future__ import annotations

import asyncio
import inspect

import pipecat
import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    ClientConnectedFrame,
    InterruptionFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    MetricsFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import TTFBMetricsData
from pipecat.observers.base_observer import FramePushed
from pipecat.observers.user_bot_latency_observer import (
    LatencyBreakdown,
    MeasuredFrom,
    UserBotLatencyObserver,
    _MomentKind,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from processors.utterance_latency import UtteranceLatencyObserver

PINNED = "1.14"
STOP_SECS = 0.3


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Turns:
    """Drives an observer through the frames of the bot's pipeline."""

    def __init__(self, observer_class: type[UserBotLatencyObserver]) -> None:
        self.clock = Clock()
        self.observer = observer_class(time_source=self.clock)
        self.breakdowns: list[LatencyBreakdown] = []
        self.measured: list[float] = []

        async def breakdown(_observer, value: LatencyBreakdown) -> None:
            self.breakdowns.append(value)

        async def measured(_observer, secs: float) -> None:
            self.measured.append(secs)

        self.observer.add_event_handler("on_latency_breakdown", breakdown)
        self.observer.add_event_handler("on_latency_measured", measured)
        self.stt, self.turns, self.llm, self.tts, self.out = (
            FrameProcessor(name=n) for n in ("STT", "Addressing", "LLM", "TTS", "Output"))

    async def push(self, frame, source: FrameProcessor, *, after: float = 0.0) -> None:
        self.clock.now += after
        await self.observer.on_push_frame(FramePushed(
            source=source, destination=self.out, frame=frame,
            direction=FrameDirection.DOWNSTREAM, timestamp=0))

    async def ttfb(self, processor: FrameProcessor, secs: float, *, after: float) -> None:
        await self.push(MetricsFrame(data=[TTFBMetricsData(processor=processor.name, value=secs)]),
                        processor, after=after)

    async def turn(self, *, quiet_for: float) -> None:
        """One question: said, quiet for the VAD's stop time, transcribed in 0.2 s, the turn
        opened (with its interruption) and closed, answered 0.4 s later, audio out 0.05 s on."""
        await self.push(VADUserStartedSpeakingFrame(start_secs=0.2), self.stt, after=quiet_for)
        await self.push(VADUserStoppedSpeakingFrame(stop_secs=STOP_SECS, timestamp=self.clock()),
                        self.stt)
        await self.ttfb(self.stt, 0.2, after=0.2)
        await self.push(TranscriptionFrame(text="What is the capital of France?", user_id="u",
                                           timestamp=""), self.stt)
        await self.push(InterruptionFrame(), self.turns)
        await self.push(UserStoppedSpeakingFrame(), self.turns)
        await self.push(LLMFullResponseStartFrame(), self.llm)
        await self.ttfb(self.llm, 0.3, after=0.3)
        await self.push(LLMTextFrame(text="Paris."), self.llm)
        await self.ttfb(self.tts, 0.1, after=0.1)
        await self.push(TTSAudioRawFrame(audio=b"\0\0" * 160, sample_rate=16000, num_channels=1),
                        self.tts)
        await self.push(BotStartedSpeakingFrame(), self.out, after=0.05)
        await asyncio.sleep(0.01)  # the observer runs its event handlers in tasks


async def three_turns(observer_class: type[UserBotLatencyObserver]) -> Turns:
    turns = Turns(observer_class)
    await turns.push(ClientConnectedFrame(), turns.out)
    for _ in range(3):
        await turns.turn(quiet_for=5.0)
    return turns


def test_the_pinned_version():
    assert pipecat.__version__.startswith(PINNED), (
        f"Pipecat {pipecat.__version__}: re-check processors/utterance_latency.py against this "
        "version's UserBotLatencyObserver and rename this test")


def test_the_parent_state_the_observer_reads():
    stock = UserBotLatencyObserver()
    for name in ("_user_stopped_time", "_user_turn_start_time", "_moments", "_ttfb"):
        assert hasattr(stock, name), name
    assert inspect.signature(stock._seen).parameters.keys() == {"kind"}
    for kind in ("VAD_STOP", "TRANSCRIPT", "LLM_REQUEST"):
        assert hasattr(_MomentKind, kind), kind
    source = inspect.getsource(UserBotLatencyObserver.on_push_frame)
    assert "isinstance(data.frame, InterruptionFrame)" in source
    assert "self._reset_accumulators()" in source


async def test_the_stock_observer_measures_these_turns_from_the_client_connecting():
    stock = await three_turns(UserBotLatencyObserver)
    assert [b.measured_from for b in stock.breakdowns] == [MeasuredFrom.CLIENT_CONNECTED] * 3
    totals = [b.total_secs for b in stock.breakdowns]
    assert totals == sorted(totals) and totals[-1] > 15, totals


async def test_each_turn_is_measured_from_the_end_of_its_utterance():
    ours = await three_turns(UtteranceLatencyObserver)
    # User quiet (0.3 s before the VAD stop) → bot speaking: 0.3 + 0.2 + 0.3 + 0.1 + 0.05 s.
    assert ours.measured == pytest.approx([0.95] * 3)
    for breakdown in ours.breakdowns:
        assert breakdown.measured_from is MeasuredFrom.USER_SILENCE
        assert breakdown.total_secs == pytest.approx(0.95)
        assert {t.processor for t in breakdown.ttfb} == {"STT", "LLM", "TTS"}
        assert {c.key: round(c.duration_secs, 3) for c in breakdown.contributions} == {
            "endpointing_wait": STOP_SECS, "transcription": 0.2, "llm_inference": 0.3,
            "speech_synthesis": 0.1, "output_transport": 0.05}


async def test_an_interruption_after_the_llm_was_asked_still_clears_the_turn():
    ours = Turns(UtteranceLatencyObserver)
    await ours.push(ClientConnectedFrame(), ours.out)
    await ours.push(VADUserStartedSpeakingFrame(start_secs=0.2), ours.stt, after=1.0)
    await ours.push(VADUserStoppedSpeakingFrame(stop_secs=STOP_SECS, timestamp=ours.clock()),
                    ours.stt)
    await ours.push(LLMFullResponseStartFrame(), ours.llm, after=0.2)
    await ours.push(InterruptionFrame(), ours.turns)
    assert ours.observer._user_turn_start_time is None
    assert ours.observer._moments == []
