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
