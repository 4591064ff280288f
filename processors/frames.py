"""Pipecat frames the project adds to the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipecat.frames.frames import DataFrame, SystemFrame

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
    """An RTVI `server-message` sent on the playout clock, not when it is pushed.

    It travels downstream with the audio, in order, and the output transport passes it on once
    the audio before it has been handed to the room; the RTVI observer of
    processors/rtvi_adapter.py sends it then or, with `with_next_audio`, once the first audio
    after it has been handed over too (a `bot-tts-timing` goes with its sentence's first audio).
    A `played_ms` in `data` (how much of the sentence had been played) is lowered by the audio
    LiveKit still holds ahead of that point when it is sent.
    """

    data: dict = field(default_factory=dict)
    with_next_audio: bool = False


@dataclass
class SpeechPausedFrame(SystemFrame):
    """A person has been quiet for a moment inside an utterance; `audio` is the utterance so far.

    Pushed by the speech segmenter (processors/participant_speech.py), in order with the
    utterance's own frames, so a segmented STT can start transcribing before the VAD confirms the
    end: the utterance ends as this audio plus quiet, unless a `SpeechResumedFrame` for the same
    person follows first.
    """

    user_id: str = ""
    audio: bytes = b""
    sample_rate: int = 16000


@dataclass
class SpeechResumedFrame(SystemFrame):
    """The person of an earlier `SpeechPausedFrame` spoke again: its audio is not the utterance."""

    user_id: str = ""
