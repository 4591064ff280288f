"""The test people's speech is timed from their voice: `voiced` keeps the span from the first to
the last loud 10 ms frame, so benchmarks do not count a synthesiser's silence as talking."""

import numpy as np

from tests.support.voices import as_said, voiced

RATE = 16000


def tone(seconds: float, amplitude: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.int16)


def test_the_silence_around_the_words_is_cut():
    clip = np.concatenate([np.zeros(RATE * 3 // 10, np.int16), tone(1.0),
                           np.zeros(RATE * 45 // 100, np.int16)])
    span = voiced(clip, RATE)
    assert abs(len(span) / RATE - 1.0) <= 0.011  # within one 10 ms frame
    assert np.abs(span[: RATE // 100]).max() > 1000 and np.abs(span[-RATE // 100 :]).max() > 1000


def test_a_pause_inside_the_words_is_kept():
    clip = np.concatenate([tone(0.5), np.zeros(RATE // 2, np.int16), tone(0.5)])
    assert abs(len(voiced(clip, RATE)) - len(clip)) <= RATE // 100


def test_a_clip_without_a_loud_frame_is_returned_whole():
    quiet = tone(1.0, amplitude=100)  # about -50 dBFS
    assert voiced(quiet, RATE) is quiet


def test_the_embedded_voice_is_sent_without_its_trailing_silence():
    samples, rate = as_said("What do bees make?")
    tail = samples[-rate // 100 :].astype(np.float64) / 32768
    assert 20 * np.log10(np.sqrt(np.mean(tail**2)) + 1e-9) > -40.0
