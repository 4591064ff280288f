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


@dataclass
class PlayoutServerMessageFrame(DataFrame):
    """An RTVI `server-message` to send when the audio pushed before it has been played out.

    It travels downstream with the audio, in order, and the output transport passes it on only
    once the audio before it has been handed to the room; the RTVI observer of
    processors/rtvi_adapter.py sends it then, so a client hears the audio after it about as late
    as the message arrives (a `bot-tts-timing` released with its sentence's first audio).
    A `played_ms` in `data` (how much of the audio after the frame had been played) is lowered
    by the audio the transport still holds ahead of it when it is sent.
    """

    data: dict = field(default_factory=dict)
