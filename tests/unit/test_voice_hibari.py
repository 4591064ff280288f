"""HibariVoice: audio is hibari's own; word/viseme timings come from the model, match the sound."""

import numpy as np
import pytest
from hibari import Hibari

from processors.timing import VISEMES
from processors.tts.hibari_voice import (
    LEAD_PAD_UNITS,
    PEAK_DBFS,
    SAMPLE_RATE,
    SAMPLES_PER_UNIT,
    HibariVoice,
)
from processors.visemes import PAUSES

SENTENCES = [
    "Hello there, my friend.",
    "The quick brown fox jumps over the lazy dog!",
    "I think we should meet at the station around noon, don't you?",
    "Photosynthesis converts light into chemical energy.",
    "Well, honestly, that is a surprisingly difficult question.",
    "Yes.",
]
# normalize() rewrites these (times, units, titles, money, phone numbers, abbreviations).
REWRITTEN = [
    "It's 3:30 pm and 5km away (approx.) — okay?",
    "On the 3rd of March 2024, Dr. Smith paid $9.99 — didn't he?",
    "Call 555-123-4567, e.g. tomorrow!",
]


@pytest.fixture(scope="module")
def voice():
    return HibariVoice(seed=0)


def envelope(audio: np.ndarray, start: float, end: float) -> float:
    """RMS of audio between two times (seconds), in full-scale units."""
    a, b = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
    seg = audio[a:b].astype(np.float64) / 32768
    return float(np.sqrt(np.mean(seg**2))) if len(seg) else 0.0


@pytest.mark.parametrize("text", SENTENCES + REWRITTEN)
def test_words_are_the_text_as_written_in_order_inside_the_audio(voice, text):
    speech = voice.synthesize(text)
    assert [w.word for w in speech.words] == text.split()
    assert speech.sample_rate == SAMPLE_RATE == voice.sample_rate
    assert speech.audio.dtype == np.int16 and len(speech.audio) > 0
    previous_end = 0.0
    for w in speech.words:
        assert w.start >= previous_end - 1e-9, w
        assert w.duration >= 0
        previous_end = w.end
    assert previous_end <= speech.duration + 1e-9
    # Everything pronounced takes time (only a lone dash may be a zero-length mark).
    assert all(w.duration > 0 for w in speech.words if w.word != "—")


@pytest.mark.parametrize("text", SENTENCES)
def test_word_spans_hold_the_speech_and_the_rest_is_quiet(voice, text):
    speech = voice.synthesize(text)
    audio = speech.audio
    speech_level = (
        np.sqrt(
            np.mean(
                np.concatenate(
                    [
                        audio[int(w.start * SAMPLE_RATE) : int(w.end * SAMPLE_RATE)]
                        for w in speech.words
                    ]
                ).astype(np.float64)
                ** 2
            )
        )
        / 32768
    )
    for w in speech.words:
        assert envelope(audio, w.start, w.end) > 0.25 * speech_level, w
    # Before the first word and after the last one there is silence.
    assert envelope(audio, 0, speech.words[0].start) < 0.2 * speech_level
    assert envelope(audio, speech.words[-1].end, speech.duration) < 0.05 * speech_level
    # Nearly all the energy is inside the words (plus the short spaces between them).
    inside = np.zeros(len(audio), bool)
    inside[int(speech.words[0].start * SAMPLE_RATE) : int(speech.words[-1].end * SAMPLE_RATE)] = (
        True
    )
    energy = audio.astype(np.float64) ** 2
    assert energy[inside].sum() / energy.sum() > 0.99


