"""EarlyTranscripts: which final segment takes an early run's result, and what happens when the
early run fails (the real model's runs: tests/unit/test_stt_whisper.py)."""

from __future__ import annotations

import numpy as np

from processors.stt.early_transcripts import EarlyTranscripts

SPEECH = np.linspace(-0.5, 0.5, 1600, dtype=np.float32)
OPTIONS = {"beam_size": 1, "language": "en"}


def _final(speech: np.ndarray, quiet: int = 800) -> np.ndarray:
    return np.concatenate([speech, np.zeros(quiet, np.float32)])


def test_the_final_segment_that_begins_with_the_paused_speech_takes_its_result():
    early = EarlyTranscripts(run=lambda audio, options: ("text", len(audio)))
    early.start("alice", speech=SPEECH, padded=_final(SPEECH), options=OPTIONS)
    assert early.take(_final(SPEECH, 1200), {"language": "en", "beam_size": 1}) == (
        "text", len(SPEECH) + 800)
    assert early.take(_final(SPEECH, 1200), OPTIONS) is None  # taken once
    assert (early.used, early.dropped) == (1, 0)
    early.close()


def test_other_options_other_audio_and_withdrawn_pauses_are_not_taken():
    early = EarlyTranscripts(run=lambda audio, options: "text")
    early.start("alice", speech=SPEECH, padded=_final(SPEECH), options=OPTIONS)
    assert early.take(_final(SPEECH), {**OPTIONS, "beam_size": 5}) is None
    assert early.take(_final(SPEECH[::-1]), OPTIONS) is None
    assert early.take(SPEECH[:100], OPTIONS) is None  # shorter than the paused speech
    early.drop("alice")
    assert early.take(_final(SPEECH), OPTIONS) is None
    early.start("alice", speech=SPEECH, padded=_final(SPEECH), options=OPTIONS)
    early.start("alice", speech=SPEECH[:800], padded=_final(SPEECH[:800]), options=OPTIONS)
    assert early.dropped == 2 and early.used == 0  # withdrawn, then replaced by a later pause
    early.close()


def test_a_failed_early_run_leaves_the_final_segment_to_its_own_run():
    def fail(audio, options):
        raise RuntimeError("model crashed")

    early = EarlyTranscripts(run=fail)
    early.start("alice", speech=SPEECH, padded=_final(SPEECH), options=OPTIONS)
    assert early.take(_final(SPEECH), OPTIONS) is None
    assert early.used == 0
    early.close()
