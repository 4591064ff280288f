"""DecodingWhisperSTTService: Pipecat's Whisper STT with the beam width and prompts it lacks."""

from __future__ import annotations

import numpy as np
import pytest
from pipecat.frames.frames import (
    InputAudioRawFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import run_test

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


@pytest.mark.parametrize("beam_size", [1, 5])
async def test_transcribes_with_the_chosen_beam(question_pcm, beam_size, monkeypatch):
    stt = DecodingWhisperSTTService(model=whisper_model("", None), beam_size=beam_size,
                                    hotwords="Ava", initial_prompt="Ava, a question for you.")
    seen = {}
    transcribe = stt._model._model.transcribe

    def spy(audio, **options):
        seen.update(options)
        return transcribe(audio, **options)

    monkeypatch.setattr(stt._model._model, "transcribe", spy)
    text = await _transcribe(stt, question_pcm)
    assert "spider" in text and "legs" in text, text
    assert seen["beam_size"] == beam_size
    assert seen["hotwords"] == "Ava" and seen["initial_prompt"] == "Ava, a question for you."
