"""Makes a hung LLM audible: a spoken notice after a set silence, and a bounded wait.

Placed right after the LLM service. From the start of a response (LLMFullResponseStartFrame)
the watchdog waits for the first text. After `wait_notice_s` without any it speaks
`wait_notice` (the person hears that the bot is still there); the reply is spoken as usual
when it comes. After `give_up_s` without text it interrupts the response, which cancels the
LLM request like a barge-in would, and speaks `give_up_notice`; the next turn runs the LLM
again, so the bot recovers once the LLM answers again. Notices are not added to the context.
"""

from __future__ import annotations

import asyncio

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSSpeakFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class LLMWatchdog(FrameProcessor):
    """Speaks `wait_notice` after `wait_notice_s` of LLM silence, gives up after `give_up_s`."""

    def __init__(
        self,
        *,
        wait_notice: str,
        wait_notice_s: float,
        give_up_notice: str,
        give_up_s: float,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._wait_notice = wait_notice
        self._wait_notice_s = wait_notice_s
        self._give_up_notice = give_up_notice
        self._give_up_s = max(give_up_s, wait_notice_s)
        self._timer: asyncio.Task | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMFullResponseStartFrame):
            await self._stop_timer()
            self._timer = self.create_task(self._watch(), name=f"{self}::watch")
        elif isinstance(frame, (LLMTextFrame, LLMFullResponseEndFrame, InterruptionFrame)):
            if not isinstance(frame, LLMTextFrame) or frame.text.strip():
                await self._stop_timer()
        await self.push_frame(frame, direction)

    async def _watch(self) -> None:
        await asyncio.sleep(self._wait_notice_s)
        logger.warning(f"{self}: no LLM text after {self._wait_notice_s:g} s; speaking a notice")
        await self.push_frame(TTSSpeakFrame(self._wait_notice, append_to_context=False))
        await asyncio.sleep(self._give_up_s - self._wait_notice_s)
        logger.warning(f"{self}: no LLM text after {self._give_up_s:g} s; giving up on this reply")
        self._timer = None  # the interruption below must not cancel this task
        await self.broadcast_interruption()
        await self.push_frame(TTSSpeakFrame(self._give_up_notice, append_to_context=False))

    async def _stop_timer(self) -> None:
        if self._timer is not None:
            timer, self._timer = self._timer, None
            await self.cancel_task(timer)

    async def cleanup(self):
        await super().cleanup()
        await self._stop_timer()
