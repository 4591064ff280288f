"""Meetings: who said what, and whether it was said to the bot (ARCHITECTURE §7).

Sits between the STT and the user context. With one person in the room every utterance is
for the bot and passes unchanged. With several, each utterance enters the LLM context as
"Name: text" so the model knows who is talking, and (when configured) only utterances that
address the bot by name reach the LLM; the rest of the meeting's talk is not answered.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from loguru import logger
from pipecat.frames.frames import Frame, TranscriptionFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class MeetingAddressing(FrameProcessor):
    """Names the speaker of each transcription in a group and keeps talk not meant for the bot out."""

    def __init__(
        self,
        *,
        bot_name: str,
        humans: Callable[[], list[str]],
        display_name: Callable[[str], str],
        answer_only_when_addressed: bool = True,
        **kwargs,
    ):
        """`humans()` lists the people in the room; `display_name(identity)` names one of them."""
        super().__init__(**kwargs)
        self._humans = humans
        self._display_name = display_name
        self._only_when_addressed = answer_only_when_addressed
        self._addressed = re.compile(rf"\b{re.escape(bot_name)}\b", re.IGNORECASE)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame) and len(self._humans()) > 1:
            if self._only_when_addressed and not self._addressed.search(frame.text):
                logger.debug(f"{self}: not addressed, not answering: {frame.text.strip()!r}")
                return
            name = self._display_name(frame.user_id) if frame.user_id else "Someone"
            frame = replace(frame, text=f"{name}: {frame.text.strip()}")
        await self.push_frame(frame, direction)
