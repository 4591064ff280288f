"""Transcripts of overlapping people keep their own speaker (real Silero VAD, real tiny.en).

The contract `SegmentSpeakerMixin` relies on in Pipecat's segmented STT; with Pipecat's plain
`WhisperSTTService` the first of two overlapping utterances is stamped with the second speaker.
"""

from __future__ import annotations

import pytest
from pipecat.frames.frames import TranscriptionFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.transcriptions.language import Language

from processors.stt.whisper import AvatarWhisperSTTService
from tests.support.probe import words_of
from tests.unit.test_participant_speech import _frames, _interleave, _segmenter, _speech


@pytest.fixture(scope="module")
def overlapping_frames():
    alice = _speech("What is the capital of France?")
    # Bob starts while Alice talks and ends ~0.6 s after her: his utterance reaches the STT
    # while hers is still being transcribed.
    bob = _speech("The train was late again this morning.", "piper", lead_s=0.5)
    return _interleave(_frames("alice", alice), _frames("bob", bob))


async def _transcripts(stt, frames) -> dict[str, list[str]]:
    down, _ = await run_test(Pipeline([_segmenter(), stt]),
                             frames_to_send=[*frames, SleepFrame(sleep=3.0)])
    return {f.user_id: words_of(f.text) for f in down if isinstance(f, TranscriptionFrame)}


async def test_overlapping_transcripts_keep_their_own_speaker(whisper_model, overlapping_frames):
    heard = await _transcripts(AvatarWhisperSTTService(model=whisper_model), overlapping_frames)
    assert "france" in heard.get("alice", []), heard
    assert "train" in heard.get("bob", []), heard


async def test_the_plain_whisper_service_is_what_needs_it(whisper_model, overlapping_frames):
    plain = WhisperSTTService(
        device="cpu",
        compute_type="int8",
        settings=WhisperSTTService.Settings(model=whisper_model, language=Language.EN),
    )
    heard = await _transcripts(plain, overlapping_frames)
    assert "france" not in heard.get("alice", []), heard
