"""The bot's `ConversationRecorder` observer, driven with the frames and events a call produces.

Unit level: frames are handed to the observer as Pipecat's worker would (`FramePushed`), from a
minimal STT subclass as the transcription source; the records go through the real recorder into
a SQLite file, and are read back from it.
"""

from __future__ import annotations

import asyncio
import uuid

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import FramePushed
from pipecat.observers.user_bot_latency_observer import UserBotLatencyObserver
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    AssistantTurnStoppedMessage,
    LLMContextAggregatorPair,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.stt_service import STTService
from pipecat.transports.livekit.transport import LiveKitParams, LiveKitTransport

from bot.recorder import ConversationRecorder
from records.recorder import SessionRecorder
from records.store import RecordStore, SessionInfo, now


class SilentSTT(STTService):
    """A transcription source for the observer to recognise; never transcribes anything."""

    async def run_stt(self, audio):
        yield None


async def test_turns_are_recorded_with_speakers_addressing_latency_and_times(tmp_path):
    store = RecordStore(url=f"sqlite:///{tmp_path / 'records.sqlite3'}")
    store.migrate()
    session = SessionInfo(
        id=uuid.uuid4().hex, room="r", bot_identity="avatar-bot", started_at=now()
    )
    transport = LiveKitTransport(
        url="ws://127.0.0.1:9", token="unused", room_name="r", params=LiveKitParams()
    )
    turns = LLMContextAggregatorPair(LLMContext())
    latency = UserBotLatencyObserver()
    observer = ConversationRecorder(
        recorder=SessionRecorder(store=store, session=session),
        transport=transport,
        is_agent=lambda identity: False,
        bot_identity="avatar-bot",
        bot_name="Ava",
        user_turns=turns.user(),
        assistant_turns=turns.assistant(),
        latency=latency,
    )
    stt, addressing = SilentSTT(), FrameProcessor()

    async def push(source, destination, frame):
        await observer.on_push_frame(
            FramePushed(
                source=source,
                destination=destination,
                frame=frame,
                direction=FrameDirection.DOWNSTREAM,
                timestamp=0,
            )
        )

    began = now()
    await push(addressing, stt, VADUserStartedSpeakingFrame())
    await asyncio.sleep(0.3)
    await push(addressing, stt, VADUserStoppedSpeakingFrame())
    # Dana's words reach the LLM's user context; Sam's are dropped by the addressing step.
    await push(
        stt, addressing, TranscriptionFrame(text=" hello Ava ", user_id="dana", timestamp="")
    )
    await push(
        addressing, turns.user(), TranscriptionFrame(text="hello Ava", user_id="dana", timestamp="")
    )
    await push(stt, addressing, TranscriptionFrame(text="an aside", user_id="sam", timestamp=""))
    await latency._call_event_handler("on_latency_measured", 1.234)
    await asyncio.sleep(0.2)  # Pipecat runs event handlers as tasks
    await push(transport, addressing, BotStartedSpeakingFrame())
    await turns.assistant()._call_event_handler(
        "on_assistant_turn_stopped",
        AssistantTurnStoppedMessage(content="Hi Dana, I", interrupted=True, timestamp=""),
    )
    await asyncio.sleep(0.2)  # Pipecat runs event handlers as tasks
    await observer.cleanup()  # nobody present: the session ends

    found = store.get_session(session.id)
    rows = [
        (
            u["speaker_identity"],
            u["role"],
            u["text"],
            u["addressed"],
            u["interrupted"],
            u["latency_ms"],
        )
        for u in found["utterances"]
    ]
    assert rows == [
        ("dana", "user", "hello Ava", True, False, None),
        ("sam", "user", "an aside", False, False, None),
        ("avatar-bot", "bot", "Hi Dana, I", None, True, 1234),
    ]
    dana = found["utterances"][0]
    assert (
        began <= dana["started_at"]
        and 0.25 <= (dana["ended_at"] - dana["started_at"]).total_seconds() < 2
    )
    assert found["ended_at"] is not None
