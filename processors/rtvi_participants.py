"""RTVI for a room with several clients: replies go to the client that asked.

Pipecat's `RTVIProcessor` speaks to "the client": its replies (`bot-ready` for a
`client-ready`, error responses, server responses) leave as plain transport messages, which
LiveKit broadcasts to the whole room. In a meeting every page would then take another page's
`bot-ready` for its own. This adapter sends each reply to the LiveKit identity whose message it
answers (a LiveKit destination identity) and leaves room-wide events (transcripts, speaking
events, metrics, server messages) broadcast. It also lets the room decide whether a
participant may end the bot with `disconnect-bot`.

This module is the one place that reaches into `RTVIProcessor`'s private message handling
(`_handle_transport_message`, `_handle_message`); tests/unit/test_rtvi_participants_pipecat_1_14.py
pins that contract.

Upstream: an `RTVIProcessor` that sends each reply to the client whose message it answers (the
incoming frame's `participant_id` as the reply's destination), and a `disconnect-bot` policy
hook, would remove this module.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

from loguru import logger
from pipecat.frames.frames import InputTransportMessageFrame
from pipecat.processors.frameworks.rtvi import models as RTVI
from pipecat.transports.livekit.transport import LiveKitOutputTransportMessageUrgentFrame
from pydantic import BaseModel

from processors.rtvi_adapter import PlayoutRTVIProcessor

# RTVI client message that asks the bot to leave.
DISCONNECT_BOT = "disconnect-bot"
# Replies that answer one client's message (an error raised while handling it too);
# everything else RTVI sends is room-wide.
REPLY_TYPES = (RTVI.BotReady, RTVI.ErrorResponse, RTVI.ServerResponse, RTVI.Error)

# The LiveKit identity whose RTVI message is being handled (tasks started while handling it,
# such as the worker's `on_client_ready` handler that sends `bot-ready`, inherit it).
_sender: contextvars.ContextVar[str | None] = contextvars.ContextVar("rtvi_sender", default=None)


class ParticipantRTVIProcessor(PlayoutRTVIProcessor):
    """The project's RTVI processor (RTVI 2.2 conformance, playout-timed messages) that also
    answers each LiveKit participant privately."""

    def __init__(self, *, may_disconnect_bot: Callable[[str | None], bool], **kwargs):
        """Create the processor.

        Args:
            may_disconnect_bot: Whether a sender's `disconnect-bot` is honoured (the room's
                policy; None is a sender LiveKit could not name).
        """
        super().__init__(**kwargs)
        self._may_disconnect_bot = may_disconnect_bot

    async def _handle_transport_message(self, frame: InputTransportMessageFrame):
        """Check one incoming packet, telling its sender (only) when it is not valid RTVI."""
        token = _sender.set(getattr(frame, "participant_id", None))
        try:
            await super()._handle_transport_message(frame)
        finally:
            _sender.reset(token)

    async def _handle_message(self, message: RTVI.Message, user_id: str | None = None):
        """Handle one client message with its sender known to the replies it causes."""
        token = _sender.set(user_id)
        try:
            if message.type == DISCONNECT_BOT and not self._may_disconnect_bot(user_id):
                logger.warning(f"{self}: {DISCONNECT_BOT} from {user_id} refused by room policy")
                await self.send_error_response(
                    RTVI.ClientMessage(msg_id=message.id, type=message.type),
                    "disconnect-bot is not allowed for this participant in this room",
                )
                return
            await super()._handle_message(message, user_id)
        finally:
            _sender.reset(token)

    async def push_transport_message(self, model: BaseModel, exclude_none: bool = True):
        """Send a reply to its asker only; broadcast everything else."""
        sender = _sender.get()
        if sender and isinstance(model, REPLY_TYPES):
            await self.push_frame(
                LiveKitOutputTransportMessageUrgentFrame(
                    message=model.model_dump(exclude_none=exclude_none), participant_id=sender
                )
            )
            return
        await super().push_transport_message(model, exclude_none)
