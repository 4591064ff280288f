"""Word and viseme timings shared by every voice, face engine and client message.

Every TTS in the project produces, per sentence, PCM audio plus the timings below, relative
to the first sample of that sentence's audio (ARCHITECTURE §4). Times are seconds here and
milliseconds only on the wire (`bot-tts-timing`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Oculus/TalkingHead viseme names (the set TalkingHead's lip-sync modules and morph targets use).
VISEMES: tuple[str, ...] = (
    "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "I", "O", "U",
)

# RTVI server-message type for per-sentence timings (ARCHITECTURE §6).
TTS_TIMING_MESSAGE_TYPE = "bot-tts-timing"


@dataclass(frozen=True, slots=True)
class WordTiming:
    """One spoken word: its text as written and where it sits in the sentence audio."""

    word: str
    start: float
    duration: float

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True, slots=True)
class VisemeTiming:
    """One mouth shape (a name from VISEMES) and where it sits in the sentence audio."""

    viseme: str
    start: float
    duration: float

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(slots=True)
class TimedSpeech:
    """A synthesized sentence: mono int16 PCM plus its word and viseme timings."""

    text: str
    audio: np.ndarray
    sample_rate: int
    words: list[WordTiming] = field(default_factory=list)
    visemes: list[VisemeTiming] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


def tts_timing_message(seq: int, text: str, words: list[WordTiming],
                       visemes: list[VisemeTiming], *, played: float = 0.0) -> dict:
    """The `bot-tts-timing` payload of ARCHITECTURE §6 (milliseconds, TalkingHead's shape).

    It is sent when the bot's output transport hands the sentence's audio to the room:
    `played_ms` is how much of the sentence's audio had been played then (0: with its first
    audio; negative: that much earlier audio was still queued ahead of it), so a client puts
    time 0 of the sentence at its arrival minus `played_ms`.
    """

    def ms(seconds: float) -> int:
        return int(round(seconds * 1000))

    return {
        "type": TTS_TIMING_MESSAGE_TYPE,
        "seq": seq,
        "played_ms": ms(played),
        "text": text,
        "words": [w.word for w in words],
        "wtimes": [ms(w.start) for w in words],
        "wdurations": [ms(w.duration) for w in words],
        "visemes": [v.viseme for v in visemes],
        "vtimes": [ms(v.start) for v in visemes],
        "vdurations": [ms(v.duration) for v in visemes],
    }
