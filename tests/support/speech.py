"""Spoken test input: the embedded voice stands in for a recorded person (offline, repeatable)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def _voice():
    from hibari import Hibari

    return Hibari()


@lru_cache(maxsize=64)
def _speak(text: str) -> bytes:
    audio = _voice()(text, seed=0)
    peak = float(np.max(np.abs(audio))) or 1.0
    return (audio / peak * 0.7 * 32767).astype(np.int16).tobytes()


def speak(text: str) -> tuple[np.ndarray, int]:
    """`text` spoken as int16 mono at 24 kHz (cached per text)."""
    from hibari import SAMPLE_RATE

    return np.frombuffer(_speak(text), dtype=np.int16), SAMPLE_RATE
