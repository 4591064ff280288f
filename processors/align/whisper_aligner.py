"""Forced alignment: word timings for a known sentence in speech audio that came without them.

Voices such as GPT-SoVITS return bare audio. The sentence text is known, so its words are placed
in the audio in three stages (ARCHITECTURE §4):

1. Whisper: the loaded faster-whisper model aligns the sentence's own tokens to the audio
   (`WhisperModel.find_alignment`, CTranslate2's cross-attention DTW). Robust about *which*
   stretch of sound belongs to which words, but its boundaries scatter by ~60 ms and pauses get
   absorbed into the neighbouring words.
2. Silences: the audio is cut at low-energy gaps into stretches of sound; every word is assigned
   to one stretch (by its Whisper span) and the first/last word of a stretch start/end at the
   stretch's edges, so no word owns a pause.
3. Reference: the embedded voice says the same sentence with exact word timings; inside each
   stretch its Whisper encoder states are aligned to the audio's by DTW (they carry what is
   said more than who says it) and the reference's word boundaries (and visemes) are carried
   over. Without a reference voice (or for a stretch the DTW cannot match) the Whisper
   boundaries stay.

Accuracy against exact word timings of the embedded voice and of a foreign one (Piper), as is
and time-stretched / pitch-shifted: `bench/align_bench.py`.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import numpy as np
import soxr
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from loguru import logger

from avatar_core.whisper import WHISPER_SAMPLE_RATE, load_whisper, offline_whisper_model
from processors.timing import TimedSpeech, VisemeTiming, WordTiming

# Whisper sees at most one 30 s window; a TTS sentence is far shorter.
MAX_AUDIO_S = 30.0
# faster-whisper's log-mel features: one frame per 10 ms.
FRAME_S = 0.01

# Energy envelope: 5 ms hop, 20 ms smoothing. Sound is louder than the sentence's peak minus
# SILENCE_BELOW_PEAK_DB (and clearly above its noise floor); a quieter gap of at least
# MIN_PAUSE_S splits the sound into stretches; shorter sound blips are dropped.
ENVELOPE_HOP_S = 0.005
ENVELOPE_SMOOTH_HOPS = 4
SILENCE_BELOW_PEAK_DB = 35.0
NOISE_FLOOR_MARGIN_DB = 6.0
MIN_PAUSE_S = 0.06
MIN_SOUND_S = 0.03

# Whisper's encoder states: one per 20 ms. The reference DTW compares them rather than cepstra:
# they describe what is said more than who says it (measured on the Piper voice, mean word
# boundary error 33 ms with them against 68 ms with log-mel cepstra). The margin of audio kept
# around each stretch lets its edges be matched in context.
ENCODER_FRAME_S = 0.02
DTW_MARGIN_S = 0.03

WORD_CHAR = re.compile(r"\w")


@dataclass(frozen=True, slots=True)
class WhisperAlignerSettings:
    """Which Whisper model aligns (an installed model folder; "" = the offline tiny.en; the bot
    resolves AVATAR_ALIGN_WHISPER_MODEL, else WHISPER_MODEL, to a folder at start-up), how it
    runs, and which refinement stages are on."""

    model: str = ""
    compute_type: str = "int8"
    threads: int = 1
    reference: bool = True
    silences: bool = True


class WhisperAligner:
    """Word (and, with a reference voice, viseme) timings for a known sentence in bare audio.

    `model` is a loaded faster-whisper model (`from_settings` loads one); `silences` turns
    stage 2 on; `reference` is a voice with exact timings (HibariVoice) for stage 3 (which works
    inside stage 2's stretches), None to skip it. Thread-safe; `align` is CPU-bound (about 0.5 s
    for a 3 s sentence on one core with tiny.en): call it from a worker thread.
    """

    def __init__(self, *, model: WhisperModel, reference=None, language: str = "en",
                 silences: bool = True):
        self._model = model
        multilingual = model.model.is_multilingual
        if not multilingual and language != "en":
            logger.warning(f"aligner: English-only Whisper model asked to align {language!r}; "
                           f"timings will be rough")
        self._tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task="transcribe",
                                    language=language if multilingual else "en")
        self._reference = reference if language == "en" else None
        self._silences = silences
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: WhisperAlignerSettings, *, language: str = "en"
                      ) -> WhisperAligner:
        """Load the Whisper model (and the embedded voice as reference) the settings name."""
        from processors.tts.hibari_voice import HibariVoice

        path = settings.model or offline_whisper_model()
        model = load_whisper(path, compute_type=settings.compute_type, threads=settings.threads)
        reference = HibariVoice(threads=settings.threads, seed=0) if settings.reference else None
        logger.info(f"aligner: Whisper {path} ({settings.compute_type}), silences "
                    f"{'on' if settings.silences else 'off'}, reference voice "
                    f"{'on' if reference else 'off'}")
        return cls(model=model, reference=reference, language=language,
                   silences=settings.silences)

    def align(self, text: str, audio: np.ndarray, sample_rate: int) -> TimedSpeech:
        """`text` (one sentence) placed in `audio` (int16 or float mono): words are
        `text.split()`, times in seconds from the first sample."""
        words = text.split()
        pcm = np.asarray(audio)
        speech = TimedSpeech(text=text, audio=pcm, sample_rate=sample_rate)
        if not words or len(pcm) == 0:
            return speech
        duration = len(pcm) / sample_rate
        if duration > MAX_AUDIO_S:
            raise ValueError(f"cannot align {duration:.1f} s of audio in one piece (max "
                             f"{MAX_AUDIO_S:.0f} s): align sentence by sentence")
        wave = pcm.astype(np.float32) / (32768.0 if pcm.dtype == np.int16 else 1.0)
        wave16 = soxr.resample(wave, sample_rate, WHISPER_SAMPLE_RATE).astype(np.float32)
        features = self._model.feature_extractor(wave16)[:, :-1]
        spans, encoded = self._whisper_spans(text, words, features)
        visemes: list[VisemeTiming] = []
        if self._silences:
            stretches = speech_stretches(wave16)
            if stretches:
                groups = _group_words(spans, stretches)
                spans = _snap_to_stretches(spans, groups)
                if self._reference is not None:
                    spans, visemes = self._follow_reference(text, features, encoded, spans,
                                                            groups)
        speech.words = [WordTiming(w, s, max(0.0, e - s))
                        for w, (s, e) in zip(words, _clip(spans, duration), strict=False)]
        speech.visemes = visemes
        return speech

    # -- stage 1: Whisper -------------------------------------------------------------------------
    def _whisper_spans(self, text: str, words: list[str], features: np.ndarray
                       ) -> tuple[list[tuple[float, float]], np.ndarray]:
        """(start, end) per word of `text` from Whisper's DTW over the sentence's tokens, and
        the audio's Whisper encoder states (frames x width, one per ENCODER_FRAME_S)."""
        tokens = self._tokenizer.encode(" " + " ".join(words))
        with self._lock:
            encoded = self._model.encode(pad_or_trim(features))
            pieces = self._model.find_alignment(self._tokenizer, [tokens], encoded,
                                                features.shape[-1])[0]
        states = _states(encoded, features.shape[-1])
        # Whisper's words are token groups (punctuation on its own); map them to the text's
        # words by the position of their word characters.
        owner = np.repeat(np.arange(len(words)),
                          [len(WORD_CHAR.findall(w)) for w in words])
        spans: list[list[float]] = [[] for _ in words]
        seen = 0
        for piece in pieces:
            count = len(WORD_CHAR.findall(piece["word"]))
            if count and seen < len(owner):
                spans[owner[seen]] += [piece["start"], piece["end"]]
            seen += count
        return _fill_gaps(spans), states

    def _encoder_states(self, features: np.ndarray) -> np.ndarray:
        with self._lock:
            encoded = self._model.encode(pad_or_trim(features))
        return _states(encoded, features.shape[-1])

    # -- stage 3: reference voice -----------------------------------------------------------------
    def _follow_reference(
        self,
        text: str,
        features: np.ndarray,
        states: np.ndarray,
        spans: list[tuple[float, float]],
        groups: list[tuple[int, int, float, float]],
    ) -> tuple[list[tuple[float, float]], list[VisemeTiming]]:
        """Inside each stretch, carry the reference voice's word boundaries and visemes over."""
        # the reference voice is set whenever this path runs
        ref = self._reference.synthesize(text)  # type: ignore[union-attr]
        if len(ref.words) != len(spans) or len(ref.audio) == 0:
            logger.warning(
                f"aligner: reference voice gave {len(ref.words)} words for "
                f"{len(spans)}; keeping Whisper timings"
            )
            return spans, []
        ref16 = soxr.resample(
            ref.audio.astype(np.float32) / 32768.0, ref.sample_rate, WHISPER_SAMPLE_RATE
        ).astype(np.float32)
        ref_features = self._model.feature_extractor(ref16)[:, :-1]
        ref_states = _per_frame(self._encoder_states(ref_features), ref_features.shape[-1])
        states = _per_frame(states, features.shape[-1])
        out = list(spans)
        visemes: list[VisemeTiming] = []
        for first, last, start, end in groups:
            ref_start, ref_end = ref.words[first].start, ref.words[last].end
            path = _dtw(
                ref_states,
                states,
                (ref_start - DTW_MARGIN_S, ref_end + DTW_MARGIN_S),
                (start - DTW_MARGIN_S, end + DTW_MARGIN_S),
            )
            if path is None:
                logger.debug(f"aligner: no reference match for words {first}..{last}")
                continue

            def carry(t: float, path=path, start=start, end=end) -> float:
                return float(np.clip(_map_time(path, t), start, end))

            for i in range(first, last + 1):
                word = ref.words[i]
                out[i] = (
                    start if i == first else carry(word.start),
                    end if i == last else carry(word.end),
                )
            for v in ref.visemes:
                if ref_start <= v.start and v.end <= ref_end:
                    a, b = carry(v.start), carry(v.end)
                    visemes.append(VisemeTiming(v.viseme, a, b - a))
        return out, visemes


