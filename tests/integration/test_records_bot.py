"""The conversation record of a real call, on SQLite and on a real PostgreSQL server.

`python -m bot --room R` runs as a subprocess against the real livekit-server, Ollama, Whisper and
voice; a Python participant (tests/support/human.py) talks to it. Checked from the database and
from what the participant hears:
- a turn of a real call is recorded with the right speakers, names and times;
- a bot killed with SIGKILL and started again resumes the open session: it loads the earlier
  turns into its LLM context, writes on in the same session, and does not greet the person
  again (issue 17, finding 13);
- a PostgreSQL server stopped in the middle of a call: the call goes on, the lost writes are
  counted, and writing resumes when the server is back.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import uuid
from pathlib import Path

import pytest

from bot.recorder import remembered_context
from bot.settings import DEFAULT_IDENTITY
from records.store import RecordStore, SessionQuery, now
from tests.support.bot_process import BotProcess
from tests.support.human import HumanParticipant
from tests.support.probe import speech_times, spoken_words, words_of
from tests.support.records import room_record
from tests.support.replies import reply_over
from tests.support.speech import speak

BOT_READY_TIMEOUT = 240.0
# Generous: the shared 2-core test machine can take minutes per turn under load.
REPLY_TIMEOUT = 420.0
QUIET_S = 2.5
GREETING = "Hello there, I am Ava."
FACT = "My name is Dana and my favourite colour is green."
QUESTION = "What is my favourite colour?"
# Several spoken turns with real models; minutes each when the shared machine is loaded.
pytestmark = pytest.mark.timeout(1800)
RECORDS_LOG = re.compile(r"records of session \w+: (\d+) written, (\d+) lost")


@pytest.fixture
def bot_env(stack_env) -> dict[str, str]:
    return {
        **stack_env,
        "BOT_GREETING": GREETING,
        "BOT_LLM_TEMPERATURE": "0",
        "BOT_LLM_MAX_TOKENS": "32",
        "BOT_EMPTY_ROOM_GRACE_SECS": "1",
    }


class Call:
    """A room with the bot subprocess(es) and one person, Dana."""

    def __init__(self, *, livekit, make_token, env: dict[str, str], logs: Path):
        self.room = f"records-{uuid.uuid4().hex[:8]}"
        self._livekit, self._make_token, self._env, self._logs = livekit, make_token, env, logs
        self.bots: list[BotProcess] = []

    def start_bot(self, **env: str) -> BotProcess:
        bot = BotProcess(
            room=self.room,
            env={**self._env, **env},
            log_path=self._logs / f"bot-{self.room}-{len(self.bots)}.log",
        )
        self.bots.append(bot.start())
        return bot

    async def connected(self, bot: BotProcess) -> None:
        """Wait until the bot is in the room, so that Dana joining is an event it sees."""
        deadline = time.monotonic() + BOT_READY_TIMEOUT
        while f"Connected to {self.room}" not in bot.log():
            assert bot.exit_code() is None, f"the bot exited with status {bot.exit_code()}"
            assert time.monotonic() < deadline, "the bot did not join the room"
            await asyncio.sleep(0.2)

    def join(self):
        return HumanParticipant.connect(
            self._livekit.url, self._make_token(self.room, "dana", name="Dana")
        )

    async def ready(self, human: HumanParticipant, bot: BotProcess) -> None:
        def bot_video():
            assert bot.exit_code() is None, f"the bot exited with status {bot.exit_code()}"
            return any(who == DEFAULT_IDENTITY for _, who, _ in human.video)

        await human.wait_for(bot_video, BOT_READY_TIMEOUT, what="the bot's video")

    async def ask(self, human: HumanParticipant, text: str) -> float:
        """Say `text`, wait for the bot's whole reply; the time the question ended (monotonic).

        The reply is over when the LLM finished after the question, the bot spoke after that and
        then stayed quiet (tests/support/replies.py): under load a reply has long pauses.
        """
        await human.publish_audio(*await asyncio.to_thread(speak, text))
        asked = human.speech_ended_at
        await human.wait_for(
            lambda: reply_over(human, DEFAULT_IDENTITY, asked, QUIET_S),
            REPLY_TIMEOUT,
            what=f"the bot's reply to {text!r}",
        )
        return asked

    def stop(self) -> None:
        for bot in self.bots:
            bot.stop()


@pytest.fixture
def call(livekit, make_token, bot_env, tmp_path):
    c = Call(livekit=livekit, make_token=make_token, env=bot_env, logs=tmp_path)
    yield c
    c.stop()
    for bot in c.bots:
        lines = [line[:300] for line in bot.log().splitlines() if "| DEBUG " not in line]
        print(f"--- {bot.log_path} (no debug lines) ---", *lines[-40:], sep="\n")


def recorded_roles(store: RecordStore, room: str) -> list[str]:
    """Roles of the utterances on record for the room's newest session."""
    found = room_record(store, room)
    return [u["role"] for u in found["utterances"]] if found else []


