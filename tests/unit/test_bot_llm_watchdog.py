"""LLMWatchdog without an LLM: a reply whose text comes in time gets no notice (finding 8)."""

from __future__ import annotations

from pipecat.frames.frames import (
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSSpeakFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from bot.llm_watchdog import LLMWatchdog


async def test_a_prompt_reply_gets_no_notice():
    watchdog = LLMWatchdog(
        wait_notice="wait", wait_notice_s=0.5, give_up_notice="gone", give_up_s=1.0
    )
    frames = [
        LLMFullResponseStartFrame(),
        LLMTextFrame("Hi."),
        SleepFrame(1.5),
        LLMFullResponseEndFrame(),
    ]
    down, _ = await run_test(watchdog, frames_to_send=frames)
    assert not [f for f in down if isinstance(f, TTSSpeakFrame)]


async def test_silence_after_the_start_gets_the_wait_notice():
    watchdog = LLMWatchdog(
        wait_notice="wait", wait_notice_s=0.3, give_up_notice="gone", give_up_s=5.0
    )
    frames = [
        LLMFullResponseStartFrame(),
        SleepFrame(0.8),
        LLMTextFrame("Hi."),
        LLMFullResponseEndFrame(),
    ]
    down, _ = await run_test(watchdog, frames_to_send=frames)
    assert [f.text for f in down if isinstance(f, TTSSpeakFrame)] == ["wait"]
