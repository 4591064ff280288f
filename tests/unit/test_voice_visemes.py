"""Phoneme → viseme mapping: covers hibari's whole phoneme vocabulary, builds clean tracks."""

import json
from pathlib import Path

import hibari
import pytest

from processors.timing import VISEMES
from processors.visemes import (
    MIN_SILENCE_S,
    MODIFIERS,
    PAUSES,
    PHONEME_VISEMES,
    SILENCE,
    phoneme_viseme,
    viseme_track,
)

VOCAB = json.loads((Path(hibari.__file__).parent / "assets" / "vocab.json").read_text("utf-8"))


def test_every_vocabulary_character_has_exactly_one_class():
    for char in VOCAB:
        classes = [char in PHONEME_VISEMES, char in MODIFIERS, char in PAUSES]
        assert sum(classes) == 1, f"{char!r} (U+{ord(char):04X}) is in {sum(classes)} classes"


def test_mapping_uses_only_oculus_visemes_and_all_of_them():
    assert set(PHONEME_VISEMES.values()) | {SILENCE} == set(VISEMES)


@pytest.mark.parametrize("phoneme, viseme", [
    ("p", "PP"), ("b", "PP"), ("m", "PP"), ("f", "FF"), ("v", "FF"), ("θ", "TH"), ("ð", "TH"),
    ("t", "DD"), ("d", "DD"), ("k", "kk"), ("ɡ", "kk"), ("ŋ", "kk"), ("ʧ", "CH"), ("ʤ", "CH"),
    ("ʃ", "CH"), ("s", "SS"), ("z", "SS"), ("n", "nn"), ("l", "nn"), ("ɹ", "RR"), ("ɑ", "aa"),
    ("æ", "aa"), ("ɛ", "E"), ("A", "E"), ("i", "I"), ("ɪ", "I"), ("O", "O"), ("ɔ", "O"),
    ("u", "U"), ("w", "U"), (",", SILENCE), (" ", SILENCE), ("", SILENCE), ("ˈ", None),
])
def test_english_phonemes(phoneme, viseme):
    assert phoneme_viseme(phoneme) == viseme


def test_unknown_character_is_an_error():
    with pytest.raises(KeyError):
        phoneme_viseme("☃")


def test_track_merges_neighbours_and_lends_modifier_time_forward():
    # "pˈæt": the stress mark's time goes to the vowel after it; p and b-like neighbours merge.
    track = viseme_track([("", 0.0, 0.1), ("p", 0.1, 0.05), ("b", 0.15, 0.05), ("ˈ", 0.2, 0.05),
                          ("æ", 0.25, 0.1), ("t", 0.35, 0.05), (".", 0.4, 0.2)])
    assert [(v.viseme, round(v.start, 3), round(v.duration, 3)) for v in track] == [
        ("sil", 0.0, 0.1),
        ("PP", 0.1, 0.1),
        ("aa", 0.2, 0.15),
        ("DD", 0.35, 0.05),
        ("sil", 0.4, 0.2),
    ]


def test_short_space_keeps_the_mouth_shape_long_pause_closes_it():
    gap = MIN_SILENCE_S / 2
    short = viseme_track([("m", 0.0, 0.1), (" ", 0.1, gap), ("b", 0.1 + gap, 0.1)])
    assert [v.viseme for v in short] == ["PP"]
    long = viseme_track([("m", 0.0, 0.1), (",", 0.1, 0.2), ("b", 0.3, 0.1)])
    assert [v.viseme for v in long] == ["PP", "sil", "PP"]


def test_trailing_modifier_before_a_pause_stays_with_its_sound():
    track = viseme_track([("ɑ", 0.0, 0.1), ("ː", 0.1, 0.1), (".", 0.2, 0.2)])
    assert [(v.viseme, round(v.end, 3)) for v in track] == [("aa", 0.2), ("sil", 0.4)]
