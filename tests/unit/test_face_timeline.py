"""VisemeTimeline: viseme shapes, co-articulation, closures, the audio-envelope fallback."""

from __future__ import annotations

import numpy as np
import pytest

from processors.face.timeline import (
    TRACK_RATE,
    VISEME_SHAPES,
    VisemeTimeline,
    audio_levels,
)
from processors.timing import VISEMES, VisemeTiming

SR = 24000


def tone(seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * 32767 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)


def test_every_viseme_has_a_shape():
    assert set(VISEME_SHAPES) == set(VISEMES)


def test_audio_levels_span_silence_to_loud():
    audio = np.concatenate([np.zeros(SR // 2, np.int16), tone(0.5, 0.7)])
    levels = audio_levels(audio, SR, 25)
    assert len(levels) == 25
    assert levels[:12].max() == 0.0
    assert levels[13:].min() > 0.9


def test_open_vowel_opens_and_bilabial_closes_even_when_loud():
    visemes = [VisemeTiming("aa", 0.0, 0.3), VisemeTiming("PP", 0.3, 0.08),
               VisemeTiming("aa", 0.38, 0.3)]
    timeline = VisemeTimeline.from_visemes(visemes).with_audio(tone(0.7, 0.7), SR)
    assert timeline.shape_at(0.15).open > 0.6
    assert timeline.shape_at(0.34).open == pytest.approx(0.0, abs=1e-6)
    assert timeline.shape_at(0.53).open > 0.6


def test_short_bilabial_still_closes_for_a_whole_frame():
    visemes = [VisemeTiming("aa", 0.0, 0.2), VisemeTiming("PP", 0.2, 0.02),
               VisemeTiming("aa", 0.22, 0.2)]
    timeline = VisemeTimeline.from_visemes(visemes).with_audio(tone(0.42, 0.7), SR)
    for dt in (-0.015, 0.0, 0.015):  # any 25 fps frame centre holding the midpoint
        assert timeline.shape_at(0.21 + dt).open < 0.05


def test_rounded_and_spread_visemes_differ_in_width():
    timeline = VisemeTimeline.from_visemes(
        [VisemeTiming("U", 0.0, 0.3), VisemeTiming("I", 0.3, 0.3)]
    )
    assert timeline.shape_at(0.15).wide < -0.5
    assert timeline.shape_at(0.45).wide > 0.5


def test_coarticulation_moves_smoothly():
    names = ["sil", "aa", "PP", "U", "SS", "E", "sil"]
    visemes = [VisemeTiming(v, 0.06 * i, 0.06) for i, v in enumerate(names)]
    timeline = VisemeTimeline.from_visemes(visemes).with_audio(tone(0.42, 0.7), SR)
    track = np.array([timeline.shape_at(i / TRACK_RATE).as_array() for i in range(45)])
    # no pose component jumps by more than a third of its range in 10 ms
    assert np.abs(np.diff(track, axis=0)).max() < 0.34


def test_quiet_audio_opens_less_than_loud():
    visemes = [VisemeTiming("aa", 0.0, 0.5)]
    loud = VisemeTimeline.from_visemes(visemes).with_audio(tone(0.5, 0.7), SR)
    quiet = VisemeTimeline.from_visemes(visemes).with_audio(tone(0.5, 0.02), SR)
    assert quiet.shape_at(0.25).open < 0.5 * loud.shape_at(0.25).open


def test_unknown_viseme_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown visemes"):
        VisemeTimeline.from_visemes([VisemeTiming("ZZ", 0.0, 0.1)])


def test_envelope_fallback_follows_the_audio():
    audio = np.concatenate(
        [np.zeros(SR // 2, np.int16), tone(0.5, 0.6), np.zeros(SR // 2, np.int16)]
    )
    timeline = VisemeTimeline.from_audio(audio, SR)
    assert timeline.shape_at(0.2).open < 0.05
    assert timeline.shape_at(0.75).open > 0.5
    assert timeline.shape_at(1.3).open < 0.05


def test_times_outside_the_timeline_are_clamped():
    timeline = VisemeTimeline.from_visemes([VisemeTiming("sil", 0.0, 0.2)])
    assert timeline.shape_at(-1.0).open == timeline.shape_at(0.0).open
    assert timeline.shape_at(99.0).open == pytest.approx(0.0)
