"""Pipecat's local Whisper STT with the decoding options the bot chooses by measurement.

`WhisperSTTService` passes only `language`, `hotwords` and `initial_prompt` to faster-whisper's
`transcribe`, which then decodes with a beam of 5. On a 2-core CPU a greedy beam is several times
cheaper for short turns (bench/stt_bench.py), so this service adds `beam_size` as a setting and
takes `hotwords` (e.g. the bot's name and aliases) and `initial_prompt` as constructor options.
It can also run on a model loaded beforehand (a worker's prewarmed job process), it transcribes
an utterance early when the speech segmenter reports a pause in it (`SpeechPausedFrame`,
processors/stt/early_transcripts.py), and `AvatarWhisperSTTService` attributes each transcript to
its own segment's speaker (meetings).
This module is the one place that overrides the service's private model loading (`_load`, which
sets `_model`, the model `run_stt` transcribes with, and refuses a language the model cannot
transcribe with `_unsupported_language`), and that repeats `run_stt`'s model call for an early
run (with the padding `_trailing_silence` gives the final segment). The model is built by
`avatar_core.whisper.load_whisper`, as the aligner's and the voice uploads' are, so they share one
set of options; tests/unit/test_whisper_stt_adapter_pipecat_1_14.py pins all of it.

Upstream: `WhisperSTTService` options for a model loaded beforehand and for extra `transcribe`
arguments (such as `beam_size`) would remove the override; a segmented-STT hook for a segment
whose end is likely (transcribe now, confirm or discard later) would remove the early runs'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pipecat.frames.frames import Frame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.whisper.stt import WhisperSTTService, WhisperSTTSettings
from pipecat.transcriptions.language import Language
from pipecat.utils.types import NOT_GIVEN, NotGiven, assert_given, require_given

from avatar_core.whisper import load_whisper
from processors.frames import SpeechPausedFrame, SpeechResumedFrame
from processors.stt.early_transcripts import EarlyTranscripts
from processors.stt.segment_speakers import SegmentSpeakerMixin

# Greedy decoding: measured on tiny.en, the same key-word recall as beam 5 at a fraction of the
# cost (bench/stt_bench.py, README "Hearing").
DEFAULT_BEAM_SIZE = 1


@dataclass
class DecodingWhisperSTTSettings(WhisperSTTSettings):
    """Whisper settings plus the beam width.

    Parameters:
        beam_size: Beam width of faster-whisper's decoder (1 = greedy).
    """

    beam_size: int | NotGiven = field(default_factory=lambda: NOT_GIVEN)


class _DecodingModel:
    """The loaded WhisperModel, with the extra `transcribe` options read from live settings, and
    the early runs a final segment's `transcribe` takes its result from when they match."""

    def __init__(self, model: Any, settings: DecodingWhisperSTTSettings):
        self._model = model
        self._settings = settings
        self.early = EarlyTranscripts(run=self._run)

    def options(self, **options) -> dict[str, Any]:
        """The options of a `transcribe` call given `options` (those Pipecat passes)."""
        return {"beam_size": assert_given(self._settings.beam_size), **options}

    def _run(self, audio: np.ndarray, options: dict[str, Any]):
        segments, info = self._model.transcribe(audio, **options)
        return list(segments), info  # decoded here, in the early run's thread

    def transcribe(self, audio, **options):
        options = self.options(**options)
        early = self.early.take(audio, options)
        return early if early is not None else self._model.transcribe(audio, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


class DecodingWhisperSTTService(WhisperSTTService):
    """`WhisperSTTService` with a beam-size setting and hotwords / initial prompt as options."""

    Settings = DecodingWhisperSTTSettings
    _settings: DecodingWhisperSTTSettings

    def __init__(
        self,
        *,
        model: str,
        beam_size: int = DEFAULT_BEAM_SIZE,
        hotwords: str | None = None,
        initial_prompt: str | None = None,
        language: Language = Language.EN,
        compute_type: str = "int8",
        loaded_model: Any = None,
        **kwargs,
    ):
        """`model` is a faster-whisper model name or CTranslate2 folder; `hotwords` is one
        space-separated string of words to favour (names, jargon); `initial_prompt` is text the
        decoder reads as what came before (style, spelling); `loaded_model` is a faster-whisper
        `WhisperModel` already loaded (Whisper takes ~1.5 s to load on a small CPU), used instead
        of loading `model` (one pipeline at a time). The model runs on the CPU (load_whisper)."""
        self._loaded_model = loaded_model
        self._decoding: _DecodingModel | None = None
        super().__init__(
            device="cpu",
            compute_type=compute_type,
            settings=DecodingWhisperSTTSettings(
                model=model,
                language=language,
                beam_size=beam_size,
                hotwords=hotwords,
                initial_prompt=initial_prompt,
            ),
            **kwargs,
        )

    def _load(self):
        """Pipecat's hook that loads the model: the shared loader's (a lowered build thread), or
        the one loaded already; then Pipecat's check that it can transcribe the language."""
        model = self._loaded_model or load_whisper(
            require_given(self._settings.model, "Whisper model"), compute_type=self._compute_type
        )
        self._model = self._decoding = _DecodingModel(model, self._settings)
        if unsupported := self._unsupported_language():
            raise ValueError(unsupported)

    @property
    def early_transcripts(self) -> EarlyTranscripts | None:
        """The early runs (and how often one was taken or wasted), once the model is loaded."""
        return self._decoding.early if self._decoding is not None else None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Transcribe an utterance early at a pause in it (its frames end here); the rest as
        Pipecat's service does."""
        if isinstance(frame, SpeechPausedFrame):
            self._transcribe_early(frame)
        elif isinstance(frame, SpeechResumedFrame):
            if self._decoding is not None:
                self._decoding.early.drop(frame.user_id)
        else:
            await super().process_frame(frame, direction)

    def _transcribe_early(self, frame: SpeechPausedFrame) -> None:
        """Start the run the final segment will take, if it ends as this audio plus quiet: the
        same audio conversion, padding and `transcribe` options as Pipecat's `run_stt`."""
        if self._decoding is None or not self.is_usable or frame.sample_rate != self.sample_rate:
            return
        speech = np.frombuffer(frame.audio, dtype=np.int16).astype(np.float32) / 32768.0
        padding = np.zeros(len(self._trailing_silence()) // 2, dtype=np.float32)
        self._decoding.early.start(
            frame.user_id,
            speech=speech,
            padded=np.concatenate([speech, padding]),
            options=self._decoding.options(
                language=assert_given(self._settings.language),
                hotwords=assert_given(self._settings.hotwords),
                initial_prompt=assert_given(self._settings.initial_prompt),
            ),
        )

    async def cleanup(self):
        """Stop the early runs with the service."""
        await super().cleanup()
        if self._decoding is not None:
            self._decoding.early.close()


# the mixin's run_stt wraps the service's with the same signature
class AvatarWhisperSTTService(SegmentSpeakerMixin, DecodingWhisperSTTService):  # type: ignore[misc]
    """The bot's Whisper STT: decoding options, a preloaded model, one speaker per segment."""
