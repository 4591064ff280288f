"""Pipecat 1.14's TTS audio contexts where its public API stops short: keeping one open.

`TTSService` ends an audio context that gets no item for `stop_frame_timeout_s` (a
TTSStoppedFrame, and words reported later are dropped), also while `run_tts` is still working
on it; a voice that synthesizes or aligns a whole sentence before its audio goes quiet that
long. The service's own keepalive is the private `_refresh_audio_context(context_id)`, and its
timeout the private `_stop_frame_timeout_s`.
tests/unit/test_tts_adapter_pipecat_1_14.py pins both.

Upstream: a `TTSService` that keeps a context open while its `run_tts` generator is running
(or a public `keep_audio_context_alive(context_id)`) would remove this module.
"""

from __future__ import annotations

import asyncio

from pipecat.services.tts_service import TTSService


async def keep_audio_context_open(tts: TTSService, *, context_id: str) -> None:
    """Until cancelled, tell `tts` its audio context `context_id` is in use (three times per
    timeout, so one late wake-up does not end it)."""
    while True:
        await asyncio.sleep(tts._stop_frame_timeout_s / 3)
        tts._refresh_audio_context(context_id)