# -- stage 2: silences -----------------------------------------------------------------------------
def speech_stretches(
    wave16: np.ndarray, *, min_pause_s: float = MIN_PAUSE_S
) -> list[tuple[float, float]]:
    """(start, end) in seconds of the stretches of sound in 16 kHz audio, split at quiet gaps of
    at least `min_pause_s` (also used to slice training recordings at pauses)."""
    hop = int(ENVELOPE_HOP_S * WHISPER_SAMPLE_RATE)
    frames = wave16[: len(wave16) // hop * hop].reshape(-1, hop)
    if len(frames) == 0:
        return []
    power = np.convolve(
        np.mean(frames.astype(np.float64) ** 2, axis=1),
        np.ones(ENVELOPE_SMOOTH_HOPS) / ENVELOPE_SMOOTH_HOPS,
        mode="same",
    )
    level = 10 * np.log10(power + 1e-12)
    threshold = max(
        level.max() - SILENCE_BELOW_PEAK_DB, np.percentile(level, 10) + NOISE_FLOOR_MARGIN_DB
    )
    edges = np.flatnonzero(np.diff(np.r_[0, (level > threshold).astype(np.int8), 0]))
    out: list[list[float]] = []
    for a, b in zip(edges[::2] * ENVELOPE_HOP_S, edges[1::2] * ENVELOPE_HOP_S, strict=False):
        if out and a - out[-1][1] < min_pause_s:
            out[-1][1] = b
        else:
            out.append([a, b])
    return [(a, b) for a, b in out if b - a >= MIN_SOUND_S]


def _group_words(
    spans: list[tuple[float, float]], stretches: list[tuple[float, float]]
) -> list[tuple[int, int, float, float]]:
    """Words grouped by stretch: (first word, last word, start, end), in order.

    Each word goes to the stretch its Whisper span overlaps most (nearest if none), never to an
    earlier stretch than the word before it; a stretch no word claims (a stop closure splitting
    a word) joins the nearer claimed neighbour.
    """
    owner: list[int] = []
    for s, e in spans:
        overlap = [min(e, b) - max(s, a) for a, b in stretches]
        k = (
            int(np.argmax(overlap))
            if max(overlap) > 0
            else int(np.argmin([max(a - e, s - b) for a, b in stretches]))
        )
        owner.append(max(k, owner[-1]) if owner else k)
    claimed = sorted(set(owner))
    bounds = {k: list(stretches[k]) for k in claimed}
    for k, (a, b) in enumerate(stretches):
        if k in bounds:
            continue
        before = max((c for c in claimed if c < k), default=None)
        after = min((c for c in claimed if c > k), default=None)
        gap_before = a - bounds[before][1] if before is not None else np.inf
        gap_after = bounds[after][0] - b if after is not None else np.inf
        if gap_before <= gap_after:
            # the finite gap's neighbour is not None
            bounds[before][1] = max(bounds[before][1], b)  # type: ignore[index]
        else:
            bounds[after][0] = min(bounds[after][0], a)  # type: ignore[index]
    groups: list[tuple[int, int, float, float]] = []
    for k in claimed:
        members = [i for i, o in enumerate(owner) if o == k]
        groups.append((members[0], members[-1], bounds[k][0], bounds[k][1]))
    return groups


def _snap_to_stretches(
    spans: list[tuple[float, float]], groups: list[tuple[int, int, float, float]]
) -> list[tuple[float, float]]:
    """Each group's words inside its stretch, the first starting and the last ending at its ends."""
    out = list(spans)
    for first, last, start, end in groups:
        for i in range(first, last + 1):
            s, e = (float(np.clip(t, start, end)) for t in spans[i])
            out[i] = (start if i == first else s, end if i == last else e)
    return out


# -- helpers ---------------------------------------------------------------------------------------
def _fill_gaps(spans: list[list[float]]) -> list[tuple[float, float]]:
    """Spans from collected times; a word with none (Whisper skipped it) gets a zero-length
    span where the previous word ended."""
    out, previous = [], 0.0
    for times in spans:
        span = (min(times), max(times)) if times else (previous, previous)
        out.append(span)
        previous = span[1]
    return out


def _clip(spans: list[tuple[float, float]], duration: float) -> list[tuple[float, float]]:
    """Spans inside the audio, in order and not overlapping the next word."""
    out, previous = [], 0.0
    for s, e in spans:
        s = min(max(s, previous), duration)
        e = min(max(e, s), duration)
        out.append((s, e))
        previous = e
    return out


def _states(encoded, frames: int) -> np.ndarray:
    """Encoder output (a CTranslate2 StorageView) as (frames/2) x width float32, unit rows."""
    out = np.asarray(encoded)[0, : (frames + 1) // 2].astype(np.float32)
    return out / (np.linalg.norm(out, axis=1, keepdims=True) + 1e-6)


def _per_frame(states: np.ndarray, frames: int) -> np.ndarray:
    """Encoder states (one per ENCODER_FRAME_S) repeated onto the 10 ms feature grid."""
    up = np.repeat(states, 2, axis=0)[:frames]
    if len(up) < frames:
        up = np.vstack([up, np.repeat(up[-1:], frames - len(up), axis=0)])
    return up


def _dtw(
    ref: np.ndarray,
    target: np.ndarray,
    ref_span: tuple[float, float],
    target_span: tuple[float, float],
) -> np.ndarray | None:
    """DTW path (reference time, target time) pairs in seconds between two spans of per-frame
    features (10 ms grid), by cosine distance.

    Steps (1,1), (1,2), (2,1): the local tempo may differ by up to 2x either way. None when the
    spans are too different in length for that.
    """
    r0, r1 = (int(np.clip(round(t / FRAME_S), 0, len(ref))) for t in ref_span)
    t0, t1 = (int(np.clip(round(t / FRAME_S), 0, len(target))) for t in target_span)
    x, y = ref[r0:r1], target[t0:t1]
    n, m = len(x), len(y)
    if n < 2 or m < 2 or not (m <= 2 * n and n <= 2 * m):
        return None
    norms = np.linalg.norm(x, axis=1)[:, None] * np.linalg.norm(y, axis=1)[None] + 1e-9
    cost = 1.0 - (x @ y.T) / norms
    total = np.full((n, m), np.inf)
    step = np.zeros((n, m), np.int8)
    total[0, 0] = cost[0, 0]
    for i in range(1, n):
        options = np.full((3, m), np.inf)
        options[0, 1:] = total[i - 1, :-1]
        options[1, 2:] = total[i - 1, :-2]
        if i >= 2:
            options[2, 1:] = total[i - 2, :-1]
        step[i] = options.argmin(axis=0)
        total[i] = cost[i] + options[step[i], np.arange(m)]
    if not np.isfinite(total[-1, -1]):
        return None
    moves = ((1, 1), (1, 2), (2, 1))
    i, j, path = n - 1, m - 1, [(n - 1, m - 1)]
    while i > 0:
        di, dj = moves[step[i, j]]
        i, j = i - di, j - dj
        path.append((i, j))
    steps = np.array(path[::-1], dtype=np.float64)
    return np.column_stack([(steps[:, 0] + r0) * FRAME_S, (steps[:, 1] + t0) * FRAME_S])


def _map_time(path: np.ndarray, t: float) -> float:
    """Target time matched to reference time `t` (interpolated along the DTW path)."""
    return float(np.interp(t, path[:, 0], path[:, 1]))
