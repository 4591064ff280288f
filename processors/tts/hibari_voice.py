"""The embedded voice: hibari-tts with exact word and viseme timings.

hibari's ONNX model predicts a duration for every phoneme id (tensor /Clip_output_0, in units of
two 300-sample spectral frames = 600 samples at 24 kHz) and expands the phonemes by exactly those
durations before decoding. We add that tensor as an extra graph output (in memory; the installed
model file is untouched), so every phoneme's place in the audio is known from the model itself,
not estimated from the sound. The waveform is made by hibari's own DSP (hibari.dsp.synth).

Measured against the waveform, the decoder sounds each phoneme about 50 ms before its duration
slot (onsets after silence: median 48 ms early), and the phoneme before a pause owns the pause's
first ~0.3 s of silence (final closure). So the phone spans are shifted by AUDIO_LEAD_S, and a
phone before a pause ends where its sound decays (energy envelope inside its own slot); the tests
check onsets, silences and word energy against the audio (tests/unit/test_voice_hibari.py).
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import os
import threading
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
from hibari import dsp
from hibari.g2p import G2P
from hibari.g2p.normalize import normalize
from hibari.tts import ASSETS, MAX_PHONEMES, Hibari
from hibari.voices import VOICES, voice_path
from loguru import logger

from processors.timing import TimedSpeech, WordTiming
from processors.visemes import PAUSES, viseme_track

SAMPLE_RATE = dsp.SR

# Intermediate tensor of hibari's graph: rounded per-phoneme durations (float, one per input id).
DURATIONS_TENSOR = "/Clip_output_0"
# One duration unit = 2 spectral frames of hop 300 samples.
SAMPLES_PER_UNIT = 2 * dsp.HOP

# The model opens every chunk with ~0.35 s of silence on its leading pad; keep this many units
# (0.1 s) so the first audio comes sooner and sentences do not drift apart.
LEAD_PAD_UNITS = 4

# The decoder's sound leads the duration slots by ~2 units (see the module docstring).
AUDIO_LEAD_S = 0.05
# Envelope hop and the level (relative to the sentence's median speech level) that counts as sound
# when a phone before a pause is trimmed to its audible part.
ENVELOPE_HOP = dsp.HOP
SOUND_LEVEL = 0.1

# Output level: peaks normalized to -3 dBFS.
PEAK_DBFS = -3.0

MIN_SPEED, MAX_SPEED = 0.5, 2.0

# Phoneme-string characters after which a too-long sentence may be cut (hibari's clause split).
_CLAUSE_PHONEMES = frozenset(",;:—")


@functools.lru_cache(maxsize=4)
def model_with_durations(model_path: str) -> bytes:
    """The voice's ONNX model with DURATIONS_TENSOR added as a graph output (cached bytes)."""
    model = onnx.load(model_path)
    info = next((v for v in model.graph.value_info if v.name == DURATIONS_TENSOR), None)
    if info is None:
        raise RuntimeError(f"{model_path} has no tensor {DURATIONS_TENSOR}; not a hibari model")
    model.graph.output.append(copy.deepcopy(info))
    return model.SerializeToString()


@dataclass(frozen=True, slots=True)
class _Phone:
    """One model input character: the original word it reads (None for pads), sample span."""

    char: str
    word: int | None
    start: int
    end: int


