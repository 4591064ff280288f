"""The embedded voice as a Pipecat TTS service (default voice: CPU, offline, exact timings)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from loguru import logger
from pipecat.utils.text.transforms.strip_markdown import strip_markdown

from processors.timing import TimedSpeech
from processors.tts.hibari_voice import SAMPLE_RATE, HibariVoice
from processors.tts.timed import TimedTTSService
from processors.tts.voice import VoiceSettings


@dataclass(frozen=True, slots=True)
class EmbeddedVoiceSettings:
    """hibari voice name, speaking rate (1.0 = normal, 0.5..2.0) and onnxruntime threads."""

    voice: str = "heart"
    speed: float = 1.0
    threads: int = 1

    def load(self) -> HibariVoice:
        """The hibari voice these settings name (its model loads now: a few seconds)."""
        return HibariVoice(voice=self.voice, speed=self.speed, threads=self.threads)


class EmbeddedVoice:
    """HibariVoice as a TimedVoice: 24 kHz audio with word and viseme timings from the model.

    Synthesis runs in a worker thread (asyncio.to_thread) so the event loop keeps moving audio,
    video and VAD while a sentence is computed. Another hibari voice name is loaded on first use
    (with the same threads) and kept.
    """

    def __init__(self, *, hibari: HibariVoice):
        self.hibari = hibari
        self._loaded = {hibari.voice: hibari}

    async def synthesize(self, text: str, *, voice: str | None = None,
                         speed: float | None = None) -> TimedSpeech:
        return await asyncio.to_thread(self._synthesize, text, voice or self.hibari.voice, speed)

    def _synthesize(self, text: str, voice: str, speed: float | None) -> TimedSpeech:
        if voice not in self._loaded:
            self._loaded[voice] = HibariVoice(voice=voice, threads=self.hibari.threads)
        return self._loaded[voice].synthesize(text, speed=speed)


class EmbeddedTTSService(TimedTTSService):
    """TimedTTSService on the embedded voice: its rate, its sentence splitting, and its name
    and speed in the service's VoiceSettings."""

    def __init__(self, *, voice: EmbeddedVoice, **kwargs):
        # LLM replies often carry markdown; the voice would read "*" as "asterisk".
        kwargs.setdefault("text_transforms", [("*", strip_markdown)])
        # A local voice that returns no audio had nothing pronounceable (an emoji-only reply);
        # Pipecat would write the service off after a few such turns.
        kwargs.setdefault("max_consecutive_zero_audio_contexts", 0)
        hibari = voice.hibari
        super().__init__(
            voice=voice, sentences=hibari.sentences, sample_rate=SAMPLE_RATE,
            settings=VoiceSettings(model="hibari", voice=hibari.voice, language="en",
                                   speed=hibari.speed),
            **kwargs)
        logger.info(f"{self}: embedded voice {hibari.voice!r} at speed {hibari.speed}")
