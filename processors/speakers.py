"""Chooses whose microphone the bot listens to: one human at a time, never an agent.

LiveKit delivers every remote participant's audio as its own stream of `UserAudioRawFrame`s
tagged with the participant's identity, all through one input transport. One VAD and one STT
must hear a single voice, so this processor passes the frames of one human speaker (the first
one heard, then whoever LiveKit reports as the room's active speaker) and drops the rest.
Agents (other bots, including other avatars) are never passed, so the bot does not answer
another bot's voice. The identity stays on the frames, so transcriptions carry the speaker.
"""

from __future__ import annotations

from collections.abc import Callable

from loguru import logger
from pipecat.frames.frames import Frame, UserAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class SpeakerSelector(FrameProcessor):
    """Passes the audio of one human participant at a time and drops every agent's audio."""

    def __init__(self, *, is_agent: Callable[[str], bool], **kwargs):
        """`is_agent(identity)` tells agents (never listened to) from humans."""
        super().__init__(**kwargs)
        self._is_agent = is_agent
        self._speaker: str | None = None

    @property
    def speaker(self) -> str | None:
        """Identity of the participant currently listened to, if any."""
        return self._speaker

    def set_active_speaker(self, identity: str) -> None:
        """Listen to `identity` from now on, when it is a human (LiveKit's active speaker)."""
        if identity != self._speaker and not self._is_agent(identity):
            logger.info(f"{self}: listening to {identity}")
            self._speaker = identity

    def remove_participant(self, identity: str) -> None:
        """Forget a participant who left; the next human heard becomes the speaker."""
        if identity == self._speaker:
            self._speaker = None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, UserAudioRawFrame) and frame.user_id:
            if self._is_agent(frame.user_id):
                return
            if self._speaker is None:
                self.set_active_speaker(frame.user_id)
            if frame.user_id != self._speaker:
                return
        await self.push_frame(frame, direction)
