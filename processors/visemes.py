"""Phonemes (misaki/Kokoro alphabet, the one hibari's model reads) → Oculus visemes.

Every character of hibari's phoneme vocabulary falls in exactly one class:
  - a sound with a mouth shape (PHONEME_VISEMES),
  - a modifier that lengthens or colours its neighbour (stress, length, aspiration, tone) and has
    no mouth shape of its own (MODIFIERS),
  - a pause: punctuation, the word space and the model's padding (PAUSES) → "sil" when long.
`viseme_track` turns timed phonemes into merged VisemeTimings for the face and the client.
"""

from __future__ import annotations

from collections.abc import Iterable

from processors.timing import VISEMES, VisemeTiming

SILENCE = "sil"

# Shortest pause shown as a closed mouth; shorter ones (a word space) keep the previous shape.
MIN_SILENCE_S = 0.06


def _each(chars: str, viseme: str) -> dict[str, str]:
    return {c: viseme for c in chars}


PHONEME_VISEMES: dict[str, str] = {
    # lips closed: p b m (and the bilabial fricative β)
    **_each("pbmβ", "PP"),
    # lower lip on teeth
    **_each("fvɸʋ", "FF"),
    # tongue between teeth
    **_each("θð", "TH"),
    # tongue tip stops (misaki's "T" is the flapped t of "butter"; "ʔ" its glottal t)
    **_each("tdTɾɖʈʔ", "DD"),
    # velar/uvular/palatal stops and fricatives, h
    **_each("kɡgŋqcɟxχɣɰçh", "kk"),
    # post-alveolar and palatal affricates/fricatives
    **_each("ʧʤʃʒʂɕʥʨ", "CH"),
    # sibilants and their affricates
    **_each("szSʦʣ", "SS"),
    # nasals and laterals with the tongue up
    **_each("nlɲɳɴʎ", "nn"),
    # r sounds
    **_each("ɹrɻʁɽꭧ", "RR"),
    # open vowels and diphthongs opening wide (I = aɪ, W = aʊ)
    **_each("aɑɐʌəᵊæIW", "aa"),
    # mid front vowels (A = eɪ)
    **_each("eɛɜɚA", "E"),
    # close front vowels and the palatal glide
    **_each("iɪᵻɨjʝ", "I"),
    # rounded back vowels (O = oʊ, Q = British əʊ, Y = ɔɪ)
    **_each("oɔɒøœOQYɤ", "O"),
    # close rounded vowels and w
    **_each("uʊɯyɥw", "U"),
}

# No mouth shape of their own: stress, length, aspiration, palatalization, nasalization,
# labialization, intonation arrows. Their time goes to the following sound (stress marks precede
# the vowel they stress) or, at the end of a word, to the preceding one.
MODIFIERS: frozenset[str] = frozenset("ˈˌːʰʲ\u0303ᵝ↓→↗↘")

# Silence-like: punctuation, the word space, the model's padding ("").
PAUSES: frozenset[str] = frozenset(';:,.!?—…"()“” ') | {""}

assert set(PHONEME_VISEMES.values()) <= set(VISEMES)
assert not (set(PHONEME_VISEMES) & MODIFIERS) and not (set(PHONEME_VISEMES) & PAUSES)


def phoneme_viseme(phoneme: str) -> str | None:
    """The viseme of one phoneme character; SILENCE for a pause, None for a modifier.

    Raises KeyError for a character outside the alphabet so a new vocabulary is noticed.
    """
    if phoneme in PAUSES:
        return SILENCE
    if phoneme in MODIFIERS:
        return None
    return PHONEME_VISEMES[phoneme]


def viseme_track(phonemes: Iterable[tuple[str, float, float]]) -> list[VisemeTiming]:
    """(phoneme, start, duration) in time order → contiguous visemes, equal neighbours merged.

    Modifiers lend their time to the next sound (or the previous one when a pause follows);
    pauses shorter than MIN_SILENCE_S extend the previous shape instead of closing the mouth.
    """
    spans: list[list] = []          # [viseme, start, end]
    pending_start: float | None = None
    for phoneme, start, duration in phonemes:
        viseme = phoneme_viseme(phoneme)
        end = start + duration
        if viseme is None:
            pending_start = start if pending_start is None else pending_start
            continue
        if viseme == SILENCE and pending_start is not None and spans:
            spans[-1][2] = start            # a trailing modifier belongs to the sound before it
            pending_start = None
        if pending_start is not None:
            start, pending_start = pending_start, None
        if viseme == SILENCE and duration < MIN_SILENCE_S and spans:
            viseme = spans[-1][0]
        if spans and spans[-1][0] == viseme:
            spans[-1][2] = end
        else:
            spans.append([viseme, start, end])
    if pending_start is not None and spans:
        spans[-1][2] = max(spans[-1][2], end)
    return [VisemeTiming(v, s, e - s) for v, s, e in spans if e > s]
