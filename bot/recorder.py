"""The bot's conversation record: what was said in the room, written as it happens.

`open_records` finds or starts the room's session at start-up (a bot replacing a killed one
resumes the open session and its LLM context); `ConversationRecorder` is a Pipecat observer
that turns the pipeline's frames and events into participants and utterances for the
session's `SessionRecorder`, whose writer thread keeps the database off the real-time path.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.observers.user_bot_latency_observer import UserBotLatencyObserver
from pipecat.processors.aggregators.llm_response_universal import (
    AssistantTurnStoppedMessage,
    LLMAssistantAggregator,
    LLMUserAggregator,
)
from pipecat.services.stt_service import STTService
from pipecat.transports.livekit.transport import LiveKitTransport

from records.options import RecordsOptions
from records.recorder import SessionRecorder
from records.schema import ROLE_BOT, ROLE_USER
from records.store import RecordStore, SessionInfo, Utterance, now

# A session is resumed when its last activity is this recent and it was not ended.
RESUME_WITHIN = timedelta(minutes=10)
# How many past utterances a resumed bot puts back into its LLM context.
RESUME_MAX_TURNS = 20
# How long the bot waits at the end for queued writes.
CLOSE_TIMEOUT_S = 5.0
LLM_ROLES = {ROLE_USER: "user", ROLE_BOT: "assistant"}


@dataclass
class OpenedRecords:
    """The session this bot writes to (None: records off), and the context it resumes."""

    recorder: SessionRecorder | None = None
    history: list[dict] = field(default_factory=list)

    @property
    def resumed(self) -> bool:
        return bool(self.history)


def remembered_context(store: RecordStore, session_id: str) -> list[dict]:
    """The LLM messages of a session on record (its last turns: the bot's replies as they entered
    the context, cut where interrupted, and the user turns that reached the LLM)."""
    messages: list[dict] = []
    for t in store.recent_turns(session_id, limit=RESUME_MAX_TURNS):
        role = LLM_ROLES[t["role"]]
        if role == "user" and messages and messages[-1]["role"] == "user":
            # One user turn can hold several utterances ("What is the capital of" + "Japan?");
            # Pipecat's aggregator made them one message, and so does the record.
            messages[-1]["content"] = f"{messages[-1]['content']} {t['text']}"
        else:
            messages.append({"role": role, "content": t["text"]})
    return messages


def open_records(*, options: RecordsOptions | None, room: str, bot_identity: str) -> OpenedRecords:
    """Open the store (migrating it) and the room's session: the still-open one, with its last
    turns as LLM messages, or a new one. A database that cannot be reached only costs the
    record (and the resume): the call goes on, and writes start when the database answers."""
    if options is None or not options.enabled:
        return OpenedRecords()
    store = RecordStore(url=options.url)
    session, history = None, []
    try:
        store.migrate()
        session = store.open_session(room, active_within=RESUME_WITHIN)
        if session is not None:
            history = remembered_context(store, session.id)
            logger.info(f"resuming session {session.id} of room {room} with {len(history)} turns")
    except Exception as exc:
        logger.warning(
            f"records database unreachable at start ({exc!r:.300}); "
            f"recording a new session when it answers"
        )
    if session is None:
        session = SessionInfo(
            id=uuid.uuid4().hex, room=room, bot_identity=bot_identity, started_at=now()
        )
    return OpenedRecords(recorder=SessionRecorder(store=store, session=session), history=history)


@dataclass
class _Pending:
    """A user's transcription waiting to learn whether it reached the LLM."""

    frame: TranscriptionFrame
    utterance: Utterance


