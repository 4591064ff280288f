"""What a clip says, with faster-whisper: GPT-SoVITS needs the words of its reference clip and
of every training clip, and their language (detected unless given).

The model runs in a worker process of its own, never in the token server: loading Whisper takes
memory and seconds, and a decode takes a core for seconds, which the HTTP server's process (its
event loop, its token and room routes) should not pay. The worker starts on the first upload,
keeps the model loaded for the next ones, and stops with the token server.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from avatar_core.whisper import WHISPER_SAMPLE_RATE, installed_whisper_model, load_whisper
from voices.audio import Clip
from voices.checks import spoken_language
from voices.errors import TranscriberFailed

# The worker process's model (set by _load, its initializer).
_model: Any = None


class Transcriber:
    """An installed faster-whisper model in one worker process, started on first use."""

    def __init__(self, *, model: str, cache: Path) -> None:
        """model: the Whisper model's name (WHISPER_MODEL); cache: where setup installed it."""
        self._name = model
        self._cache = cache
        self._pool: ProcessPoolExecutor | None = None

    async def transcribe(self, clip: Clip, language: str | None) -> tuple[str, str]:
        """(text, language) of a clip (language detected when None); a VoiceError when the
        language is not one GPT-SoVITS speaks, TranscriberFailed when the worker died."""
        pool = self._worker()
        wave16 = clip.at(WHISPER_SAMPLE_RATE)
        try:
            text, detected = await asyncio.get_running_loop().run_in_executor(
                pool, _transcribe, wave16, language
            )
        except BrokenProcessPool:
            if self._pool is pool:  # not a fresh worker another upload has started since
                self.close()  # the next upload starts a fresh worker
            raise TranscriberFailed(
                "transcriber_failed",
                "the transcription worker stopped (see the token server's log); the upload was "
                "not stored: send it again",
            ) from None
        return text, spoken_language(language or detected)

    def close(self) -> None:
        """Stop the worker (a later upload starts a new one)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _worker(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # Resolved here, so a model setup has not installed is an error in this process.
            path = installed_whisper_model(self._name, self._cache)
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_load,
                initargs=(path,),
            )
            logger.info(f"voices: Whisper model {path} loads in a transcription worker")
        return self._pool


def _load(path: str) -> None:
    """Worker initializer: load the model once, on one thread (the bots need the other cores)."""
    global _model
    _model = load_whisper(path, threads=1)


def _transcribe(wave16: np.ndarray, language: str | None) -> tuple[str, str]:
    """In the worker: the clip's text and its language as Whisper names it."""
    segments, info = _model.transcribe(
        wave16, language=language, beam_size=5, condition_on_previous_text=False
    )
    return " ".join(s.text.strip() for s in segments).strip(), info.language
