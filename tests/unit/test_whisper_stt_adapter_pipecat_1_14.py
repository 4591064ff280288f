"""The Whisper STT service (processors/stt/whisper.py) against the pinned Pipecat 1.14: the
private model loading it overrides is checked on the real service, so an upgrade that renames
it fails here, by name (the model would be loaded again, without the beam setting)."""

from __future__ import annotations

import inspect
from unittest.mock import Mock

import pipecat
import pytest
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.transcriptions.language import Language

from processors.stt.whisper import DecodingWhisperSTTService

PINNED = "1.14"


def test_the_pinned_version():
    assert pipecat.__version__.startswith(PINNED), (
        f"Pipecat {pipecat.__version__}: re-check processors/stt/whisper.py against this "
        f"version's WhisperSTTService and rename this test")


def test_the_service_loads_its_model_in_the_overridden_hook_and_transcribes_with_it():
    assert "self._load()" in inspect.getsource(WhisperSTTService.__init__)
    load = inspect.getsource(WhisperSTTService._load)
    assert "self._model = WhisperModel(" in load
    # The override keeps the hook's language check, which reads the model through `_model`.
    assert "self._unsupported_language()" in load
    assert "self._model" in inspect.getsource(WhisperSTTService._unsupported_language)
    assert "self._model" in inspect.getsource(WhisperSTTService.run_stt)


def test_a_loaded_model_is_used_as_is_with_the_beam_setting():
    model = Mock(supported_languages=["en"])
    stt = DecodingWhisperSTTService(model="unused", beam_size=3, loaded_model=model)
    stt._model.transcribe(b"audio", language="en")
    model.transcribe.assert_called_once_with(b"audio", beam_size=3, language="en")


def test_a_loaded_model_is_checked_for_the_language_as_a_loaded_one_is():
    with pytest.raises(ValueError):
        DecodingWhisperSTTService(model="unused", language=Language.DE,
                                  loaded_model=Mock(supported_languages=["en"]))


def test_early_runs_are_made_as_run_stt_makes_the_final_one():
    """`_transcribe_early` repeats run_stt's audio conversion, padding and model arguments; the
    final segment takes an early result only when the audio and arguments are equal
    (tests/unit/test_stt_whisper.py shows it taken on the real service)."""
    from pipecat.services.stt_service import SegmentedSTTService

    run_stt = inspect.getsource(WhisperSTTService.run_stt)
    assert "np.frombuffer(audio, dtype=np.int16).astype(np.float32) / 32768.0" in run_stt
    assert "language=language," in run_stt and "hotwords=hotwords," in run_stt
    assert "initial_prompt=initial_prompt," in run_stt
    stopped = inspect.getsource(SegmentedSTTService._handle_user_stopped_speaking)
    assert "bytes(self._audio_buffer) + self._trailing_silence()" in stopped
