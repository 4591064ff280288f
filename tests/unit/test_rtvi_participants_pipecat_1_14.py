"""ParticipantRTVIProcessor: the contract with Pipecat's RTVIProcessor internals it relies on.

Replies go to the LiveKit participant whose message they answer; room-wide messages stay
broadcast; `disconnect-bot` obeys the room's policy. If a Pipecat upgrade renames the private
methods the adapter overrides, these tests fail (replies would be broadcast again).
"""

from __future__ import annotations

import pipecat
from pipecat.frames.frames import EndWorkerFrame, OutputTransportMessageUrgentFrame
from pipecat.processors.frameworks.rtvi import RTVIProcessor
from pipecat.processors.frameworks.rtvi import models as RTVI
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.transports.livekit.transport import (
    LiveKitInputTransportMessageFrame,
    LiveKitOutputTransportMessageUrgentFrame,
)

from processors.rtvi_participants import DISCONNECT_BOT, ParticipantRTVIProcessor

PINNED = "1.14"


def test_the_pinned_version():
    assert pipecat.__version__.startswith(PINNED), (
        f"Pipecat {pipecat.__version__}: re-check processors/rtvi_participants.py against this "
        f"version's RTVIProcessor message handling and rename this test")


def _from(sender: str, type_: str, data: dict | None = None, msg_id: str = "m1"):
    message = {"label": RTVI.MESSAGE_LABEL, "type": type_, "id": msg_id, "data": data}
    return LiveKitInputTransportMessageFrame(message=message, participant_id=sender)


def _rtvi(*, may_disconnect=lambda _identity: False) -> ParticipantRTVIProcessor:
    rtvi = ParticipantRTVIProcessor(may_disconnect_bot=may_disconnect)

    @rtvi.event_handler("on_client_ready")
    async def on_client_ready(processor: RTVIProcessor):  # what PipelineWorker registers
        await processor.set_bot_ready()

    return rtvi


def _messages(down) -> list[tuple[str, str | None]]:
    """(RTVI type, destination identity or None for the whole room) of each sent message."""
    return [
        (f.message["type"], getattr(f, "participant_id", None))
        for f in down
        if isinstance(f, OutputTransportMessageUrgentFrame)
    ]


async def test_bot_ready_goes_only_to_the_participant_that_sent_client_ready():
    down, _ = await run_test(
        _rtvi(),
        frames_to_send=[_from("alice", "client-ready", {"version": RTVI.PROTOCOL_VERSION}),
                        SleepFrame(sleep=1.0)],
    )
    sent = _messages(down)
    assert ("bot-ready", "alice") in sent
    assert all(
        isinstance(f, LiveKitOutputTransportMessageUrgentFrame)
        for f in down
        if isinstance(f, OutputTransportMessageUrgentFrame) and f.message["type"] == "bot-ready"
    )


async def test_errors_answer_their_sender():
    down, _ = await run_test(
        _rtvi(),
        frames_to_send=[
            _from("bob", "no-such-type"),
            LiveKitInputTransportMessageFrame(
                message={"label": RTVI.MESSAGE_LABEL, "type": 3}, participant_id="carol"
            ),
            SleepFrame(sleep=1.0),
        ],
    )
    sent = _messages(down)
    assert ("error-response", "bob") in sent
    assert ("error", "carol") in sent


async def test_server_messages_stay_room_wide_even_while_answering_a_client():
    rtvi = ParticipantRTVIProcessor(may_disconnect_bot=lambda _identity: False)

    @rtvi.event_handler("on_client_ready")
    async def on_client_ready(processor: RTVIProcessor):
        await processor.set_bot_ready()
        await processor.send_server_message({"type": "room-note"})

    down, _ = await run_test(
        rtvi,
        frames_to_send=[
            _from("alice", "client-ready", {"version": RTVI.PROTOCOL_VERSION}),
            SleepFrame(sleep=1.0),
        ],
    )
    assert _messages(down) == [("bot-ready", "alice"), ("server-message", None)]


async def test_disconnect_bot_refused_by_policy_answers_the_sender_and_keeps_the_bot():
    down, _ = await run_test(
        _rtvi(may_disconnect=lambda identity: identity == "owner"),
        frames_to_send=[_from("guest", DISCONNECT_BOT), SleepFrame(sleep=1.0)],
    )
    assert not any(isinstance(f, EndWorkerFrame) for f in down)
    assert ("error-response", "guest") in _messages(down)


async def test_disconnect_bot_allowed_by_policy_ends_the_bot():
    down, _ = await run_test(
        _rtvi(may_disconnect=lambda identity: identity == "owner"),
        frames_to_send=[_from("owner", DISCONNECT_BOT), SleepFrame(sleep=1.0)],
        send_end_frame=False,
    )
    assert any(isinstance(f, EndWorkerFrame) for f in down)
