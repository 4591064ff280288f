"""Pipecat's Whisper STT on a model loaded beforehand (a worker's prewarmed job process)."""

from __future__ import annotations

from faster_whisper import WhisperModel
from pipecat.services.whisper.stt import WhisperSTTService


class LoadedWhisperSTTService(WhisperSTTService):
    """WhisperSTTService that uses `model` instead of loading one in its constructor.

    Loading Whisper takes about 1.5 s on a small CPU; a LiveKit job process loads it while it
    waits for a job, so the room's pipeline starts at once. One instance per pipeline; the
    model is used by one pipeline at a time (one job per process).
    """

    def __init__(self, *, model: WhisperModel, **kwargs):
        self._loaded_model = model
        super().__init__(**kwargs)

    def _load(self):
        # Pipecat's hook that loads the model; here the model is already loaded.
        self._model = self._loaded_model
