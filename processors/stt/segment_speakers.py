"""Keeps each segment's speaker on its transcript in a segmented STT that hears several people.

Pipecat's `SegmentedSTTService` transcribes queued segments off the audio path and stamps each
transcript with the user id of the *latest* audio frame it saw (`self._user_id`). With one
person that is the speaker; in a meeting, when a second person's utterance arrives while the
first is still being transcribed, the first transcript would carry the second person's id.
This mixin records the speaker when a segment is queued (at VAD stop) and puts that id on the
segment's transcripts. Mix it in front of any segmented STT:

    class AvatarWhisperSTTService(SegmentSpeakerMixin, DecodingWhisperSTTService): ...

It relies on `SegmentedSTTService` queuing one segment per `VADUserStoppedSpeakingFrame` while
the service is usable and calling `run_stt` once per segment, in order;
tests/unit/test_stt_speakers.py pins that contract with the real Whisper service.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncGenerator

from pipecat.frames.frames import (
    Frame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection


class SegmentSpeakerMixin:
    """Attributes each transcript to the speaker of its own segment (for SegmentedSTTService)."""

    def __init__(self, *args, **kwargs):
        """Create the service; arguments are the segmented STT's own."""
        super().__init__(*args, **kwargs)
        self._segment_speakers: collections.deque[str] = collections.deque()

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Note the speaker of each segment as it is queued."""
        # a mixin: these resolve on the STT service it is mixed into
        if isinstance(frame, VADUserStoppedSpeakingFrame) and self.is_usable:  # type: ignore[attr-defined]
            self._segment_speakers.append(self._user_id)  # type: ignore[attr-defined]
        await super().process_frame(frame, direction)  # type: ignore[misc]

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        """Transcribe one segment and stamp its transcripts with that segment's speaker."""
        speaker = self._segment_speakers.popleft() if self._segment_speakers else None
        # a mixin: these resolve on the STT service it is mixed into
        async for frame in super().run_stt(audio):  # type: ignore[misc]
            if speaker is not None and isinstance(
                frame, (TranscriptionFrame, InterimTranscriptionFrame)
            ):
                frame.user_id = speaker
            yield frame

