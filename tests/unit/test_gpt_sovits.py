"""GPTSoVITSTTSService against the NAMED GPT-SoVITS stand-in server (tests/support/
gpt_sovits_standin.py): streaming, first audio before the server finishes, cancellation
mid-stream, server down (fallback voice), slow (timeout), garbage (clear error), aligned words."""

import asyncio

import numpy as np
import pytest
from faster_whisper import WhisperModel
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
    TTSUpdateSettingsFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from bot.settings import BotSettings
from processors.align.whisper_aligner import WhisperAligner
from processors.frames import PlayoutServerMessageFrame, SentenceTimingFrame
from processors.timing import TTS_TIMING_MESSAGE_TYPE
from processors.tts.embedded import EmbeddedVoice
from processors.tts.gpt_sovits import (
    GPTSoVITSError,
    GPTSoVITSSettings,
    GPTSoVITSStream,
    GPTSoVITSTTSService,
    GPTSoVITSVoice,
)
from processors.tts.hibari_voice import HibariVoice
from processors.tts.voice import VoiceSettings
from tests.support.gpt_sovits_standin import SAMPLE_RATE, GPTSoVITSStandIn
from tests.support.voices import PiperTestVoice

OUT_RATE = 24000


@pytest.fixture(scope="module")
def voice():
    return HibariVoice(seed=1)


@pytest.fixture(scope="module")
def aligner(whisper_model):
    """The full aligner: Whisper + silences + the embedded voice as reference (for visemes)."""
    return WhisperAligner(model=WhisperModel(whisper_model, device="cpu", compute_type="int8",
                                             cpu_threads=1), reference=HibariVoice(seed=5))


@pytest.fixture
def ref_clip(tmp_path):
    path = tmp_path / "ref.wav"
    path.write_bytes(b"RIFF")          # the stand-in only checks that the server can read it
    return GPTSoVITSVoice(ref_audio_path=str(path), prompt_text="Hello, this is my voice.")


@pytest.fixture
async def server():
    """The stand-in speaks with the Piper voice: not the aligner's reference voice (loaded
    before the server answers, so its first sentence is not slower than the timeouts)."""
    voice = PiperTestVoice()
    await asyncio.to_thread(voice.synthesize, "Hello.")
    async with GPTSoVITSStandIn(voice=voice) as s:
        yield s


def service(server, ref_clip, aligner, voice, **overrides):
    options = {"first_audio_timeout_s": 2.0, "chunk_timeout_s": 2.0, **overrides}
    options = GPTSoVITSSettings(url=server.url, voice=ref_clip, **options)
    return GPTSoVITSTTSService(options=options, aligner=aligner,
                               fallback=EmbeddedVoice(hibari=voice), sample_rate=OUT_RATE)


def llm_turn(text: str):
    return [LLMFullResponseStartFrame(), LLMTextFrame(text), LLMFullResponseEndFrame()]


def audio_of(frames) -> np.ndarray:
    chunks = [np.frombuffer(f.audio, np.int16) for f in frames if isinstance(f, TTSAudioRawFrame)]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def errors_of(frames) -> list[str]:
    return [f.error for f in frames if isinstance(f, ErrorFrame)]


def timing_messages(frames):
    return [
        f.data
        for f in frames
        if isinstance(f, PlayoutServerMessageFrame)
        and f.data.get("type") == TTS_TIMING_MESSAGE_TYPE
    ]


class FirstAudioProbe(FrameProcessor):
    """Notes how many streams the server had finished when the first audio frame passed."""

    def __init__(self, server: GPTSoVITSStandIn):
        super().__init__()
        self._server = server
        self.completed_at_first_audio: int | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame) and self.completed_at_first_audio is None:
            self.completed_at_first_audio = self._server.completed
        await self.push_frame(frame, direction)


async def test_streams_sentences_with_aligned_words(server, ref_clip, aligner, voice):
    server.realtime = 1.0  # the server takes as long as the audio lasts
    tts = service(server, ref_clip, aligner, voice)
    probe = FirstAudioProbe(server)
    down, up = await run_test(
        Pipeline([tts, probe]), frames_to_send=llm_turn("Good morning to you. How are you today?")
    )
    assert not errors_of(up)
    # One request per sentence with the voice and api_v2's parameters.
    assert [r["text"] for r in server.requests] == ["Good morning to you.", "How are you today?"]
    first = server.requests[0]
    assert first["ref_audio_path"] == ref_clip.ref_audio_path
    assert first["prompt_text"] == ref_clip.prompt_text
    assert (first["text_lang"], first["prompt_lang"], first["media_type"]) == ("en", "en", "wav")
    assert first["text_split_method"] == "cut0" and first["streaming_mode"] == 2
    # Audio passed on while the server was still streaming the first sentence.
    assert probe.completed_at_first_audio == 0
    assert server.completed == 2
    # All the server's 32 kHz audio arrives, resampled to the pipeline rate.
    expected = sum(s.duration for s in server.spoken)
    assert len(audio_of(down)) / OUT_RATE == pytest.approx(expected, abs=0.02)
    # Timings: an (empty) timing frame leads each sentence; aligned words follow in the message.
    assert [f.text for f in down if isinstance(f, SentenceTimingFrame)] == [
        r["text"] for r in server.requests
    ]
    messages = timing_messages(down)
    assert [m["words"] for m in messages] == [s.text.split() for s in server.spoken]
    for message, spoken in zip(messages, server.spoken, strict=False):
        truth = [round(w.start * 1000) for w in spoken.words]
        assert np.mean(np.abs(np.subtract(message["wtimes"], truth))) < 100, (message, truth)
    assert [
        f.text for f in down if isinstance(f, TTSTextFrame)
    ] == "Good morning to you. How are you today?".split()


