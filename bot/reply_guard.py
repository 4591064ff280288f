"""Makes sure every answered turn is heard: a short spoken notice when the LLM gives nothing.

Placed right after the LLM service. When a response ends without any text, or the LLM reported
an error during it (Ollama stopped, unreachable, model missing), the person would otherwise
hear silence and wonder; the guard speaks a short notice instead. The notice is not added to
the LLM context, and the next turn runs the LLM again as usual, so the bot recovers on its own
once the LLM is back.
"""

from __future__ import annotations

from loguru import logger
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSSpeakFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class LLMReplyGuard(FrameProcessor):
    """Speaks `unreachable_notice` after an LLM error and `empty_notice` after an empty reply."""

    def __init__(
        self,
        *,
        llm: FrameProcessor,
        unreachable_notice: str,
        empty_notice: str,
        **kwargs,
    ):
        """`llm` is the service right before this guard; its `on_error` events are watched."""
        super().__init__(**kwargs)
        self._unreachable_notice = unreachable_notice
        self._empty_notice = empty_notice
        self._in_response = False
        self._got_text = False
        self._llm_failed = False
        # The LLM pushes its ErrorFrame upstream, away from this guard, so listen to the event.
        llm.add_event_handler("on_error", self._on_llm_error)

    async def _on_llm_error(self, _llm: FrameProcessor, error: ErrorFrame):
        logger.warning(f"{self}: LLM error during the reply: {error.error}")
        self._llm_failed = True

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)

        if isinstance(frame, LLMFullResponseStartFrame):
            self._in_response, self._got_text, self._llm_failed = True, False, False
        elif isinstance(frame, LLMTextFrame) and frame.text.strip():
            self._got_text = True
        elif isinstance(frame, InterruptionFrame):
            self._in_response = False
        elif isinstance(frame, LLMFullResponseEndFrame) and self._in_response:
            self._in_response = False
            notice = None
            if self._llm_failed:
                notice = self._unreachable_notice
            elif not self._got_text:
                notice = self._empty_notice
            if notice:
                logger.info(f"{self}: speaking notice {notice!r}")
                await self.push_frame(TTSSpeakFrame(notice, append_to_context=False))
