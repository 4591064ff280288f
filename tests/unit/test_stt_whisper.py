"""DecodingWhisperSTTService: Pipecat's Whisper STT with the beam width and prompts it lacks."""

from __future__ import annotations

import numpy as np
import pytest
from pipecat.frames.frames import (
    InputAudioRawFrame,
    TranscriptionFrame,
    UserAudioRawFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import run_test

from processors.frames import SpeechPausedFrame, SpeechResumedFrame
from processors.stt.whisper import DecodingWhisperSTTService
from stack.models import whisper_model
from tests.support.human import resample
from tests.support.speech import speak


@pytest.fixture(scope="module")
def question_pcm() -> bytes:
    samples, rate = speak("How many legs does a spider have?")
    return resample(samples, rate, 16000).astype(np.int16).tobytes()


async def _transcribe(stt: DecodingWhisperSTTService, pcm: bytes) -> str:
    """One VAD-delimited utterance through the service, as the pipeline sends it."""
    chunk = 16000 * 2 // 50  # 20 ms
    audio = [InputAudioRawFrame(pcm[i:i + chunk], 16000, 1) for i in range(0, len(pcm), chunk)]
    down, _ = await run_test(stt, frames_to_send=[VADUserStartedSpeakingFrame(), *audio,
                                                   VADUserStoppedSpeakingFrame()])
    return " ".join(f.text for f in down if isinstance(f, TranscriptionFrame)).lower()


def _model_calls(stt: DecodingWhisperSTTService, monkeypatch) -> list[tuple[int, dict]]:
    """The runs of the real model (early or not), as (samples, options), one entry per run."""
    calls: list[tuple[int, dict]] = []
    transcribe = stt._model._model.transcribe

    def recorded(audio, **options):
        calls.append((len(audio), options))
        return transcribe(audio, **options)

    monkeypatch.setattr(stt._model._model, "transcribe", recorded)
    return calls


@pytest.mark.parametrize("beam_size", [1, 5])
async def test_transcribes_with_the_chosen_beam(question_pcm, beam_size, monkeypatch):
    stt = DecodingWhisperSTTService(model=whisper_model("", None), beam_size=beam_size,
                                    hotwords="Ava", initial_prompt="Ava, a question for you.")
    calls = _model_calls(stt, monkeypatch)
    text = await _transcribe(stt, question_pcm)
    assert "spider" in text and "legs" in text, text
    (_, seen), = calls
    assert seen["beam_size"] == beam_size
    assert seen["hotwords"] == "Ava" and seen["initial_prompt"] == "Ava, a question for you."


async def _transcribe_after(stt, early_frames: list, pcm: bytes) -> str:
    """The utterance `pcm` + 0.2 s of quiet through the service, after `early_frames`."""
    chunk = 16000 * 2 // 50
    pcm += bytes(2 * 16000 // 5)
    audio = [UserAudioRawFrame(pcm[i:i + chunk], 16000, 1, user_id="alice")
             for i in range(0, len(pcm), chunk)]
    down, _ = await run_test(stt, frames_to_send=[
        *early_frames, VADUserStartedSpeakingFrame(), *audio, VADUserStoppedSpeakingFrame()])
    assert not [f for f in down if isinstance(f, (SpeechPausedFrame, SpeechResumedFrame))]
    return " ".join(f.text for f in down if isinstance(f, TranscriptionFrame)).lower()


async def test_an_utterance_that_ended_at_its_pause_is_transcribed_once_early(
        question_pcm, monkeypatch):
    stt = DecodingWhisperSTTService(model=whisper_model("", None))
    calls = _model_calls(stt, monkeypatch)
    paused = SpeechPausedFrame(user_id="alice", audio=question_pcm, sample_rate=16000)
    text = await _transcribe_after(stt, [paused], question_pcm)
    assert "spider" in text and "legs" in text, text
    # One run, on the audio at the pause; the final segment took its result.
    assert [samples for samples, _ in calls] == [len(question_pcm) // 2 + 8000], calls
    assert stt._decoding.early.used == 1


async def test_a_pause_the_person_talked_on_after_is_not_taken(question_pcm, monkeypatch):
    stt = DecodingWhisperSTTService(model=whisper_model("", None))
    calls = _model_calls(stt, monkeypatch)
    half = question_pcm[: len(question_pcm) // 4 * 2]
    text = await _transcribe_after(stt, [
        SpeechPausedFrame(user_id="alice", audio=half, sample_rate=16000),
        SpeechResumedFrame(user_id="alice"),
    ], question_pcm)
    assert "spider" in text and "legs" in text, text
    assert len(calls) == 2 and stt._decoding.early.used == 0  # the early run was wasted


async def test_an_early_run_on_other_audio_is_not_taken(question_pcm, monkeypatch):
    stt = DecodingWhisperSTTService(model=whisper_model("", None))
    calls = _model_calls(stt, monkeypatch)
    other = bytes(len(question_pcm))  # someone else's (silent) utterance
    text = await _transcribe_after(
        stt, [SpeechPausedFrame(user_id="bob", audio=other, sample_rate=16000)], question_pcm)
    assert "spider" in text and "legs" in text, text
    assert len(calls) == 2 and stt._decoding.early.used == 0