async def test_holding_for_timings_gives_words_and_visemes_before_the_audio(
    server, ref_clip, aligner, voice
):
    tts = service(server, ref_clip, aligner, voice, hold_for_timings=True)
    down, up = await run_test(tts, frames_to_send=llm_turn("Nice to meet you."))
    assert not errors_of(up)
    first = next(f for f in down if isinstance(f, (SentenceTimingFrame, TTSAudioRawFrame)))
    assert isinstance(first, SentenceTimingFrame)
    assert [w.word for w in first.words] == ["Nice", "to", "meet", "you."]
    assert first.visemes and first.visemes[-1].end <= server.spoken[0].duration + 0.05


async def test_raw_media_type_at_the_configured_rate(server, ref_clip, aligner, voice):
    tts = service(server, ref_clip, aligner, voice, media_type="raw", raw_sample_rate=SAMPLE_RATE)
    down, _ = await run_test(tts, frames_to_send=llm_turn("Raw audio works too."))
    assert server.requests[0]["media_type"] == "raw"
    assert len(audio_of(down)) / OUT_RATE == pytest.approx(server.spoken[0].duration, abs=0.02)


async def test_barge_in_closes_the_http_stream(server, ref_clip, aligner, voice):
    server.realtime = 0.5  # slow enough that the interruption lands mid-stream
    tts = service(server, ref_clip, aligner, voice)
    down, _ = await run_test(
        tts,
        frames_to_send=[
            *llm_turn("This answer is rather long and it will be interrupted before it ends."),
            SleepFrame(0.8),
            InterruptionFrame(),
            SleepFrame(0.5),
        ],
    )
    assert len(audio_of(down)) > 0
    for _ in range(50):
        if server.disconnected:
            break
        await asyncio.sleep(0.05)
    assert server.disconnected == 1 and server.completed == 0


async def test_server_down_retries_once_then_the_embedded_voice_speaks(
    server, ref_clip, aligner, voice
):
    await server.go_down()
    tts = service(server, ref_clip, aligner, voice)
    down, up = await run_test(tts, frames_to_send=llm_turn("Can anybody hear me?"))
    assert not errors_of(up)
    fallback = voice.synthesize("Can anybody hear me?")
    assert len(audio_of(down)) == pytest.approx(len(fallback.audio), abs=10)
    # Exact timings of the fallback voice, not aligned ones.
    assert timing_messages(down)[0]["wtimes"] == [round(w.start * 1000) for w in fallback.words]
    # The server comes back: GPT-SoVITS speaks again.
    await server.come_up()
    down, _ = await run_test(tts, frames_to_send=llm_turn("We are back."))
    assert [r["text"] for r in server.requests] == ["We are back."]
    assert len(audio_of(down)) > 0


async def test_server_down_without_fallback_reports_the_error(server, ref_clip, aligner, voice):
    await server.go_down()
    tts = service(server, ref_clip, aligner, voice, fallback=False)
    down, up = await run_test(tts, frames_to_send=llm_turn("Is anybody there?"))
    errors = errors_of(up)
    assert errors and "cannot reach" in errors[0]
    assert len(audio_of(down)) == 0


async def test_slow_server_times_out_after_one_retry(server, ref_clip, aligner, voice):
    server.mode = "slow"
    tts = service(server, ref_clip, aligner, voice, fallback=False, first_audio_timeout_s=0.3)
    _, up = await run_test(tts, frames_to_send=llm_turn("Hello?"))
    errors = errors_of(up)
    assert errors and "no audio within 0.3 s" in errors[0]
    assert len(server.requests) == 2  # tried, retried once


async def test_garbage_answer_is_a_clear_error_and_not_retried(server, ref_clip, aligner, voice):
    server.mode = "garbage"
    tts = service(server, ref_clip, aligner, voice, fallback=False)
    _, up = await run_test(tts, frames_to_send=llm_turn("Say something."))
    errors = errors_of(up)
    assert errors and "not WAV" in errors[0]
    assert len(server.requests) == 1


