"""Pipecat frames the project adds to the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipecat.frames.frames import DataFrame

from processors.timing import VisemeTiming, WordTiming


@dataclass
class SentenceTimingFrame(DataFrame):
    """Timings of the sentence whose TTSAudioRawFrames follow this frame.

    Pushed by a TTS service right before the first audio frame of a sentence. Times are
    seconds relative to that sentence's first audio sample. The face video processor turns it
    into a viseme timeline; nothing else needs to consume it.
    """

    seq: int = 0
    text: str = ""
    sample_rate: int = 24000
    words: list[WordTiming] = field(default_factory=list)
    visemes: list[VisemeTiming] = field(default_factory=list)
    context_id: str | None = None