async def test_a_killed_bot_resumes_the_recorded_conversation(call, records_url):
    first = call.start_bot(DATABASE_URL=records_url)
    await call.connected(first)
    wall_before = now()
    async with call.join() as dana:
        await call.ready(dana, first)
        await dana.wait_for(
            lambda: len(spoken_words(dana.messages)) >= len(words_of(GREETING)),
            60,
            what="the greeting",
        )
        await call.ask(dana, FACT)
        # The whole answer is on record (written as it happens) before the bot is killed.
        store = RecordStore(url=records_url)
        await dana.wait_for(
            lambda: recorded_roles(store, call.room) == ["bot", "user", "bot"],
            REPLY_TIMEOUT,
            what="the greeting, the fact and the answer on record",
        )
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    wall_after = now()

    sessions = store.list_sessions(SessionQuery(room=call.room))[0]
    assert len(sessions) == 1 and sessions[0]["ended_at"] is None, sessions
    record = store.get_session(sessions[0]["id"])
    assert [(p["identity"], p["name"]) for p in record["participants"]] == [("dana", "Dana")]
    said = [(u["role"], u["speaker_identity"], u["speaker_name"]) for u in record["utterances"]]
    assert said == [
        ("bot", DEFAULT_IDENTITY, "Ava"),
        ("user", "dana", "Dana"),
        ("bot", DEFAULT_IDENTITY, "Ava"),
    ], record["utterances"]
    greeting, fact, answer = record["utterances"]
    assert words_of(greeting["text"]) == words_of(GREETING)
    # (Whisper tiny.en may hear "Donna"; the colour is what the test asks about later.)
    assert {"name", "green"} <= set(words_of(fact["text"])) and fact["addressed"] is True
    assert answer["latency_ms"] and answer["latency_ms"] > 0
    for u in record["utterances"]:
        assert wall_before <= u["started_at"] <= u["ended_at"] <= wall_after, u
    assert greeting["ended_at"] <= fact["started_at"] and fact["ended_at"] <= answer["started_at"]

    # Dana comes back to a fresh bot: it knows the conversation and does not greet again.
    second = call.start_bot(DATABASE_URL=records_url)
    await call.connected(second)
    async with call.join() as dana:
        await call.ready(dana, second)
        await asyncio.sleep(QUIET_S)  # a greeting would start within this
        asked = await call.ask(dana, QUESTION)
        assert not spoken_words(dana.messages, 0, asked), "the replacement bot greeted again"
        reply = words_of(" ".join(spoken_words(dana.messages, asked)))
        await dana.wait_for(
            lambda: recorded_roles(store, call.room) == ["bot", "user", "bot", "user", "bot"],
            60,
            what="the new turn on record",
        )
    # It started from the three turns on record (the greeting, the fact and the answer: the
    # context a resumed bot builds from them), and wrote its new turn into the same session.
    assert f"resuming session {record['id']} of room {call.room} with 3 turns" in second.log()
    context = remembered_context(store, record["id"])
    assert [m["content"] for m in context[:3]] == [greeting["text"], fact["text"], answer["text"]]
    assert [m["role"] for m in context] == ["assistant", "user", "assistant", "user", "assistant"]
    assert any(w.startswith("colo") for w in words_of(context[3]["content"])), context
    # Whether the default model (SmolLM2-135M) then answers "green" is up to the model: it did not
    # reliably, so the test checks what the bot knows (its context), not the model's answer.
    print("answer after the restart:", " ".join(reply))
    store.close()


async def test_postgres_stopped_mid_call_the_call_goes_on_and_writes_resume(call, postgres):
    url = postgres.new_database()
    bot = call.start_bot(DATABASE_URL=url, BOT_GREETING="")
    await call.connected(bot)
    async with call.join() as dana:
        await call.ready(dana, bot)
        await call.ask(dana, "What is the capital of France?")
        postgres.stop()
        try:
            # The call goes on without its database.
            asked = await call.ask(dana, "What is two plus two?")
            assert speech_times(dana.audio, DEFAULT_IDENTITY, asked)
        finally:
            postgres.start()
        await call.ask(dana, "What colour is the sky?")
    bot.wait(240)  # the room is empty: the bot ends the session and leaves

    written, lost = map(int, RECORDS_LOG.findall(bot.log())[-1])
    assert lost >= 2, bot.log()[-2000:]  # the question and the answer during the outage
    store = RecordStore(url=url)
    record = store.get_session(store.list_sessions(SessionQuery(room=call.room))[0][0]["id"])
    users = [u["text"].lower() for u in record["utterances"] if u["role"] == "user"]
    assert len(users) == 2 and "france" in users[0] and "sky" in users[1], users
    assert [u["role"] for u in record["utterances"]] == ["user", "bot", "user", "bot"]
    assert record["ended_at"] is not None
    assert written > 0
    store.close()
