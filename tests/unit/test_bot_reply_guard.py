"""LLMReplyGuard: a spoken notice instead of silence when the LLM fails or says nothing."""

from __future__ import annotations

import socket

from pipecat.frames.frames import (
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.services.ollama.llm import OLLamaLLMService
from pipecat.tests.utils import run_test

from bot.reply_guard import LLMReplyGuard

UNREACHABLE = "Sorry, my language model is not reachable right now."
EMPTY = "Sorry, I have no answer to that."


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _llm(port: int) -> OLLamaLLMService:
    return OLLamaLLMService(base_url=f"http://127.0.0.1:{port}/v1",
                            settings=OLLamaLLMService.Settings(model="none"))


def _notices(frames) -> list[str]:
    return [f.text for f in frames if isinstance(f, TTSSpeakFrame)]


async def test_unreachable_ollama_gives_the_spoken_notice():
    llm = _llm(_closed_port())
    guard = LLMReplyGuard(llm=llm, unreachable_notice=UNREACHABLE, empty_notice=EMPTY)
    context = LLMContext(messages=[{"role": "user", "content": "Hello?"}])
    down, _ = await run_test(Pipeline([llm, guard]), frames_to_send=[LLMContextFrame(context)])
    spoken = [f for f in down if isinstance(f, TTSSpeakFrame)]
    assert [f.text for f in spoken] == [UNREACHABLE]
    assert not spoken[0].append_to_context


async def test_empty_reply_gives_the_empty_notice_and_a_real_reply_none():
    guard = LLMReplyGuard(llm=_llm(_closed_port()), unreachable_notice=UNREACHABLE,
                          empty_notice=EMPTY)
    empty = [LLMFullResponseStartFrame(), LLMTextFrame("  "), LLMFullResponseEndFrame()]
    answered = [LLMFullResponseStartFrame(), LLMTextFrame("Hi."), LLMFullResponseEndFrame()]
    down, _ = await run_test(guard, frames_to_send=empty + answered)
    assert _notices(down) == [EMPTY]
