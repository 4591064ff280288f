"""The embedded voice as a Pipecat TTS service (default voice: CPU, offline, exact timings)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from loguru import logger
from pipecat.services.settings import TTSSettings
from pipecat.utils.text.transforms.strip_markdown import strip_markdown

from processors.timing import TimedSpeech
from processors.tts.hibari_voice import SAMPLE_RATE, HibariVoice
from processors.tts.timed import TimedTTSService


@dataclass(frozen=True, slots=True)
class EmbeddedVoiceSettings:
    """hibari voice name, speaking rate (1.0 = normal, 0.5..2.0) and onnxruntime threads."""

    voice: str = "heart"
    speed: float = 1.0
    threads: int = 1

class EmbeddedTTSService(TimedTTSService):
    """Pipecat TTS on HibariVoice: 24 kHz audio with word and viseme timings from the model.

    Synthesis runs in a worker thread (asyncio.to_thread) so the event loop keeps moving audio,
    video and VAD while a sentence is computed. `voice` shares an already loaded HibariVoice
    (then `settings` are not used).
    """

    def __init__(self, *, settings: EmbeddedVoiceSettings | None = None,
                 voice: HibariVoice | None = None, **kwargs):
        settings = settings or EmbeddedVoiceSettings()
        self._voice = voice or HibariVoice(voice=settings.voice, speed=settings.speed,
                                           threads=settings.threads)
        # LLM replies often carry markdown; the voice would read "*" as "asterisk".
        kwargs.setdefault("text_transforms", [("*", strip_markdown)])
        # A local voice that returns no audio had nothing pronounceable (an emoji-only reply);
        # Pipecat would write the service off after a few such turns.
        kwargs.setdefault("max_consecutive_zero_audio_contexts", 0)
        super().__init__(
            sample_rate=SAMPLE_RATE,
            settings=TTSSettings(model="hibari", voice=self._voice.voice, language="en"),
            **kwargs)
        logger.info(f"{self}: embedded voice {self._voice.voice!r} at speed {self._voice.speed}")

    def split_sentences(self, text: str) -> list[str]:
        return self._voice.sentences(text)

    async def synthesize_sentence(self, text: str) -> TimedSpeech:
        return await asyncio.to_thread(self._voice.synthesize, text)
