"""Transcriptions started while the VAD still waits out a pause, kept for the call that would
redo them.

A segmented STT transcribes an utterance once the VAD has heard `stop_secs` of quiet after it
(0.3 s): all of that wait comes before the transcription. When the person has been quiet for a
moment (`SpeechPausedFrame`), the model can already run on the utterance so far, padded with the
same silence the final segment gets. If the utterance then ends without more speech, its final
audio is that audio followed only by quiet, and the early result is used (waiting for it if it
is still running) instead of a second run; if the person speaks again (`SpeechResumedFrame`),
it is dropped. The wait and the transcription then overlap, which takes up to
`stop_secs - pause` off every answer; a pause the person talks on after costs one wasted run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from loguru import logger

from avatar_core.priority import lower_this_thread


@dataclass
class _Early:
    speech: np.ndarray  # the utterance at the pause, without the padding
    options: dict[str, Any]
    result: Future


class EarlyTranscripts:
    """Early model runs, one per person, matched to the final segment by its audio.

    `run(audio, options)` is the model call (in a worker thread); `take` is called by the model
    call of the final segment with the same arguments and returns the early result when that
    segment's audio begins with the early run's speech and its options are the same.
    """

    def __init__(self, *, run: Callable[[np.ndarray, dict[str, Any]], Any]):
        self._run = run
        # One early run at a time: a second one only waits behind the first on a small CPU.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stt-early",
                                            initializer=lower_this_thread)
        self._pending: dict[str, _Early] = {}
        self._lock = threading.Lock()
        self.used = 0
        self.dropped = 0

    def start(self, key: str, *, speech: np.ndarray, padded: np.ndarray,
              options: dict[str, Any]) -> None:
        """Run the model on `padded` (`speech` plus the segment's padding) for `key`'s utterance,
        replacing an earlier early run of theirs."""
        early = _Early(speech, options, self._executor.submit(self._run, padded, options))
        with self._lock:
            replaced = self._pending.pop(key, None)
            self._pending[key] = early
        if replaced is not None:
            self.dropped += 1

    def drop(self, key: str) -> None:
        """`key` spoke again: their early run is not their utterance."""
        with self._lock:
            dropped = self._pending.pop(key, None)
        if dropped is not None:
            self.dropped += 1

    def take(self, audio: np.ndarray, options: dict[str, Any]) -> Any | None:
        """The early result for this final segment (blocking until it is ready), or None."""
        with self._lock:
            key = next((k for k, e in self._pending.items() if e.options == options
                        and len(audio) >= len(e.speech)
                        and np.array_equal(audio[:len(e.speech)], e.speech)), None)
            early = self._pending.pop(key) if key is not None else None
        if early is None:
            return None
        try:
            result = early.result.result()
        except Exception as exc:  # the final run redoes it, and reports its own failure
            logger.warning(f"early transcription failed, transcribing again: {exc}")
            return None
        self.used += 1
        logger.debug(f"transcript of {key} taken from its early run ({self.used} so far)")
        return result

    def close(self) -> None:
        """Forget the pending runs and let the worker thread end after the current one."""
        with self._lock:
            self._pending.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
