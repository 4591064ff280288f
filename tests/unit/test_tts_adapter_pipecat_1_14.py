"""The TTS adapter (processors/tts/pipecat_tts_adapter.py) against the pinned Pipecat 1.14:
its `TTSService` ends an audio context that goes quiet while `run_tts` still works on it (what
the adapter exists for), and the private keepalive the adapter calls keeps it open."""

from __future__ import annotations

import asyncio

import pipecat
from pipecat.frames.frames import (
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService
from pipecat.tests.utils import run_test

from processors.tts.pipecat_tts_adapter import keep_audio_context_open

PINNED = "1.14"
QUIET_S = 0.3


class PausingTTS(TTSService):
    """A voice that goes quiet for longer than the timeout between two pieces of audio."""

    def __init__(self, *, keep_open: bool):
        super().__init__(push_start_frame=True, push_stop_frames=True,
                         stop_frame_timeout_s=QUIET_S, sample_rate=16000,
                         settings=TTSSettings(model=None, voice=None, language=None))
        self._keep_open = keep_open

    async def run_tts(self, text: str, context_id: str):
        keepalive = None
        if self._keep_open:
            keepalive = self.create_task(keep_audio_context_open(self, context_id=context_id))
        for _ in range(2):
            yield TTSAudioRawFrame(bytes(640), 16000, 1, context_id=context_id)
            await asyncio.sleep(3 * QUIET_S)
        if keepalive:
            await self.cancel_task(keepalive)


async def stops(tts: TTSService) -> int:
    down, _ = await run_test(tts, frames_to_send=[
        LLMFullResponseStartFrame(), LLMTextFrame("One sentence."), LLMFullResponseEndFrame()])
    return sum(isinstance(f, TTSStoppedFrame) for f in down)


def test_the_pinned_version():
    assert pipecat.__version__.startswith(PINNED), (
        f"Pipecat {pipecat.__version__}: re-check processors/tts/pipecat_tts_adapter.py against "
        f"this version's TTSService audio contexts and rename this test")


def test_the_privates_the_adapter_uses():
    tts = PausingTTS(keep_open=True)
    assert tts._stop_frame_timeout_s == QUIET_S
    assert callable(tts._refresh_audio_context)


async def test_a_quiet_context_is_ended_while_run_tts_still_works_on_it():
    assert await stops(PausingTTS(keep_open=False)) == 2


async def test_the_adapter_keeps_it_open():
    assert await stops(PausingTTS(keep_open=True)) == 1
