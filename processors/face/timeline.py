"""Mouth shapes over time, from a voice's viseme timings or, failing those, from the audio.

Every face engine reads a sentence's mouth motion from a `VisemeTimeline`: per viseme a
target `MouthShape`, blended with co-articulation smoothing (neighbouring visemes overlap
by a short window, as real articulators do), scaled by the audio level so loud vowels open
wider, and with the lips forced shut across bilabials (PP) and nearly shut across labiodentals
(FF) so /m b p f v/ read as closures. A voice without visemes gets an envelope-driven timeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from processors.timing import VISEMES, VisemeTiming

# Track resolution of precomputed shape tracks.
TRACK_RATE = 100.0
# Co-articulation: width of the Hann window the target tracks are smoothed with.
COARTICULATION_S = 0.08
# How far outside a closure (PP/FF) the lips take to reopen fully.
CLOSURE_RAMP_S = 0.05
# Shortest full closure (lips of a stop stay shut at least about this long).
MIN_CLOSURE_S = 0.04
# Audio level (dBFS of a frame's RMS) mapped to level 0 and level 1.
LEVEL_FLOOR_DB = -50.0
LEVEL_CEIL_DB = -14.0
# With audio, the jaw opens with loudness (level ** LEVEL_EXPONENT) and the viseme sets how
# much of that opening it allows, never less than LEVEL_INDEPENDENT_OPEN.
LEVEL_EXPONENT = 2.0
LEVEL_INDEPENDENT_OPEN = 0.5
LEVEL_SMOOTHING_S = 0.06


@dataclass(frozen=True, slots=True)
class MouthShape:
    """One mouth pose: jaw opening, lip width (negative = rounded), teeth and tongue visibility.

    All in [0, 1] except `wide` in [-1, 1].
    """

    open: float = 0.0
    wide: float = 0.0
    teeth: float = 0.0
    tongue: float = 0.0

    def as_array(self) -> np.ndarray:
        return np.array([self.open, self.wide, self.teeth, self.tongue], dtype=np.float32)


# Target pose per viseme (Oculus set, processors/timing.VISEMES).
VISEME_SHAPES: dict[str, MouthShape] = {
    "sil": MouthShape(0.0, 0.0, 0.0, 0.0),
    "PP": MouthShape(0.0, -0.1, 0.0, 0.0),
    "FF": MouthShape(0.08, 0.15, 0.9, 0.0),
    "TH": MouthShape(0.25, 0.1, 0.7, 0.9),
    "DD": MouthShape(0.3, 0.2, 0.6, 0.5),
    "kk": MouthShape(0.35, 0.15, 0.4, 0.2),
    "CH": MouthShape(0.3, -0.45, 0.9, 0.0),
    "SS": MouthShape(0.15, 0.4, 1.0, 0.0),
    "nn": MouthShape(0.25, 0.15, 0.5, 0.6),
    "RR": MouthShape(0.3, -0.5, 0.4, 0.2),
    "aa": MouthShape(1.0, 0.2, 0.7, 0.1),
    "E": MouthShape(0.6, 0.6, 0.9, 0.1),
    "I": MouthShape(0.35, 0.8, 0.8, 0.0),
    "O": MouthShape(0.75, -0.8, 0.4, 0.0),
    "U": MouthShape(0.35, -1.0, 0.2, 0.0),
}

# Visemes whose midpoints must show (nearly) closed lips, with the opening they allow.
CLOSURES: dict[str, float] = {"PP": 0.0, "FF": 0.08}


def audio_levels(audio: np.ndarray, sample_rate: int, rate: float) -> np.ndarray:
    """Audio level in [0, 1] (RMS in dBFS, mapped) of each 1/rate window of int16 audio."""
    samples = np.asarray(audio, dtype=np.float64) / 32768.0
    n = int(np.ceil(len(samples) * rate / sample_rate - 1e-9))
    bounds = np.minimum(np.round(np.arange(n + 1) * sample_rate / rate).astype(int), len(samples))
    energy = np.concatenate([[0.0], np.cumsum(samples * samples)])
    counts = np.maximum(np.diff(bounds), 1)
    rms = np.sqrt(np.diff(energy[bounds]) / counts) + 1e-9
    db = 20.0 * np.log10(rms)
    return np.clip((db - LEVEL_FLOOR_DB) / (LEVEL_CEIL_DB - LEVEL_FLOOR_DB), 0.0, 1.0).astype(
        np.float32
    )


def _smooth(track: np.ndarray, window_s: float) -> np.ndarray:
    n = max(3, int(round(window_s * TRACK_RATE)) | 1)
    kernel = np.hanning(n + 2)[1:-1]
    kernel /= kernel.sum()
    pad = n // 2
    padded = np.pad(track, [(pad, pad)] + [(0, 0)] * (track.ndim - 1), mode="edge")
    return np.stack(
        [np.convolve(padded[:, i], kernel, mode="valid") for i in range(track.shape[1])], axis=1
    )


class VisemeTimeline:
    """Mouth shapes of one sentence as a function of time (seconds from its first sample).

    Build with `from_visemes` (a voice's exact timings; `with_audio` then lets loudness drive
    the jaw) or `from_audio` (envelope fallback for voices without visemes).
    """

    def __init__(
        self, *, tracks: np.ndarray, open_cap: np.ndarray, level: np.ndarray | None = None
    ) -> None:
        self._tracks = tracks.astype(np.float32)  # (n, 4): open, wide, teeth, tongue
        self._open_cap = open_cap.astype(np.float32)  # (n,)
        self._level = level  # (m,) smoothed audio level at TRACK_RATE, or None

    @classmethod
    def from_visemes(cls, visemes: Sequence[VisemeTiming]) -> VisemeTimeline:
        """Co-articulated shape tracks from viseme timings; unknown viseme names are an error."""
        unknown = {v.viseme for v in visemes} - set(VISEME_SHAPES)
        if unknown:
            raise ValueError(f"unknown visemes {sorted(unknown)}; expected names from {VISEMES}")
        end = max((v.end for v in visemes), default=0.0) + 2 * COARTICULATION_S
        n = int(np.ceil(end * TRACK_RATE)) + 1
        targets = np.zeros((n, 4), dtype=np.float32)
        cap = np.ones(n, dtype=np.float32)
        times = np.arange(n) / TRACK_RATE
        for v in visemes:
            i0, i1 = int(round(v.start * TRACK_RATE)), int(round(v.end * TRACK_RATE))
            targets[i0 : max(i1, i0 + 1)] = VISEME_SHAPES[v.viseme].as_array()
            if v.viseme in CLOSURES:
                # Closed across the middle of the closure, reopening linearly outside it.
                mid = v.start + v.duration / 2
                half = max(v.duration / 2 - 0.01, MIN_CLOSURE_S / 2)
                dist = np.maximum(np.abs(times - mid) - half, 0.0)
                cap = np.minimum(cap, CLOSURES[v.viseme] + dist / CLOSURE_RAMP_S)
        return cls(tracks=_smooth(targets, COARTICULATION_S), open_cap=np.clip(cap, 0, 1))

    @classmethod
    def from_audio(cls, audio: np.ndarray, sample_rate: int) -> VisemeTimeline:
        """Envelope fallback for voices without visemes: opening follows the smoothed level."""
        level = _level_track(audio, sample_rate)
        tracks = np.zeros((len(level), 4), dtype=np.float32)
        tracks[:, 0] = level**LEVEL_EXPONENT
        tracks[:, 1] = 0.1
        tracks[:, 2] = 0.5 * level
        return cls(tracks=tracks, open_cap=np.ones(len(tracks)))

    def with_audio(self, audio: np.ndarray, sample_rate: int) -> VisemeTimeline:
        """This timeline with the sentence audio (so far) scaling the jaw by loudness."""
        return VisemeTimeline(
            tracks=self._tracks, open_cap=self._open_cap, level=_level_track(audio, sample_rate)
        )

    @property
    def duration(self) -> float:
        return (len(self._tracks) - 1) / TRACK_RATE

    def shape_at(self, t: float) -> MouthShape:
        """The pose at time `t` (clamped to the timeline)."""
        row = _sample(self._tracks, t)
        cap = float(_sample(self._open_cap[:, None], t)[0])
        opening = float(row[0])
        if self._level is not None:
            level = float(_sample(self._level[:, None], t)[0])
            opening = level**LEVEL_EXPONENT * (
                LEVEL_INDEPENDENT_OPEN + (1 - LEVEL_INDEPENDENT_OPEN) * opening
            )
        return MouthShape(
            open=min(opening, cap), wide=float(row[1]), teeth=float(row[2]), tongue=float(row[3])
        )


def _sample(track: np.ndarray, t: float) -> np.ndarray:
    """Linear interpolation of a (n, k) track sampled at TRACK_RATE."""
    x = float(np.clip(t * TRACK_RATE, 0, len(track) - 1))
    i = min(int(x), max(len(track) - 2, 0))
    j = min(i + 1, len(track) - 1)
    f = x - i
    return track[i] * (1 - f) + track[j] * f


def _level_track(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    levels = audio_levels(audio, sample_rate, TRACK_RATE)
    if len(levels) == 0:
        return np.zeros(1, np.float32)
    return np.clip(_smooth(levels[:, None], LEVEL_SMOOTHING_S)[:, 0], 0, 1).astype(np.float32)
