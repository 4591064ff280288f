"""The Pipecat TTS service for voices that come with word (and viseme) timings.

Every voice in the project speaks sentence by sentence and knows, per sentence, when each word
is said (ARCHITECTURE §4). This service does the Pipecat side once for all of them: for each
sentence it pushes the `bot-tts-timing` RTVI server-message (for 3D clients) as a
PlayoutServerMessageFrame, so the output transport releases it with the sentence's first audio,
a SentenceTimingFrame (for the face), the TTSAudioRawFrames, and reports the words through
`add_word_timestamps` with times cumulative over the turn, the way Pipecat's word tracker
expects them (one baseline per audio context, set by its first audio).

The voice (processors/tts/voice.py) decides the order: a TimedVoice's sentence goes out timings
first; a StreamedVoice's audio goes out as it streams (behind a SentenceTimingFrame without
visemes: the face falls back to audio-driven mouth shapes) and its timings follow, with the
`bot-tts-timing` released after the sentence's audio and `played_ms` saying how much of it was
already played. A FallbackVoice's sentence goes out in the order of whichever voice spoke it.
Voice and speed are `VoiceSettings`, so a TTSUpdateSettingsFrame changes them for the next
sentence.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import numpy as np
from loguru import logger
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame
from pipecat.services.tts_service import TTSService
from pipecat.utils.string import match_endofsentence

from processors.frames import PlayoutServerMessageFrame, SentenceTimingFrame
from processors.timing import TimedSpeech, tts_timing_message
from processors.tts.pipecat_tts_adapter import keep_audio_context_open
from processors.tts.voice import (
    AudioChunk,
    FallbackVoice,
    StreamedVoice,
    TimedVoice,
    VoiceSettings,
    VoiceUnavailable,
    align,
)

# Audio is pushed in chunks of one 25 fps video frame, so the face can lock frames to samples.
AUDIO_CHUNK_S = 0.04


class TimedTTSService(TTSService):
    """Pipecat TTS on a voice: per-sentence RTVI timing message + timing frame + audio + word
    times.

    `sentences` splits a synthesis request (a TTSSpeakFrame may hold several sentences) where
    the voice does; default: Pipecat's sentence tokenizer for the service language.
    """

    _settings: VoiceSettings

    def __init__(self, *, voice: TimedVoice | StreamedVoice | FallbackVoice,
                 settings: VoiceSettings | None = None,
                 sentences: Callable[[str], list[str]] | None = None, **kwargs):
        super().__init__(push_text_frames=False, push_start_frame=True, push_stop_frames=True,
                         settings=settings or VoiceSettings(model=None, voice=None,
                                                            language=None, speed=None),
                         **kwargs)
        self._voice = voice
        self._sentences = sentences or self._pipecat_sentences
        # Never cleared on its own between a streaming voice's (slow) chunks, which would drop
        # the samples held in the filter; flushed at the end of every sentence instead.
        self._sentence_resampler = create_stream_resampler(clear_after_secs=None)
        self._seq = 0
        # Seconds of audio already produced per audio context: word times are cumulative over
        # a context (a turn), whose first audio sets Pipecat's word-timestamp baseline.
        self._context_offsets: dict[str, float] = {}

    def can_generate_metrics(self) -> bool:
        return True

    def _pipecat_sentences(self, text: str) -> list[str]:
        sentences, rest = [], text.strip()
        while rest:
            end = match_endofsentence(rest, language=self.text_aggregation_language) or len(rest)
            sentences.append(rest[:end].strip())
            rest = rest[end:].strip()
        return [s for s in sentences if s]

    # -- Pipecat ---------------------------------------------------------------------------------
    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        """Speak `text` sentence by sentence into the audio context `context_id`."""
        await self.start_tts_usage_metrics(text)
        for sentence in self._sentences(text):
            # A sentence is synthesized or aligned before its audio: its context stays open.
            keepalive = self.create_task(keep_audio_context_open(self, context_id=context_id),
                                         f"{self}::keep_audio_context_open")
            try:
                async for frame in self._sentence_frames(self._voice, sentence, context_id,
                                                         self._voicing()):
                    yield frame
            except Exception as e:          # a failed voice must not take the pipeline down
                logger.exception(f"{self}: could not speak [{sentence}]")
                yield ErrorFrame(error=f"{self} could not speak a sentence: {e}")
                return
            finally:
                await self.cancel_task(keepalive)

    async def on_audio_context_interrupted(self, context_id: str):
        await super().on_audio_context_interrupted(context_id)
        self._context_offsets.pop(context_id, None)

    async def on_audio_context_completed(self, context_id: str):
        await super().on_audio_context_completed(context_id)
        # A context that ends (or times out and is recreated) gets a new baseline.
        self._context_offsets.pop(context_id, None)

    # -- internals -------------------------------------------------------------------------------
    def _voicing(self) -> dict[str, Any]:
        """The voice and speed the settings ask of the next sentence (None: the voice's own)."""
        voice, speed = self._settings.voice, self._settings.speed
        return {"voice": voice if isinstance(voice, str) else None,
                "speed": float(speed) if isinstance(speed, int | float) else None}

    def _sentence_frames(self, voice: TimedVoice | StreamedVoice | FallbackVoice, text: str,
                         context_id: str, voicing: dict[str, Any]) -> AsyncIterator[Frame]:
        """One sentence's frames, in the order the kind of voice calls for."""
        if isinstance(voice, FallbackVoice):
            return self._fallback_sentence_frames(voice, text, context_id, voicing)
        if isinstance(voice, StreamedVoice):
            return self._streamed_sentence_frames(voice, text, context_id, voicing)
        return self._timed_sentence_frames(voice, text, context_id, voicing)

    async def _fallback_sentence_frames(self, voice: FallbackVoice, text: str, context_id: str,
                                        voicing: dict[str, Any]):
        """The primary voice's frames, or the secondary's when the primary cannot start."""
        started = False
        try:
            async for frame in self._sentence_frames(voice.primary, text, context_id, voicing):
                started = True
                yield frame
        except VoiceUnavailable as e:
            if started:
                raise
            logger.warning(f"{self}: voice unavailable ({e}); speaking [{text}] with the fallback "
                           "voice")
            async for frame in self._timed_sentence_frames(voice.secondary, text, context_id, {}):
                yield frame

    async def _timed_sentence_frames(self, voice: TimedVoice, text: str, context_id: str,
                                     voicing: dict[str, Any]):
        """Timing message and frame first, then the words, then the audio.

        The message goes before the SentenceTimingFrame: a face keeps frames that follow the
        frame inside the sentence, so the message would be released after its first audio.
        """
        speech = await voice.synthesize(text, **voicing)
        if len(speech.audio) == 0:
            logger.debug(f"{self}: nothing to say in [{speech.text}]")
            return
        seq = self._next_seq()
        yield self._timing_message(seq, speech, played=0.0, with_next_audio=True)
        yield SentenceTimingFrame(seq=seq, text=speech.text, sample_rate=self.sample_rate,
                                  words=speech.words, visemes=speech.visemes, context_id=context_id)
        await self._report_words(speech, context_id)
        async for frame in self._sentence_audio(_whole(speech), context_id):
            yield frame
        self._advance(context_id, speech.duration)

    async def _streamed_sentence_frames(self, voice: StreamedVoice, text: str, context_id: str,
                                        voicing: dict[str, Any]):
        """Audio as it streams (behind an empty timing frame), then the aligned timings."""
        seq, chunks = None, []

        async def recorded():
            async for chunk in voice.voice.stream(text, **voicing):
                chunks.append(chunk)
                yield chunk

        async for frame in self._sentence_audio(recorded(), context_id):
            if seq is None:
                seq = self._next_seq()
                yield SentenceTimingFrame(seq=seq, text=text, sample_rate=self.sample_rate,
                                          context_id=context_id)
            yield frame
        if seq is None:
            logger.debug(f"{self}: nothing to say in [{text}]")
            return
        speech = await align(voice.aligner, text, chunks)
        yield self._timing_message(seq, speech, played=speech.duration, with_next_audio=False)
        await self._report_words(speech, context_id)
        self._advance(context_id, speech.duration)

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    @staticmethod
    def _timing_message(seq: int, speech: TimedSpeech, *, played: float, with_next_audio: bool
                        ) -> PlayoutServerMessageFrame:
        return PlayoutServerMessageFrame(
            data=tts_timing_message(seq, speech.text, speech.words, speech.visemes, played=played),
            with_next_audio=with_next_audio)

    async def _report_words(self, speech: TimedSpeech, context_id: str):
        offset = self._context_offsets.get(context_id, 0.0)
        await self.add_word_timestamps([(w.word, offset + w.start) for w in speech.words],
                                       context_id)

    def _advance(self, context_id: str, seconds: float):
        self._context_offsets[context_id] = self._context_offsets.get(context_id, 0.0) + seconds

    async def _sentence_audio(self, chunks: AsyncIterator[AudioChunk], context_id: str):
        """One sentence's audio → TTSAudioRawFrames of at most AUDIO_CHUNK_S at the service's
        output rate, whatever size of chunks the voice delivers.

        Resampling (when the voice's rate differs) is flushed at the end of the sentence, so
        each sentence keeps its exact length and word times stay on its samples.
        """
        resampled = False
        async for chunk in chunks:
            samples = np.ascontiguousarray(chunk.audio, dtype=np.int16)
            step = max(1, int(chunk.sample_rate * AUDIO_CHUNK_S))
            for i in range(0, len(samples), step):
                pcm = samples[i:i + step].tobytes()
                if chunk.sample_rate != self.sample_rate:
                    pcm = await self._sentence_resampler.resample(pcm, chunk.sample_rate,
                                                                  self.sample_rate)
                    resampled = True
                if pcm:
                    yield TTSAudioRawFrame(pcm, self.sample_rate, 1, context_id=context_id)
        tail = await self._sentence_resampler.flush() if resampled else b""
        if tail:
            yield TTSAudioRawFrame(tail, self.sample_rate, 1, context_id=context_id)


async def _whole(speech: TimedSpeech) -> AsyncIterator[AudioChunk]:
    """A synthesized sentence as one chunk."""
    yield AudioChunk(speech.audio, speech.sample_rate)
