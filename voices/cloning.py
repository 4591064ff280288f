"""A zero-shot GPT-SoVITS voice from a 3-10 s reference clip: checked, transcribed unless its
words are given (GPT-SoVITS needs them, and their language), then stored."""

from __future__ import annotations

from voices.audio import Clip
from voices.checks import check_clip, requested_language
from voices.errors import NoSpeech
from voices.store import VoiceStore
from voices.transcribe import Transcriber

MIN_CLIP_S, MAX_CLIP_S = 3.0, 10.0


async def clone_voice(
    clip: Clip,
    *,
    name: str,
    language: str | None,
    prompt_text: str,
    transcriber: Transcriber,
    store: VoiceStore,
) -> dict:
    """The stored voice's metadata; a VoiceError when the clip or a field is not usable.

    language: as given (None, "" or "auto": detect); prompt_text: as given ("": transcribe).
    """
    check_clip(clip, MIN_CLIP_S, MAX_CLIP_S)
    found = requested_language(language)
    prompt_text = prompt_text.strip()
    if not prompt_text:
        prompt_text, found = await transcriber.transcribe(clip, found)
    if not prompt_text:
        raise NoSpeech(
            "no_speech",
            "no speech was recognized in the clip; upload a "
            "clip of someone talking (or give prompt_text)",
        )
    return store.add(clip, name=name, prompt_text=prompt_text, language=found)
