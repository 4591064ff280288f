"""What a clip says, with faster-whisper: GPT-SoVITS needs the words of its reference clip and
of every training clip, and their language (detected unless given)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from loguru import logger

from avatar_core.whisper import installed_whisper_model, load_whisper
from processors.align.whisper_aligner import WHISPER_SAMPLE_RATE
from voices.audio import Clip
from voices.checks import spoken_language

if TYPE_CHECKING:
    from faster_whisper.transcribe import TranscriptionInfo


class Transcriber:
    """An installed faster-whisper model, loaded once on first use (in a thread, so the event
    loop that awaits it keeps serving)."""

    def __init__(self, *, model: str, cache: Path) -> None:
        """model: the Whisper model's name (WHISPER_MODEL); cache: where setup installed it."""
        self._name = model
        self._cache = cache
        self._model = None
        self._lock = asyncio.Lock()

    async def transcribe(self, clip: Clip, language: str | None) -> tuple[str, str]:
        """(text, language) of a clip (language detected when None); a VoiceError when the
        language is not one GPT-SoVITS speaks."""
        model = await self._loaded()
        text, info = await asyncio.to_thread(
            _transcribe, model, clip.at(WHISPER_SAMPLE_RATE), language
        )
        return text, spoken_language(language or info.language)

    async def _loaded(self):
        async with self._lock:
            if self._model is None:
                path = installed_whisper_model(self._name, self._cache)
                self._model = await asyncio.to_thread(load_whisper, path, threads=1)
                logger.info(f"voices: Whisper model {path} loaded")
        return self._model


def _transcribe(
    model, wave16: np.ndarray, language: str | None
) -> tuple[str, TranscriptionInfo]:
    segments, info = model.transcribe(
        wave16, language=language, beam_size=5, condition_on_previous_text=False
    )
    return " ".join(s.text.strip() for s in segments).strip(), info
