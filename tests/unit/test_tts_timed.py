"""Timed TTS services in a Pipecat pipeline: frame order, cumulative word times, bot-tts-timing,
interruption, failure, and the streaming (bare audio + aligner) path."""

import asyncio

import numpy as np
import pytest
from pipecat.frames.frames import (
    ErrorFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.utils.time import nanoseconds_to_seconds
from scipy.signal import resample_poly

from avatar_core.settings import load_settings
from processors.frames import PlayoutServerMessageFrame, SentenceTimingFrame
from processors.timing import TTS_TIMING_MESSAGE_TYPE, TimedSpeech
from processors.tts.embedded import EmbeddedTTSService, EmbeddedVoice, EmbeddedVoiceSettings
from processors.tts.hibari_voice import HibariVoice
from processors.tts.timed import TimedTTSService
from processors.tts.voice import AlignedVoice, AudioChunk, StreamedVoice, VoiceSettings

REPLY = ["Hello there, my friend.", "It is a lovely day for a walk.", "Shall we go?"]
NEVER_FINISHED = "This sentence is never finished."


@pytest.fixture(scope="module")
def voice():
    return HibariVoice(seed=1)


def llm_turn(*chunks: str):
    return [
        LLMFullResponseStartFrame(),
        *(LLMTextFrame(c) for c in chunks),
        LLMFullResponseEndFrame(),
    ]


def sentences_of(frames):
    """[(SentenceTimingFrame, int16 audio that followed it)] in order; asserts audio never comes
    before its sentence's timing frame."""
    out = []
    for f in frames:
        if isinstance(f, SentenceTimingFrame):
            out.append((f, []))
        elif isinstance(f, TTSAudioRawFrame):
            assert out, "audio before any SentenceTimingFrame"
            out[-1][1].append(np.frombuffer(f.audio, np.int16))
    return [(t, np.concatenate(a) if a else np.zeros(0, np.int16)) for t, a in out]


def timing_messages(frames):
    return [
        f.data
        for f in frames
        if isinstance(f, PlayoutServerMessageFrame)
        and f.data.get("type") == TTS_TIMING_MESSAGE_TYPE
    ]


async def test_llm_turn_frames_messages_and_cumulative_word_times(voice):
    tts = EmbeddedTTSService(voice=EmbeddedVoice(hibari=voice))
    down, _ = await run_test(
        tts,
        frames_to_send=llm_turn(
            "Hello there, ", "my friend. It is a lovely", " day for a walk. Shall we go?"
        ),
    )
    assert isinstance(
        next(f for f in down if isinstance(f, (TTSStartedFrame, TTSAudioRawFrame))), TTSStartedFrame
    )
    assert isinstance(
        [f for f in down if isinstance(f, (TTSStoppedFrame, TTSAudioRawFrame))][-1], TTSStoppedFrame
    )

    sentences = sentences_of(down)
    assert [t.text for t, _ in sentences] == REPLY
    audio_frames = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert all(f.sample_rate == 24000 and len(f.audio) <= 2 * 960 for f in audio_frames)  # ≤ 40 ms
    context_ids = {t.context_id for t, _ in sentences}
    assert len(context_ids) == 1 and None not in context_ids  # one turn, one context

    messages = timing_messages(down)
    assert [m["seq"] for m in messages] == [t.seq for t, _ in sentences] == [1, 2, 3]
    for message, (timing, audio) in zip(messages, sentences, strict=False):
        assert " ".join(message["words"]) == message["text"] == timing.text
        assert message["wtimes"] == [round(w.start * 1000) for w in timing.words]
        assert message["visemes"] == [v.viseme for v in timing.visemes]
        # Timings lie inside the audio that follows the timing frame.
        assert timing.words[-1].end <= len(audio) / 24000 + 1e-6
        assert timing.visemes[-1].end == pytest.approx(len(audio) / 24000, abs=1e-6)

    # Word frames: every word once, in order, at the turn-cumulative time of its sentence.
    words = [f for f in down if isinstance(f, TTSTextFrame)]
    assert [w.text for w in words] == " ".join(REPLY).split()
    expected, offset = [], 0.0
    for timing, audio in sentences:
        expected += [offset + w.start for w in timing.words]
        offset += len(audio) / 24000
    got = [nanoseconds_to_seconds(w.pts - words[0].pts) for w in words]
    assert got == pytest.approx([e - expected[0] for e in expected], abs=1e-6)


async def test_speak_frame_is_split_into_timed_sentences_and_seq_keeps_rising(voice):
    tts = EmbeddedTTSService(voice=EmbeddedVoice(hibari=voice))
    down, _ = await run_test(
        tts,
        frames_to_send=[
            TTSSpeakFrame("Welcome! I am your avatar."),
            SleepFrame(0.3),
            TTSSpeakFrame("Ask me anything."),
        ],
    )
    sentences = sentences_of(down)
    assert [t.text for t, _ in sentences] == ["Welcome!", "I am your avatar.", "Ask me anything."]
    assert [m["seq"] for m in timing_messages(down)] == [1, 2, 3]
    assert len({t.context_id for t, _ in sentences}) == 2  # two speak frames


async def test_markdown_is_not_read_out(voice):
    tts = EmbeddedTTSService(voice=EmbeddedVoice(hibari=voice))
    down, _ = await run_test(tts, frames_to_send=llm_turn("**Hello** there, _friend_."))
    assert [" ".join(m["words"]) for m in timing_messages(down)] == ["Hello there, friend."]
    assert [f.text for f in down if isinstance(f, TTSTextFrame)] == ["Hello", "there,", "friend."]


class HoldingVoice(EmbeddedVoice):
    """The embedded voice, except that NEVER_FINISHED is synthesized forever (until cancelled)."""

    async def synthesize(self, text: str, **voicing) -> TimedSpeech:
        if text == NEVER_FINISHED:
            await asyncio.Event().wait()
        return await super().synthesize(text, **voicing)


async def test_interruption_stops_the_turn_and_the_next_turn_speaks(voice):
    tts = EmbeddedTTSService(voice=HoldingVoice(hibari=voice))
    down, _ = await run_test(
        tts,
        frames_to_send=[
            *llm_turn(f"First part is spoken. {NEVER_FINISHED} Nor is this one."),
            SleepFrame(0.5),
            InterruptionFrame(),
            SleepFrame(0.1),
            *llm_turn("Next answer."),
            SleepFrame(0.3),
        ],
    )
    cut = next(i for i, f in enumerate(down) if isinstance(f, InterruptionFrame))
    before, after = sentences_of(down[:cut]), sentences_of(down[cut:])
    assert [t.text for t, _ in before] == ["First part is spoken."]
    assert [t.text for t, _ in after] == ["Next answer."]
    assert before[0][0].context_id != after[0][0].context_id
    old_audio_after_cut = [
        f
        for f in down[cut:]
        if isinstance(f, TTSAudioRawFrame) and f.context_id == before[0][0].context_id
    ]
    assert old_audio_after_cut == []
    spoken = [f.text for f in down if isinstance(f, TTSTextFrame)]
    assert "never" not in spoken and spoken[-2:] == ["Next", "answer."]


async def test_unpronounceable_replies_do_not_silence_the_voice(voice):
    tts = EmbeddedTTSService(voice=EmbeddedVoice(hibari=voice))
    nothing = [frame for _ in range(4) for frame in (*llm_turn("😀 👍"), SleepFrame(0.2))]
    down, _ = await run_test(tts, frames_to_send=[*nothing, *llm_turn("Still here.")])
    assert [t.text for t, _ in sentences_of(down)] == ["Still here."]
    assert tts.is_usable


class SlowVoice(EmbeddedVoice):
    """The embedded voice taking longer over a sentence than Pipecat waits on a quiet context."""

    async def synthesize(self, text: str, **voicing) -> TimedSpeech:
        if text.startswith("Slow"):
            await asyncio.sleep(3 * self.QUIET_S)
        return await super().synthesize(text, **voicing)

    QUIET_S = 0.3


async def test_slow_sentence_keeps_the_turn_open(voice):
    tts = EmbeddedTTSService(voice=SlowVoice(hibari=voice), stop_frame_timeout_s=SlowVoice.QUIET_S)
    down, up = await run_test(tts, frames_to_send=llm_turn("Quick one. Slow one follows."))
    assert [
        f.text for f in down if isinstance(f, TTSTextFrame)
    ] == "Quick one. Slow one follows.".split()
    assert sum(isinstance(f, TTSStoppedFrame) for f in down) == 1
    assert not [f for f in up if isinstance(f, ErrorFrame)]


class FailingOnceVoice(EmbeddedVoice):
    """The embedded voice whose synthesis fails for one sentence (a broken model call)."""

    async def synthesize(self, text: str, **voicing) -> TimedSpeech:
        if text.startswith("Broken"):
            raise RuntimeError("model exploded")
        return await super().synthesize(text, **voicing)


async def test_failed_sentence_reports_an_error_and_the_service_recovers(voice):
    tts = EmbeddedTTSService(voice=FailingOnceVoice(hibari=voice))
    down, up = await run_test(
        tts,
        frames_to_send=[
            *llm_turn("Broken sentence here."),
            SleepFrame(0.3),
            *llm_turn("All good now."),
        ],
    )
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and "model exploded" in errors[0].error
    assert [t.text for t, _ in sentences_of(down)] == ["All good now."]


class StreamingStandIn:
    """Named stand-in for a voice that streams bare audio (like GPT-SoVITS) and its aligner: it
    streams the embedded voice's audio at 16 kHz in 100 ms chunks, and its "aligner" returns
    that voice's exact timings, so the expected output is known."""

    SOURCE_RATE = 16000

    def __init__(self, *, voice: HibariVoice):
        self._voice = voice
        self.aligned: list[str] = []

    async def stream(self, text: str, **voicing):
        audio = resample_poly(self._voice.synthesize(text).audio, 2, 3).astype(np.int16)
        step = self.SOURCE_RATE // 10
        for i in range(0, len(audio), step):
            await asyncio.sleep(0)
            yield AudioChunk(audio[i : i + step], self.SOURCE_RATE)

    def align(self, text, audio, sample_rate):
        assert sample_rate == self.SOURCE_RATE and len(audio) > 0
        self.aligned.append(text)
        exact = self._voice.synthesize(text)
        return TimedSpeech(
            text=text,
            audio=audio,
            sample_rate=sample_rate,
            words=exact.words,
            visemes=exact.visemes,
        )


@pytest.mark.parametrize("stream_before_timings", [False, True])
async def test_streaming_voice_with_an_aligner(voice, stream_before_timings):
    stand_in = StreamingStandIn(voice=voice)
    kind = StreamedVoice if stream_before_timings else AlignedVoice
    tts = TimedTTSService(voice=kind(voice=stand_in, aligner=stand_in), sample_rate=24000)
    down, _ = await run_test(tts, frames_to_send=llm_turn("Good morning. How are you?"))
    assert stand_in.aligned == ["Good morning.", "How are you?"]
    sentences = sentences_of(down)
    assert [t.text for t, _ in sentences] == stand_in.aligned
    for timing, audio in sentences:  # resampled to the service's 24 kHz
        assert len(audio) / 24000 == pytest.approx(voice.synthesize(timing.text).duration, abs=0.01)
        if stream_before_timings:  # timings come after the audio: none in the frame
            assert timing.words == [] and timing.visemes == []
        else:
            assert [w.word for w in timing.words] == timing.text.split()
    messages = timing_messages(down)
    assert [" ".join(m["words"]) for m in messages] == stand_in.aligned
    first_message = down.index(next(f for f in down if isinstance(f, PlayoutServerMessageFrame)))
    first_audio = down.index(next(f for f in down if isinstance(f, TTSAudioRawFrame)))
    first_timing = down.index(next(f for f in down if isinstance(f, SentenceTimingFrame)))
    if stream_before_timings:  # the message follows its sentence's audio...
        assert first_audio < first_message
        # ...and says that the whole sentence had been played when it was released.
        assert [m["played_ms"] for m in messages] == [
            round(len(audio) / 24) for _, audio in sentences
        ]
        assert not any(f.with_next_audio for f in down if isinstance(f, PlayoutServerMessageFrame))
    else:  # released with the sentence's first audio
        assert first_message < first_timing < first_audio
        assert all(m["played_ms"] == 0 for m in messages)
        assert all(f.with_next_audio for f in down if isinstance(f, PlayoutServerMessageFrame))
    words = [f for f in down if isinstance(f, TTSTextFrame)]
    assert [w.text for w in words] == "Good morning. How are you?".split()
    pts = [w.pts for w in words]
    assert pts == sorted(pts)
    # The second sentence's words start after the first sentence's (16 kHz) audio.
    first_len = len(sentences[0][1]) / 24000
    second_first_word = nanoseconds_to_seconds(words[2].pts - words[0].pts) + next(
        w.start for w in voice.synthesize("Good morning.").words
    )
    assert second_first_word == pytest.approx(
        first_len + voice.synthesize("How are you?").words[0].start, abs=0.01
    )


class RecordingVoice(EmbeddedVoice):
    """The embedded voice, noting the voice and speed each sentence is asked for; it speaks in
    its own voice at that speed (only one hibari voice is installed offline)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.asked: list[dict] = []

    async def synthesize(self, text: str, *, voice=None, speed=None) -> TimedSpeech:
        self.asked.append({"voice": voice, "speed": speed})
        return await super().synthesize(text, speed=speed)


async def test_settings_update_changes_voice_and_speed_of_the_next_sentence(voice):
    recording = RecordingVoice(hibari=voice)
    tts = EmbeddedTTSService(voice=recording)
    down, _ = await run_test(
        tts,
        frames_to_send=[
            TTSSpeakFrame("Shall we go for a walk?"),
            SleepFrame(0.5),
            TTSUpdateSettingsFrame(delta=VoiceSettings(voice="emma", speed=2.0)),
            TTSSpeakFrame("Shall we go for a walk?"),
        ],
    )
    assert recording.asked == [{"voice": "heart", "speed": 1.0}, {"voice": "emma", "speed": 2.0}]
    (_, before), (_, after) = sentences_of(down)
    assert len(after) < 0.7 * len(before)  # twice as fast


def voice_settings() -> EmbeddedVoiceSettings:
    """The voice options as the bot takes them from the settings tree."""
    return EmbeddedVoiceSettings(**load_settings().bot.voice.given())


def test_settings_from_env(monkeypatch):
    monkeypatch.setenv("AVATAR_VOICE", "heart")
    monkeypatch.setenv("AVATAR_VOICE_SPEED", "1.2")
    monkeypatch.setenv("AVATAR_VOICE_THREADS", "2")
    assert voice_settings() == EmbeddedVoiceSettings("heart", 1.2, 2)
    monkeypatch.setenv("AVATAR_VOICE_SPEED", "fast")
    with pytest.raises(ValueError, match="AVATAR_VOICE_SPEED"):
        voice_settings()


def test_settings_defaults_without_env(monkeypatch):
    for name in ("AVATAR_VOICE", "AVATAR_VOICE_SPEED", "AVATAR_VOICE_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert voice_settings() == EmbeddedVoiceSettings("heart", 1.0, 1)
