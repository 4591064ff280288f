"""LLM watchdog with the real Ollama frozen mid-request (issue 17, finding 8: Ollama frozen for
10 s meant 10 s of silence with no notice, and the LLM client waited up to 600 s).

The test's own Ollama is stopped with SIGSTOP (it accepts the connection and never answers),
then resumed with SIGCONT; the LLM service is Pipecat's real Ollama service.
"""

from __future__ import annotations

import os
import signal
import time

import openai
from pipecat.frames.frames import Frame, LLMContextFrame, LLMTextFrame, TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.ollama.llm import OLLamaLLMService
from pipecat.tests.utils import run_test

from bot.llm_watchdog import LLMWatchdog
from bot.settings import DEFAULT_LLM_WAIT_NOTICE_S

WAIT, GIVE_UP = "One moment, please.", "Sorry, my language model is not answering right now."
GIVE_UP_S = 8.0
# A loaded 2-core machine: how late a notice may come after its set time.
SLACK_S = 2.5


class Arrivals(FrameProcessor):
    """Notes when each spoken notice and the first LLM text pass (seconds since creation)."""

    def __init__(self):
        super().__init__()
        self.started = time.monotonic()
        self.events: list[tuple[str, float]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSSpeakFrame):
            self.events.append((frame.text, time.monotonic() - self.started))
        elif isinstance(frame, LLMTextFrame) and not any(e[0] == "text" for e in self.events):
            self.events.append(("text", time.monotonic() - self.started))
        await self.push_frame(frame, direction)


def _turn(ollama) -> tuple[Arrivals, Pipeline]:
    llm = OLLamaLLMService(base_url=f"{ollama.url}/v1", settings=OLLamaLLMService.Settings(
        model=ollama.model, max_tokens=20, temperature=0.0))
    watchdog = LLMWatchdog(wait_notice=WAIT, wait_notice_s=DEFAULT_LLM_WAIT_NOTICE_S,
                           give_up_notice=GIVE_UP, give_up_s=GIVE_UP_S)
    arrivals = Arrivals()
    return arrivals, Pipeline([llm, watchdog, arrivals])


def _context() -> LLMContextFrame:
    return LLMContextFrame(LLMContext(messages=[{"role": "user", "content": "Say hello."}]))


async def test_frozen_ollama_gets_a_spoken_notice_then_gives_up_and_recovers(ollama):
    warm = openai.OpenAI(base_url=f"{ollama.url}/v1", api_key="ollama", timeout=300)
    warm.chat.completions.create(
        model=ollama.model, max_tokens=1, messages=[{"role": "user", "content": "Hi"}]
    )

    os.kill(ollama.server.pid, signal.SIGSTOP)
    try:
        arrivals, pipeline = _turn(ollama)
        await run_test(pipeline, frames_to_send=[_context()], start_timeout=5.0)
    finally:
        os.kill(ollama.server.pid, signal.SIGCONT)
    said = dict(arrivals.events)
    assert list(said) == [WAIT, GIVE_UP], arrivals.events
    assert DEFAULT_LLM_WAIT_NOTICE_S <= said[WAIT] < DEFAULT_LLM_WAIT_NOTICE_S + SLACK_S
    assert GIVE_UP_S <= said[GIVE_UP] < GIVE_UP_S + SLACK_S

    arrivals, pipeline = _turn(ollama)  # Ollama is back: the next turn is answered
    await run_test(pipeline, frames_to_send=[_context()])
    said = [e[0] for e in arrivals.events]
    assert "text" in said and GIVE_UP not in said, arrivals.events