class HibariVoice:
    """hibari-tts voice returning int16 audio plus word and viseme timings per sentence.

    Thread-safe: synthesis holds a lock (one ONNX run at a time; the noise generator is shared).
    """

    sample_rate: int = SAMPLE_RATE

    def __init__(self, *, voice: str = "heart", speed: float = 1.0, threads: int = 1,
                 seed: int | None = None):
        if voice not in VOICES:
            raise ValueError(f"unknown hibari voice {voice!r}; available: {', '.join(VOICES)}")
        _check_speed(speed)
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.voice = voice
        self.speed = speed
        self.threads = threads
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        options.log_severity_level = 3
        self._session = ort.InferenceSession(model_with_durations(voice_path(voice)), options,
                                             providers=["CPUExecutionProvider"])
        with open(os.path.join(ASSETS, "vocab.json"), encoding="utf-8") as f:
            self._vocab: dict[str, int] = json.load(f)
        self._g2p = G2P(british=VOICES[voice]["british"])
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        logger.debug(f"hibari voice {voice!r} loaded (speed {speed}, {threads} thread(s))")

    @staticmethod
    def sentences(text: str) -> list[str]:
        """Split text into sentences where hibari does (paragraphs, end punctuation, not after
        titles or initials), keeping every character: hibari drops a closing bracket or quote
        after the end punctuation, so each sentence runs up to where the next one starts."""
        starts, pos = [], 0
        for part in Hibari.split_sentences(text):
            pos = text.index(part, pos)
            starts.append(pos)
            pos += len(part)
        return [text[a:b].strip() for a, b in zip(starts, [*starts[1:], len(text)], strict=False)]

    def synthesize(self, text: str, *, speed: float | None = None) -> TimedSpeech:
        """One sentence → 24 kHz int16 audio with word and viseme timings from the model, at
        `speed` (None: the voice's own).

        Words are `text.split()` (as written, punctuation attached) and `.text` is them joined by
        single spaces; a word the voice does not pronounce (a lone "—") gets a zero-length timing
        at its place.
        """
        words = text.split()
        text = " ".join(words)
        if not words:
            return TimedSpeech(text=text, audio=np.zeros(0, np.int16), sample_rate=self.sample_rate)
        speed = self.speed if speed is None else _check_speed(speed)
        with self._lock:
            phones, wav = self._render(text, speed)
        rate = self.sample_rate
        return TimedSpeech(
            text=text,
            audio=_to_int16(wav),
            sample_rate=rate,
            words=_word_timings(words, phones, rate),
            visemes=viseme_track((p.char, p.start / rate, (p.end - p.start) / rate)
                                 for p in phones),
        )

    # -- internals -------------------------------------------------------------------------------
    def _render(self, text: str, speed: float) -> tuple[list[_Phone], np.ndarray]:
        """G2P, model runs (one per chunk of ≤ MAX_PHONEMES) → phones placed in the audio
        (words indexed in the *original* text) and the float waveform."""
        normalized = normalize(text)
        tokens = self._g2p.phonemize_tokens(self._g2p.tokenize(normalized)) if normalized else []
        owner = _chunk_owners(normalized, text)
        chars: list[tuple[str, int]] = []        # (phoneme char, original word index)
        chunk = 0
        for token in tokens:
            chunk = min(chunk, len(owner) - 1)
            chars += [(c, owner[chunk]) for c in (token.phonemes or "") if c in self._vocab]
            if token.whitespace:
                chars.append((" ", owner[chunk]))
                chunk += 1
        while chars and chars[-1][0] == " ":
            chars.pop()
        slots: list[tuple[str, int | None, int]] = []     # (char, word, units)
        waves: list[np.ndarray] = []
        for piece in _split_long(chars):
            units, wav = self._run([c for c, _ in piece], speed)
            trim = max(0, int(units[0]) - LEAD_PAD_UNITS)
            units[0] -= trim
            waves.append(wav[trim * SAMPLES_PER_UNIT:])
            padded = [("", None), *piece, ("", None)]
            slots += [(c, w, int(n)) for (c, w), n in zip(padded, units, strict=False)]
        wav = np.concatenate(waves) if waves else np.zeros(0, np.float32)
        return _place_phones(slots, wav), wav

    def _run(self, chars: list[str], speed: float) -> tuple[np.ndarray, np.ndarray]:
        """Phoneme chars → (duration units per id incl. the two pads, float32 waveform)."""
        ids = [0, *(self._vocab[c] for c in chars), 0]
        *spectra, units = self._session.run(None, {
            "ids": np.asarray([ids], np.int64), "speed": np.asarray([speed], np.float32)})
        wav = dsp.synth(*(s[0] for s in spectra), self._rng)
        units = units.astype(np.int64)
        if int(units.sum()) * SAMPLES_PER_UNIT != len(wav):
            raise RuntimeError(f"hibari durations ({units.sum()} units) do not match the audio "
                               f"({len(wav)} samples)")
        return units, wav


def _check_speed(speed: float) -> float:
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise ValueError(f"speed {speed} outside {MIN_SPEED}..{MAX_SPEED}")
    return speed