async def test_refused_request_names_the_servers_reason(server, aligner, voice, tmp_path):
    missing = GPTSoVITSVoice(ref_audio_path=str(tmp_path / "gone.wav"), prompt_text="x")
    tts = service(server, missing, aligner, voice, fallback=False)
    _, up = await run_test(tts, frames_to_send=llm_turn("Hello there."))
    errors = errors_of(up)
    assert errors and "400" in errors[0] and "gone.wav not found" in errors[0]


async def test_stream_cut_mid_sentence_keeps_what_came_and_goes_on(
    server, ref_clip, aligner, voice
):
    server.mode = "cut"
    tts = service(server, ref_clip, aligner, voice)
    down, up = await run_test(tts, frames_to_send=llm_turn("First sentence here. Second one."))
    assert not errors_of(up)
    assert len(server.requests) == 2  # the cut sentence is not retried (audio was out)
    assert 0 < len(audio_of(down)) / OUT_RATE < sum(s.duration for s in server.spoken)


async def test_settings_update_changes_voice_and_speed_between_turns(
    server, ref_clip, aligner, voice, tmp_path
):
    other_clip = tmp_path / "other.wav"
    other_clip.write_bytes(b"RIFF")
    other = "0123456789ab"  # an id as the voice store makes them
    (tmp_path / "voices" / other).mkdir(parents=True)
    (tmp_path / "voices" / other / "voice.json").write_text(
        f'{{"ref_audio_path": "{other_clip}", "prompt_text": "Another voice.", '
        '"prompt_lang": "en"}'
    )
    tts = service(server, ref_clip, aligner, voice, voices_dir=tmp_path / "voices")
    _, up = await run_test(
        tts,
        frames_to_send=[
            *llm_turn("First voice."),
            SleepFrame(0.5),
            TTSUpdateSettingsFrame(delta=VoiceSettings(voice=other, speed=1.25)),
            *llm_turn("Second voice."),
        ],
    )
    assert not errors_of(up)
    assert [
        (r["text"], r["ref_audio_path"], r["prompt_text"], r["speed_factor"])
        for r in server.requests
    ] == [
        ("First voice.", ref_clip.ref_audio_path, ref_clip.prompt_text, 1.0),
        ("Second voice.", str(other_clip), "Another voice.", 1.25),
    ]


def test_settings_from_env(monkeypatch, tmp_path):
    voice_dir = tmp_path / "00000000000f"
    voice_dir.mkdir()
    (voice_dir / "voice.json").write_text(
        '{"ref_audio_path": "/x/ref.wav", "prompt_text": "Hi there.", "prompt_lang": "en"}'
    )
    monkeypatch.setenv("AVATAR_VOICES_DIR", str(tmp_path))
    monkeypatch.setenv("GPT_SOVITS_VOICE_ID", "00000000000f")
    monkeypatch.setenv("GPT_SOVITS_URL", "http://127.0.0.1:9999")
    monkeypatch.setenv("GPT_SOVITS_STREAMING_MODE", "3")
    monkeypatch.setenv("GPT_SOVITS_FALLBACK", "off")
    s = BotSettings.from_env().gpt_sovits
    assert s is not None
    assert s.voice == GPTSoVITSVoice("/x/ref.wav", "Hi there.", "en")
    assert (s.url, s.streaming_mode, s.fallback) == ("http://127.0.0.1:9999", 3, False)
    monkeypatch.setenv("GPT_SOVITS_STREAMING_MODE", "7")
    with pytest.raises(ValueError, match="GPT_SOVITS_STREAMING_MODE"):
        BotSettings.from_env()
    monkeypatch.setenv("GPT_SOVITS_STREAMING_MODE", "2")
    monkeypatch.setenv("GPT_SOVITS_VOICE_ID", "nope")
    with pytest.raises(ValueError, match="no stored voice 'nope'"):
        BotSettings.from_env()


def test_a_stored_voice_id_never_reads_outside_the_voices_folder(tmp_path):
    """GPT_SOVITS_VOICE_ID is an id of the store, not a path: "../other" finds no voice even
    where <voices>/../other/voice.json exists."""
    voices = tmp_path / "voices"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "voice.json").write_text(
        '{"ref_audio_path": "/x.wav", "prompt_text": "Hi.", "prompt_lang": "en"}')
    voices.mkdir()
    with pytest.raises(ValueError, match="no stored voice '../other'"):
        GPTSoVITSVoice.load("../other", voices)
    stored = voices / "0123456789ab"
    stored.mkdir()
    (stored / "voice.json").write_text((tmp_path / "other" / "voice.json").read_text())
    assert GPTSoVITSVoice.load("0123456789ab", voices).prompt_text == "Hi."


def test_no_voice_is_a_clear_error():
    server = GPTSoVITSStream(options=GPTSoVITSSettings())
    with pytest.raises(GPTSoVITSError, match="no GPT-SoVITS voice configured"):
        server.request_params("Hello.")