def test_first_sound_starts_with_the_first_word(voice):
    """The decoder's lead is corrected: sound begins within 60 ms of the first word's start."""
    hop = 60
    for text in SENTENCES:
        speech = voice.synthesize(text)
        frames = speech.audio[: len(speech.audio) // hop * hop].reshape(-1, hop).astype(np.float64)
        rms = np.sqrt((frames**2).mean(axis=1))
        onset = np.nonzero(rms > 0.1 * np.median(rms[rms > 0.01 * rms.max()]))[0][0] * hop
        assert abs(onset / SAMPLE_RATE - speech.words[0].start) < 0.06, text


def test_silence_between_sentences_is_where_the_timings_say(voice):
    text = "That was the first part. Here comes the second one."
    first, second = (voice.synthesize(s) for s in voice.sentences(text))
    joined = np.concatenate([first.audio, second.audio])
    gap_start, gap_end = first.words[-1].end, first.duration + second.words[0].start
    assert gap_end - gap_start > 0.15
    level = envelope(joined, 0, len(joined) / SAMPLE_RATE)
    assert envelope(joined, gap_start, gap_end) < 0.1 * level
    assert envelope(joined, gap_start - 0.15, gap_start) > 0.2 * level
    assert envelope(joined, gap_end, gap_end + 0.15) > 0.2 * level


def test_audio_is_hibaris_own_with_the_leading_silence_shortened():
    """The extra graph output does not change the waveform (same seed → same samples)."""
    text = "Hello there, my friend."
    reference = Hibari()(text, seed=3)
    speech = HibariVoice(seed=3).synthesize(text)
    trimmed = len(reference) - len(speech.audio)
    assert trimmed > 0 and trimmed % SAMPLES_PER_UNIT == 0
    assert trimmed / SAMPLES_PER_UNIT + LEAD_PAD_UNITS >= 10  # the model's lead pad was long
    peak = np.max(np.abs(reference))
    expected = reference[trimmed:] / peak * 10 ** (PEAK_DBFS / 20) * 32767
    assert np.max(np.abs(speech.audio - expected)) <= 1.0


def test_gain_peaks_at_minus_3_dbfs_without_clipping(voice):
    for text in SENTENCES:
        peak = np.max(np.abs(voice.synthesize(text).audio.astype(np.int32)))
        assert abs(20 * np.log10(peak / 32767) - PEAK_DBFS) < 0.01
        assert peak < 32767


def test_visemes_tile_the_sentence_and_follow_the_words(voice):
    speech = voice.synthesize("Bob fed the zebra.")
    assert speech.visemes[0].start == 0 and speech.visemes[0].viseme == "sil"
    for a, b in zip(speech.visemes, speech.visemes[1:], strict=False):
        assert abs(a.end - b.start) < 1e-9 and a.viseme != b.viseme
    assert abs(speech.visemes[-1].end - speech.duration) < 1e-9
    assert {v.viseme for v in speech.visemes} <= set(VISEMES)

    def shapes_during(word):
        w = next(x for x in speech.words if x.word == word)
        return [v.viseme for v in speech.visemes if v.start < w.end and v.end > w.start]

    assert shapes_during("Bob")[0] == "PP"  # lips closed for the b
    assert "FF" in shapes_during("fed")
    assert "TH" in shapes_during("the")
    assert "SS" in shapes_during("zebra.")


def test_speed_changes_the_pace(voice):
    slow = HibariVoice(speed=0.8, seed=0).synthesize(SENTENCES[1])
    fast = HibariVoice(speed=1.5, seed=0).synthesize(SENTENCES[1])
    assert slow.words[-1].end > 1.4 * fast.words[-1].end


def test_sentences_keep_every_character():
    text = 'It is 5km away (approx.) — okay? Dr. Smith said "hi." Then he left.\n\nNew paragraph'
    parts = HibariVoice.sentences(text)
    assert parts == [
        "It is 5km away (approx.)",
        "— okay?",
        'Dr. Smith said "hi."',
        "Then he left.",
        "New paragraph",
    ]
    assert " ".join(parts).split() == text.split()


def test_long_sentence_is_cut_at_clauses_and_timed_across_the_cut(voice):
    text = ", ".join(["the little red hen baked some bread for all of her friends"] * 8) + "."
    speech = voice.synthesize(text)
    assert [w.word for w in speech.words] == text.split()
    starts = [w.start for w in speech.words]
    assert starts == sorted(starts)
    assert speech.words[-1].end <= speech.duration
    assert envelope(speech.audio, speech.words[-1].start, speech.words[-1].end) > 0.01


def test_nothing_to_say_and_bad_settings(voice):
    assert len(voice.synthesize("   ").audio) == 0
    assert voice.synthesize("   ").words == []
    with pytest.raises(ValueError, match="unknown hibari voice"):
        HibariVoice(voice="nobody")
    with pytest.raises(ValueError, match="speed"):
        HibariVoice(speed=5.0)


def test_pause_characters_are_not_inside_words(voice):
    speech = voice.synthesize("Wait, what?")
    assert speech.words[0].word == "Wait," and speech.words[1].word == "what?"
    assert speech.words[1].start - speech.words[0].end > 0.04  # the comma's pause
    assert set(",?") <= PAUSES


def test_whisper_hears_each_word_where_the_timings_put_it(voice, whisper_model):
    """Independent check of word identity and place: faster-whisper hears the same words, and
    nearly all of them start inside our span of that word. tiny.en's word times are coarse and
    run late (now and then a degenerate zero-length word), so a few outliers are allowed."""
    from faster_whisper import WhisperModel
    from scipy.signal import resample_poly

    model = WhisperModel(whisper_model, device="cpu", compute_type="int8", cpu_threads=1)

    def plain(word):
        return "".join(c for c in word.lower() if c.isalpha() or c == "'")

    errors = []
    for text in SENTENCES:
        speech = voice.synthesize(text)
        audio16k = resample_poly(speech.audio.astype(np.float32) / 32768, 2, 3)
        segments, _ = model.transcribe(audio16k, language="en", word_timestamps=True, beam_size=1)
        heard = [w for s in segments for w in s.words]
        assert [plain(w.word) for w in heard] == [plain(w.word) for w in speech.words], text
        errors += [(ours, theirs.start) for ours, theirs in zip(speech.words, heard, strict=False)]
    inside = [
        ours.start - 0.1 <= start <= max(ours.end, ours.start + 0.15) for ours, start in errors
    ]
    outside = [e for e, ok in zip(errors, inside, strict=False) if not ok]
    assert sum(inside) >= 0.9 * len(errors), outside
    assert np.median([abs(start - ours.start) for ours, start in errors]) < 0.1