def _chunk_owners(normalized: str, original: str) -> list[int]:
    """For each whitespace chunk of the normalized text, the index of the original word it reads.

    normalize() rewrites some words ("3:30 pm" → "three thirty P.M.", "5km" → "5 kilometers");
    a word-level alignment maps unchanged words one to one and spreads the chunks of a rewritten
    stretch in order over the original words it replaced.
    """
    chunks, words = normalized.split(" "), original.split(" ")
    owners = [0] * len(chunks)
    matcher = difflib.SequenceMatcher(None, chunks, words, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for k in range(i1, i2):
            if tag == "equal":
                owners[k] = j1 + k - i1
            elif j2 > j1:
                owners[k] = j1 + (k - i1) * (j2 - j1) // (i2 - i1)
            else:                       # inserted words belong to the word before them
                owners[k] = max(j1 - 1, 0)
    return owners


def _split_long(chars: list[tuple[str, int]]) -> list[list[tuple[str, int]]]:
    """Cut a phoneme sequence longer than hibari's MAX_PHONEMES after clause punctuation."""
    if len(chars) <= MAX_PHONEMES:
        return [chars] if chars else []
    pieces, current, last_cut = [], [], None
    for item in chars:
        current.append(item)
        if item[0] in _CLAUSE_PHONEMES:
            last_cut = len(current)
        if len(current) >= MAX_PHONEMES and last_cut:
            pieces.append(current[:last_cut])
            current, last_cut = current[last_cut:], None
            while current and current[0][0] == " ":
                current.pop(0)
    if current:
        pieces.append(current)
    return pieces


def _place_phones(slots: list[tuple[str, int | None, int]], wav: np.ndarray) -> list[_Phone]:
    """Duration slots → phone sample spans: shifted by the decoder's lead, and a sound before a
    pause cut back to where its energy decays (the rest of its slot is the pause's silence)."""
    lead = int(round(AUDIO_LEAD_S * SAMPLE_RATE))
    bounds = np.cumsum([0] + [n * SAMPLES_PER_UNIT for _, _, n in slots]) - lead
    bounds = np.clip(bounds, 0, len(wav))
    bounds[0], bounds[-1] = 0, len(wav)
    envelope = _envelope(wav)
    spoken = np.concatenate([
        envelope[a // ENVELOPE_HOP:b // ENVELOPE_HOP]
        for (c, _, _), a, b in zip(slots, bounds[:-1], bounds[1:], strict=False)
        if c not in PAUSES
    ] or [np.zeros(0)])
    level = SOUND_LEVEL * float(np.median(spoken)) if len(spoken) else 0.0
    for i in range(len(slots) - 1):
        if slots[i][0] in PAUSES or slots[i + 1][0] not in PAUSES - {" "}:
            continue
        start, end = int(bounds[i]), int(bounds[i + 1])
        loud = np.nonzero(envelope[start // ENVELOPE_HOP:end // ENVELOPE_HOP] >= level)[0]
        audible_end = (start // ENVELOPE_HOP + loud[-1] + 1) * ENVELOPE_HOP if len(loud) else start
        bounds[i + 1] = min(end, max(audible_end, start + ENVELOPE_HOP))
    return [_Phone(c, w, int(a), int(b))
            for (c, w, _), a, b in zip(slots, bounds[:-1], bounds[1:], strict=False)]


def _envelope(wav: np.ndarray) -> np.ndarray:
    """RMS per ENVELOPE_HOP samples."""
    frames = wav[:len(wav) // ENVELOPE_HOP * ENVELOPE_HOP].reshape(-1, ENVELOPE_HOP)
    return np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))


def _word_timings(words: list[str], phones: list[_Phone], rate: int) -> list[WordTiming]:
    """Each original word's span: its spoken phonemes, else its pause (a lone "—"), else a
    zero-length mark where it stands."""
    timings, previous_end = [], phones[0].end if phones else 0
    for i, word in enumerate(words):
        mine = [p for p in phones if p.word == i and p.char != " "]
        chosen = [p for p in mine if p.char not in PAUSES] or mine
        start, end = (chosen[0].start, chosen[-1].end) if chosen else (previous_end, previous_end)
        timings.append(WordTiming(word, start / rate, (end - start) / rate))
        previous_end = end
    return timings


def _to_int16(wav: np.ndarray) -> np.ndarray:
    """Float waveform → int16 with peaks at PEAK_DBFS (never clipping)."""
    peak = float(np.max(np.abs(wav))) if len(wav) else 0.0
    if peak <= 0.0:
        return np.zeros(len(wav), np.int16)
    gain = 10 ** (PEAK_DBFS / 20) / peak
    return np.round(wav * (gain * 32767)).astype(np.int16)
