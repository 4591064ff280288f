"""What a voice is to `TimedTTSService`: small protocols, composed per voice (ARCHITECTURE §4).

A voice speaks one sentence at a time and, per sentence, knows when each word is said. There
are two kinds, and the service picks its frame order by the kind it is given:
  - a `TimedVoice` gives a sentence's audio and exact timings at once (the embedded voice), so
    the timings go out ahead of the audio;
  - a `StreamedVoice` pairs a `StreamingVoice` (bare audio as it is produced, e.g. GPT-SoVITS)
    with an `Aligner` (timings from the sentence's whole audio): the audio goes out as it
    streams and the timings follow the sentence. `AlignedVoice` makes the same pair a
    `TimedVoice` instead (the sentence is held until aligned, so the face gets visemes).
`FallbackVoice` speaks a sentence with a secondary timed voice when the primary cannot start it.

`voice` and `speed` come from the service's `VoiceSettings` (Pipecat settings, changed at run
time by a TTSUpdateSettingsFrame); None means the voice's own.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from loguru import logger
from pipecat.services.settings import TTSSettings
from pipecat.utils.types import NOT_GIVEN, NotGiven

from processors.timing import TimedSpeech, WordTiming

_WORD_CHAR = re.compile(r"\w")


@dataclass
class VoiceSettings(TTSSettings):
    """Pipecat's TTS settings plus the speaking rate (a factor, 1.0 = normal; None: the voice's
    own), so a TTSUpdateSettingsFrame can change the voice and speed of the next sentence."""

    speed: float | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)


class VoiceUnavailable(Exception):
    """A voice could not start a sentence (a server down, a voice not found): a fallback may
    speak it instead."""


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """A piece of a sentence's audio as a streaming voice returns it (int16 mono)."""

    audio: np.ndarray
    sample_rate: int


class TimedVoice(Protocol):
    """Speaks a whole sentence with exact word (and viseme) timings."""

    async def synthesize(self, text: str, *, voice: str | None = None,
                         speed: float | None = None) -> TimedSpeech: ...


class StreamingVoice(Protocol):
    """Streams a sentence's bare audio as it is produced; raises VoiceUnavailable when it
    cannot start the sentence."""

    def stream(self, text: str, *, voice: str | None = None,
               speed: float | None = None) -> AsyncIterator[AudioChunk]: ...


class Aligner(Protocol):
    """Word (and viseme) timings for a known sentence in its complete audio (blocking work: it
    is run in a worker thread)."""

    def align(self, text: str, audio: np.ndarray, sample_rate: int) -> TimedSpeech: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamedVoice:
    """A streaming voice spoken as it streams; `aligner` times each sentence afterwards."""

    voice: StreamingVoice
    aligner: Aligner


@dataclass(frozen=True, slots=True, kw_only=True)
class AlignedVoice:
    """A streaming voice held per sentence until `aligner` has timed it: a TimedVoice (timings,
    with visemes, before the audio) at the cost of first-audio latency."""

    voice: StreamingVoice
    aligner: Aligner

    async def synthesize(self, text: str, *, voice: str | None = None,
                         speed: float | None = None) -> TimedSpeech:
        chunks = [c async for c in self.voice.stream(text, voice=voice, speed=speed)]
        if not chunks:  # nothing to say (any rate will do for no audio)
            return TimedSpeech(text=text, audio=np.zeros(0, np.int16), sample_rate=1)
        return await align(self.aligner, text, chunks)


@dataclass(frozen=True, slots=True, kw_only=True)
class FallbackVoice:
    """`primary`, except for a sentence it cannot start (VoiceUnavailable): that one is spoken
    by `secondary` with its own voice and speed, and its own exact timings."""

    primary: TimedVoice | StreamedVoice
    secondary: TimedVoice


async def align(aligner: Aligner, text: str, chunks: list[AudioChunk]) -> TimedSpeech:
    """A sentence's timings from its streamed audio; words spread evenly when alignment fails
    (timings are a bonus: the sentence is never lost over them)."""
    audio, rate = np.concatenate([c.audio for c in chunks]), chunks[0].sample_rate
    try:
        return await asyncio.to_thread(aligner.align, text, audio, rate)
    except Exception as e:
        logger.warning(f"could not align [{text}] ({e}); spreading words evenly")
        return _spread(text, audio, rate)


def _spread(text: str, audio: np.ndarray, sample_rate: int) -> TimedSpeech:
    """Words spread over the audio in proportion to their letters."""
    words = text.split()
    weights = np.array([max(1, len(_WORD_CHAR.findall(w))) for w in words], dtype=float)
    edges = np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum() * (len(audio) / sample_rate)
    return TimedSpeech(
        text=text,
        audio=audio,
        sample_rate=sample_rate,
        words=[WordTiming(w, a, b - a) for w, a, b in zip(words, edges[:-1], edges[1:],
                                                           strict=False)],
    )
