"""LLMReplyGuard: a spoken notice instead of silence, and no reply in another language or a list."""

from __future__ import annotations

import socket
import time

import pytest
from pipecat.frames.frames import (
    AggregatedTextFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesAppendFrame,
    LLMTextFrame,
    MetricsFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
)
from pipecat.metrics.metrics import TextAggregationMetricsData
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.task import PipelineParams
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.ollama.llm import OLLamaLLMService
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService
from pipecat.tests.utils import SleepFrame, run_test

from bot.reply_guard import LANGUAGE, LIST, LLMReplyGuard, off_track

UNREACHABLE = "Sorry, my language model is not reachable right now."
EMPTY = "Sorry, I have no answer to that."
OFF_TRACK = "Sorry, let me answer that again in English another time."
REMINDER = "Answer in English, in one or two short sentences."


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _llm(port: int) -> OLLamaLLMService:
    return OLLamaLLMService(base_url=f"http://127.0.0.1:{port}/v1",
                            settings=OLLamaLLMService.Settings(model="none"))


def _guard(llm) -> LLMReplyGuard:
    return LLMReplyGuard(llm=llm, unreachable_notice=UNREACHABLE, empty_notice=EMPTY,
                         off_track_notice=OFF_TRACK, reminder=REMINDER)


def _reply(*chunks: str) -> list:
    return [LLMFullResponseStartFrame(), *(LLMTextFrame(c) for c in chunks),
            LLMFullResponseEndFrame()]


def _spoken(frames) -> str:
    return " ".join(f.text for f in frames if isinstance(f, AggregatedTextFrame))


def _notices(frames) -> list[str]:
    return [f.text for f in frames if isinstance(f, TTSSpeakFrame)]


async def test_unreachable_ollama_gives_the_spoken_notice():
    llm = _llm(_closed_port())
    guard = _guard(llm)
    context = LLMContext(messages=[{"role": "user", "content": "Hello?"}])
    down, _ = await run_test(Pipeline([llm, guard]), frames_to_send=[LLMContextFrame(context)])
    spoken = [f for f in down if isinstance(f, TTSSpeakFrame)]
    assert [f.text for f in spoken] == [UNREACHABLE]
    assert not spoken[0].append_to_context


async def test_empty_reply_gives_the_empty_notice_and_a_real_reply_none():
    guard = _guard(_llm(_closed_port()))
    empty = [LLMFullResponseStartFrame(), LLMTextFrame("  "), LLMFullResponseEndFrame()]
    answered = [LLMFullResponseStartFrame(), LLMTextFrame("Hi."), LLMFullResponseEndFrame()]
    down, _ = await run_test(guard, frames_to_send=empty + answered)
    assert _notices(down) == [EMPTY]


@pytest.mark.parametrize("text", [
    "Paris is the capital of France.", "A spider has eight legs.", "Piano.", "Bees make honey.",
    "Portuguese is spoken in Brazil.", "A kitten.", "Carbon dioxide.", "Seven days, Ava says!",
    "Why did the scarecrow win an award? Because he was outstanding in his field.",
    # langdetect alone reads these as Dutch or German (bench/llm_answer_bench.py found them)
    "Nine plus one equals ten.", "I'm Ava, a voice assistant in a video call.",
    "The Mona Lisa was painted by Leonardo da Vinci.",
])
def test_short_english_replies_pass(text):
    assert off_track(text) is None


@pytest.mark.parametrize("text, reason", [
    ("La capitale de la France est Paris.", LANGUAGE),
    ("Il y a sept jours dans une semaine.", LANGUAGE),
    ("El cielo es azul en un día claro.", LANGUAGE),
    ("Die Sonne geht im Osten auf.", LANGUAGE),
    ("Il sole sorge a est ogni mattina.", LANGUAGE),
    ("O Brasil fala português, não espanhol.", LANGUAGE),
    ("蜘蛛有八条腿。", LANGUAGE),
    ("Here are some fruits:\n- apple\n- banana", LIST),
    ("1. Paris\n2. Lyon", LIST),
])
def test_foreign_language_and_lists_are_caught(text, reason):
    assert off_track(text) == reason


async def test_a_drifting_reply_is_not_spoken_but_asked_again_once_then_a_notice():
    guard = _guard(_llm(_closed_port()))
    drift = _reply("La capitale ", "de la France ", "est Paris.")
    down, up = await run_test(guard, frames_to_send=drift + drift)
    assert _spoken(down) == ""
    again = [f for f in up if isinstance(f, LLMMessagesAppendFrame)]
    assert len(again) == 1 and again[0].run_llm and again[0].messages[0]["content"] == REMINDER
    assert _notices(down) == [OFF_TRACK]
    assert guard.counts[LANGUAGE] == 2 and guard.counts["regenerated"] == 1


async def test_an_english_reply_passes_whole_and_a_later_drift_is_cut():
    guard = _guard(_llm(_closed_port()))
    good = _reply("Paris is ", "the capital of France.", " It is lovely.")
    mixed = _reply("Paris is the capital of France.", " C'est une ville très belle et grande.")
    down, up = await run_test(guard, frames_to_send=good + mixed)
    assert _spoken(down) == ("Paris is the capital of France. It is lovely. "
                             "Paris is the capital of France.")
    assert not [f for f in up if isinstance(f, LLMMessagesAppendFrame)]
    assert _notices(down) == []


