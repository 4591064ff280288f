"""RTVI 2.2 as a client receives it: every message the bot sends during a conversation.

The real bot (`python -m bot`, real LiveKit, Ollama, Whisper, voice) talks with a Python
participant that speaks RTVI 2.2.0 (it says client-ready): a greeting, two turns and a
barge-in. Every message must be one of Pipecat's RTVI message models and round-trip through it
unchanged (no fields it does not know), and the stream must keep the protocol's order.
The `bot-tts-timing` of each reply's first sentence must arrive with that sentence's audio.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid

import pipecat.processors.frameworks.rtvi.models as RTVI
from pydantic import BaseModel

from bot.pipeline import LATENCY_MESSAGE_TYPE
from processors.timing import TTS_TIMING_MESSAGE_TYPE
from processors.tts.timed import AUDIO_CHUNK_S
from tests.integration.test_bot import (  # noqa: F401 (fixtures)
    REPLY_TIMEOUT,
    Session,
    bot_env,
    session,
    voice,
)
from tests.support.probe import rtvi_messages

GREETING = "Hello, I am your avatar. Ask me anything."
# Seven replies on two shared cores: each may take several times the usual reply budget.
SLOW_REPLY_TIMEOUT = 2 * REPLY_TIMEOUT
# The project's own server-message types.
SERVER_MESSAGE_TYPES = {TTS_TIMING_MESSAGE_TYPE, LATENCY_MESSAGE_TYPE}
# A reply's timing message against its heard audio: the median within one audio chunk (plus
# the receiver's 10 ms audio frames), each within three (the receiver's jitter buffer varies).
TIMING_TOLERANCE_S = AUDIO_CHUNK_S + 0.01
TIMING_EACH_TOLERANCE_S = 3 * AUDIO_CHUNK_S


def message_models() -> dict[str, type[BaseModel]]:
    """Pipecat's RTVI message models by their `type`."""
    models = {}
    for name in dir(RTVI):
        model = getattr(RTVI, name)
        if (isinstance(model, type) and issubclass(model, BaseModel)
                and {"label", "type"} <= set(model.model_fields)):
            models[model.model_fields["type"].default] = model
    return models


async def client_ready(s: Session) -> None:
    """Say client-ready as an RTVI 2.2.0 client and wait for bot-ready."""
    await s.human.send_data(json.dumps({
        "label": RTVI.MESSAGE_LABEL, "type": "client-ready", "id": uuid.uuid4().hex,
        "data": {"version": RTVI.PROTOCOL_VERSION, "about": {"library": "tests"}}}))
    await s.human.wait_for(lambda: rtvi_messages(s.human.messages, "bot-ready"), 30,
                           what="bot-ready")


def protocol_violations(messages: list[tuple[float, dict]]) -> list[str]:
    """Where a received RTVI message stream breaks the model or the ordering rules."""
    models, problems = message_models(), []
    speaking, announced = False, set()
    for i, (_, m) in enumerate(messages):
        kind, data = m.get("type"), m.get("data")
        where = f"#{i} {kind}"
        model = models.get(kind)
        if model is None:
            problems.append(f"{where}: not an RTVI message type")
            continue
        if model.model_validate(m).model_dump(exclude_none=True) != m:
            problems.append(f"{where}: fields outside Pipecat's model: {m}")
        if i == 0 and kind != "bot-ready":
            problems.append(f"{where}: the first message is not bot-ready")
        if kind == "bot-started-speaking":
            speaking = True
        elif kind == "bot-stopped-speaking":
            speaking = False
        elif kind == "bot-interrupted" and not speaking:
            problems.append(f"{where}: while the bot was silent")
        elif kind == "metrics" and not data:
            problems.append(f"{where}: empty data")
        elif kind == "server-message" and data.get("type") not in SERVER_MESSAGE_TYPES:
            problems.append(f"{where}: unknown server-message {data}")
        elif kind == "bot-output":
            if "spoken" in data:
                problems.append(f"{where}: v1 field `spoken` sent to a 2.2.0 client")
            segment, status = data.get("segment_id"), data.get("spoken_status")
            if status == "new":
                if segment in announced:
                    problems.append(f"{where}: segment {segment} announced twice")
                announced.add(segment)
            elif segment not in announced:
                problems.append(f"{where}: {status} before its segment's new")
    return problems


def first_voiced_s(timing: dict) -> float:
    """Seconds from a sentence's first sample to its first non-silent viseme."""
    voiced = [t for v, t in zip(timing["visemes"], timing["vtimes"], strict=False) if v != "sil"]
    return min(voiced or timing["wtimes"] or [0]) / 1000


async def timing_offset(s: Session, since: float) -> float:
    """Heard onset of the first reply after `since` minus when its timing message says it is,
    with this receiver's jitter-buffer delay added as a client adds it
    (client/src/speech-sync.js)."""

    def first_timing():
        return next(((at, m) for at, m in rtvi_messages(s.human.messages, "server-message", since)
                     if m["data"].get("type") == TTS_TIMING_MESSAGE_TYPE), None)

    # A loaded receiver may get data packets a few seconds after the audio they go with.
    at, message = await s.human.wait_for(first_timing, 30, what="the reply's bot-tts-timing")
    timing = message["data"]
    expected = (at - timing["played_ms"] / 1000 + first_voiced_s(timing)
                + await s.human.playout_delay_s(s.identity))
    heard = s.speech(since)[0]
    return heard - expected


async def test_a_conversation_is_rtvi_2_2(session, tmp_path):
    async with session(BOT_GREETING=GREETING) as s:
        try:
            offsets = await converse(s)
        finally:
            messages = rtvi_messages(s.human.messages)
            (tmp_path / "rtvi-messages.json").write_text(json.dumps(messages, indent=1))
        print(f"timing offsets (s): {[round(o, 3) for o in offsets]}; "
              f"load {os.getloadavg()}; messages in {tmp_path / 'rtvi-messages.json'}")
        kinds = [m["type"] for _, m in messages]
        assert protocol_violations(messages) == []
        assert kinds.count("bot-interrupted") >= 1, "the barge-in did not interrupt the bot"
        assert kinds.count("user-started-speaking") > kinds.count("bot-interrupted")
        assert all(abs(o) <= TIMING_EACH_TOLERANCE_S for o in offsets), offsets
        assert abs(statistics.median(offsets)) <= TIMING_TOLERANCE_S


async def converse(s: Session) -> list[float]:
    """Greeting, two turns and a barge-in; each reply's timing offset (s)."""
    h = s.human
    joined = time.monotonic()
    await client_ready(s)
    ready_at = rtvi_messages(h.messages, "bot-ready")[0][0]
    await s.reply_end(joined)
    offsets = [await timing_offset(s, ready_at)]

    for question in ("What is the capital of France?", "And what is the capital of Spain?"):
        asked = await s.ask(question)
        await s.reply_end(asked, timeout=SLOW_REPLY_TIMEOUT)
        offsets.append(await timing_offset(s, asked))

    # Barge in as the story's first sentence starts (a slow LLM leaves silent gaps later).
    barge_in = await voice("Stop please. What is the capital of Italy?")
    asked = await s.ask("Tell me a long story about a brave knight and a dragon.")
    await h.wait_for(lambda: s.speech(asked), SLOW_REPLY_TIMEOUT, what="the story")
    await h.publish_audio(*barge_in)
    offsets.append(await timing_offset(s, asked))
    await s.reply_end(h.speech_ended_at, timeout=SLOW_REPLY_TIMEOUT)
    return offsets