class ConversationRecorder(BaseObserver):
    """Records participants joining and leaving, user transcriptions (addressed or not), and the
    bot's spoken replies (in full or interrupted, with their latency)."""

    def __init__(
        self,
        *,
        recorder: SessionRecorder,
        transport: LiveKitTransport,
        is_agent: Callable[[str], bool],
        bot_identity: str,
        bot_name: str,
        user_turns: LLMUserAggregator,
        assistant_turns: LLMAssistantAggregator,
        latency: UserBotLatencyObserver,
        **kwargs,
    ):
        """`user_turns` is where a transcription counts as addressed to the bot (it reached the
        LLM context); `assistant_turns` reports what the bot actually spoke."""
        super().__init__(**kwargs)
        self._recorder = recorder
        self._transport = transport
        self._is_agent = is_agent
        self._bot_identity = bot_identity
        self._bot_name = bot_name
        self._user_turns = user_turns
        self._names: dict[str, str] = {}
        self._present: set[str] = set()
        self._pending: list[_Pending] = []
        self._user_started: datetime | None = None
        self._user_stopped: datetime | None = None
        self._bot_started: datetime | None = None
        self._latency_ms: int | None = None
        transport.add_event_handler("on_connected", self._on_connected)
        transport.add_event_handler("on_participant_connected", self._on_joined)
        transport.add_event_handler("on_participant_disconnected", self._on_left)
        assistant_turns.add_event_handler("on_assistant_turn_stopped", self._on_bot_turn)
        latency.add_event_handler("on_latency_measured", self._on_latency)

    async def on_push_frame(self, data: FramePushed):
        frame = data.frame
        if isinstance(frame, VADUserStartedSpeakingFrame) and self._user_started is None:
            self._user_started, self._user_stopped = now(), None
        elif isinstance(frame, VADUserStoppedSpeakingFrame) and self._user_stopped is None:
            self._user_stopped = now()
        elif isinstance(frame, BotStartedSpeakingFrame) and self._bot_started is None:
            self._flush_pending()
            self._bot_started = now()
        elif isinstance(frame, TranscriptionFrame):
            if isinstance(data.source, STTService) and data.first_push:
                self._flush_pending()
                self._pending.append(_Pending(frame, self._user_utterance(frame)))
            elif data.destination is self._user_turns:
                self._flush_pending(addressed_by=frame.user_id)

    def _user_utterance(self, frame: TranscriptionFrame) -> Utterance:
        ended = now()
        started = self._user_started or ended
        stopped = (
            self._user_stopped if self._user_stopped and self._user_stopped >= started else ended
        )
        self._user_started = None
        return Utterance(
            speaker_identity=frame.user_id or "",
            text=frame.text.strip(),
            speaker_name=self._names.get(frame.user_id, ""),
            role=ROLE_USER,
            started_at=started,
            ended_at=stopped,
        )

    def _flush_pending(self, addressed_by: str | None = None) -> None:
        """Write waiting transcriptions: addressed when they reached the LLM, else not."""
        for pending in self._pending:
            addressed = addressed_by is not None and pending.frame.user_id == addressed_by
            self._recorder.utterance(replace(pending.utterance, addressed=addressed))
        self._pending.clear()

    async def _on_bot_turn(self, _aggregator, message: AssistantTurnStoppedMessage):
        started, self._bot_started = self._bot_started, None
        latency, self._latency_ms = self._latency_ms, None
        if not message.content.strip() or started is None:
            return  # nothing was spoken
        self._recorder.utterance(
            Utterance(
                speaker_identity=self._bot_identity,
                speaker_name=self._bot_name,
                role=ROLE_BOT,
                text=message.content.strip(),
                started_at=started,
                ended_at=now(),
                interrupted=message.interrupted,
                latency_ms=latency,
            )
        )

    async def _on_latency(self, _observer, seconds: float):
        self._latency_ms = round(seconds * 1000)

    async def _on_connected(self, transport: LiveKitTransport):
        """People already in the room (a replacement bot joins them) get no join event."""
        for identity in transport.get_participants():
            await self._on_joined(transport, identity)

    async def _on_joined(self, _transport, identity: str):
        if self._is_agent(identity) or identity in self._present:
            return
        metadata = await self._transport.get_participant_metadata(identity)
        self._names[identity] = metadata.get("name", "")
        self._present.add(identity)
        self._recorder.participant_joined(identity, self._names[identity], now())

    async def _on_left(self, _transport, identity: str):
        if identity in self._present:
            self._present.discard(identity)
            self._recorder.participant_left(identity, now())

    async def cleanup(self):
        """End the session when the people have left (a bot stopped with people still in the room
        leaves it open for its replacement to resume), then wait for queued writes."""
        await super().cleanup()
        self._flush_pending()
        if not self._present:
            self._recorder.end(now())
        stats = await asyncio.to_thread(self._recorder.close, CLOSE_TIMEOUT_S)
        logger.info(
            f"records of session {self._recorder.session.id}: {stats.written} written, "
            f"{stats.lost} lost"
        )