async def test_text_left_over_from_an_interrupted_reply_is_not_spoken():
    guard = _guard(_llm(_closed_port()))
    frames = [LLMFullResponseStartFrame(), LLMTextFrame("Paris is "), InterruptionFrame(),
              LLMTextFrame("La capitale de"), LLMFullResponseEndFrame()]
    down, _ = await run_test(guard, frames_to_send=frames)
    assert _spoken(down) == ""


@pytest.mark.parametrize("chunks, said", [
    (("Alice", ":", " The capital", " is Paris."), "The capital is Paris."),
    (("alice: The capital is Paris.",), "The capital is Paris."),
    (("Ava", ": ", "Sure", ", seven days."), "Sure, seven days."),
    (("Assistant:", " Hi."), "Hi."),
    # Not a label of anyone in the room: spoken as written.
    (("Note: ", "bees make honey."), "Note: bees make honey."),
    (("The answer", " is Alice: she won."), "The answer is Alice: she won."),
])
async def test_a_speaker_label_before_the_reply_is_not_spoken(chunks, said):
    guard = LLMReplyGuard(llm=_llm(_closed_port()), unreachable_notice=UNREACHABLE,
                          empty_notice=EMPTY, off_track_notice=OFF_TRACK, reminder=REMINDER,
                          speaker_names=lambda: ("Ava", "Alice", "Bob"))
    down, _ = await run_test(guard, frames_to_send=_reply(*chunks))
    assert _spoken(down) == said
    assert not _notices(down)
    assert guard.counts["speaker_label"] == (said != "".join(chunks))


async def test_the_hold_of_the_first_sentence_is_reported_as_text_aggregation():
    """The latency breakdown's "sentence aggregation" is the LLM writing the first sentence
    (held here), not the TTS's wait for a sentence that reaches it whole."""
    first = [LLMTextFrame("The capital"), SleepFrame(sleep=0.2), LLMTextFrame(" is Paris.")]
    down, _ = await run_test(
        _guard(_llm(_closed_port())),
        frames_to_send=[LLMFullResponseStartFrame(), *first, LLMTextFrame(" It is big."),
                        LLMFullResponseEndFrame()],
        pipeline_params=PipelineParams(enable_metrics=True))
    held = [(i, d) for i, f in enumerate(down) if isinstance(f, MetricsFrame)
            for d in f.data if isinstance(d, TextAggregationMetricsData)]
    assert len(held) == 1, held  # the first sentence only
    index, data = held[0]
    assert 0.2 <= data.value < 0.5, data.value
    first_text = next(i for i, f in enumerate(down) if isinstance(f, AggregatedTextFrame))
    assert index < first_text  # reported before the text goes on to the voice


@pytest.mark.parametrize("chunks, sentences", [
    (("Seven", " days.", " It is", " a week."), ["Seven days.", "It is a week."]),
    # Not sentence ends: a decimal, an abbreviation.
    (("It costs 3", ".", "5 dollars.", " Dr", ". Smith", " agrees."),
     ["It costs 3.5 dollars.", "Dr. Smith agrees."]),
    (("Is it?", " Yes", "!"), ["Is it?", "Yes!"]),
])
async def test_sentences_go_to_the_voice_whole_and_one_at_a_time(chunks, sentences):
    down, _ = await run_test(_guard(_llm(_closed_port())), frames_to_send=_reply(*chunks))
    assert [f.text for f in down if isinstance(f, AggregatedTextFrame)] == sentences


class TimedCallsTTS(TTSService):
    """A voice that notes when it is asked to speak each text."""

    def __init__(self):
        super().__init__(push_start_frame=True, push_stop_frames=True, sample_rate=16000,
                         settings=TTSSettings(model=None, voice=None, language=None))
        self.calls: list[tuple[float, str]] = []

    async def run_tts(self, text: str, context_id: str):
        self.calls.append((time.monotonic(), text))
        yield TTSAudioRawFrame(audio=b"\0\0" * 1600, sample_rate=16000, num_channels=1,
                               context_id=context_id)


async def test_the_voice_speaks_the_first_sentence_while_the_llm_writes_the_second():
    """Pipecat's TTS waits for the next sentence's first letter before it speaks streamed text;
    the guard holds that letter until the next sentence is judged, so a two-sentence reply
    was silent until the LLM had written both (0.95 s in a meeting)."""
    tts = TimedCallsTTS()
    reply = [LLMFullResponseStartFrame(), LLMTextFrame("Seven days."), SleepFrame(sleep=0.1),
             LLMTextFrame(" It"), SleepFrame(sleep=0.5), LLMTextFrame(" is a week."),
             LLMFullResponseEndFrame()]
    await run_test(Pipeline([_guard(_llm(_closed_port())), tts]), frames_to_send=reply)
    (first_at, first), (second_at, second) = tts.calls
    assert (first, second) == ("Seven days.", "It is a week.")
    assert second_at - first_at >= 0.4, tts.calls
