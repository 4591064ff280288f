"""Meetings end to end: `python -m bot` with two real LiveKit participants who speak in
different voices (tests/support/voices.py), real Ollama, Whisper tiny.en and the embedded voice.

Each test judges the bot from outside: RTVI messages each person receives, the bot's audio,
and the bot's conversation record (who said what, and whether it reached the LLM).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import pytest
from pipecat.processors.frameworks.rtvi import models as RTVI

from bot.settings import DEFAULT_IDENTITY
from processors.rtvi_participants import DISCONNECT_BOT
from records.store import RecordStore
from tests.integration.test_bot import BOT_READY_TIMEOUT, REPLY_TIMEOUT, bot_env  # noqa: F401
from tests.support.bot_process import BotProcess
from tests.support.human import HumanParticipant
from tests.support.probe import rtvi_messages, speech_times, words_of
from tests.support.records import room_utterances
from tests.support.voices import speak

# Generous: under heavy load the bot hears a person seconds after they start.
FOLLOW_UP_SECS = 12.0


@dataclass
class Person:
    name: str
    voice: str
    human: HumanParticipant

    @property
    def identity(self) -> str:
        return self.human.identity

    async def say(self, text: str, *, wait: bool = True) -> float:
        """Speak `text`; returns when it started (monotonic)."""
        samples, rate = await asyncio.to_thread(speak, text, self.voice)
        started = time.monotonic()
        await self.human.publish_audio(samples, rate, wait=wait)
        return started


@dataclass
class Meeting:
    bot: BotProcess
    alice: Person
    bob: Person
    records: RecordStore

    def alive(self) -> bool:
        if self.bot.exit_code() is not None:
            raise AssertionError(f"the bot exited with status {self.bot.exit_code()}")
        return True

    def bot_speech(self, since: float) -> list[float]:
        """When the bot's voice reached Alice (she hears every answer)."""
        return speech_times(self.alice.human.audio, DEFAULT_IDENTITY, since)

    def transcripts(self, person: Person, since: float = 0.0) -> list[tuple[str, list[str]]]:
        """(speaker identity, words) of each final user transcription `person` received."""
        return [(m["data"].get("user_id"), words_of(m["data"]["text"]))
                for _, m in rtvi_messages(person.human.messages, "user-transcription", since)
                if m["data"].get("final")]

    def heard(self) -> list[dict]:
        """The people's utterances on record: text, speaker, and whether it reached the LLM."""
        return [u for u in room_utterances(self.records, self.bot.room) if u["role"] == "user"]

    def user_turns(self) -> list[tuple[str, list[str]]]:
        """(speaker name, words) of the utterances that reached the LLM, oldest first: on record
        as soon as they reach it, long before the answer they get is over."""
        return [(u["speaker_name"], words_of(u["text"])) for u in self.heard() if u["addressed"]]

    async def answered(self, since: float, *, quiet: float = 2.5) -> float:
        """Wait until the bot spoke after `since` and fell quiet; when it last spoke."""
        def ended():
            times = self.alive() and self.bot_speech(since)
            return times and time.monotonic() - times[-1] > quiet and times[-1]
        return await self.alice.human.wait_for(ended, REPLY_TIMEOUT, what="the bot's answer")

    async def silent(self, since: float, secs: float) -> bool:
        """True when the bot said nothing from `since` for `secs` seconds."""
        await asyncio.sleep(max(0.0, since + secs - time.monotonic()))
        return self.alive() and not self.bot_speech(since)


@pytest.fixture
def meeting(livekit, make_token, bot_env, tmp_path):  # noqa: F811
    """`async with meeting(**env) as m`: a room with the bot, Alice (embedded voice, the owner:
    she joins first) and Bob (Piper voice, or `bob_voice`)."""
    bots: list[BotProcess] = []
    # The conversation record (who said what, addressed or not) in the test's own SQLite file.
    records_url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    records = RecordStore(url=records_url)

    @asynccontextmanager
    async def open_meeting(*, bob_voice: str = "piper", **env: str) -> AsyncIterator[Meeting]:
        room = f"meet-{uuid.uuid4().hex[:8]}"
        bot = BotProcess(room=room, env={**bot_env, "BOT_FOLLOW_UP_SECS": str(FOLLOW_UP_SECS),
                                         "DATABASE_URL": records_url, **env},
                         log_path=tmp_path / f"bot-{room}.log")
        bots.append(bot.start())
        try:
            async with AsyncExitStack() as stack:
                people = []
                for identity, name, voice in (("alice", "Alice", "embedded"),
                                              ("bob", "Bob", bob_voice)):
                    human = await stack.enter_async_context(HumanParticipant.connect(
                        livekit.url, make_token(room, identity, name=name)))
                    await human.wait_for(
                        lambda h=human: bot.exit_code() is None
                        and any(w == DEFAULT_IDENTITY for _, w, _ in h.video),
                        BOT_READY_TIMEOUT, what="the bot's video")
                    people.append(Person(name=name, voice=voice, human=human))
                yield Meeting(bot=bot, alice=people[0], bob=people[1], records=records)
        except BaseException:
            lines = [line[:300] for line in bot.log().splitlines()]
            print(f"--- bot log ({bot.log_path}) ---", *lines[-80:], sep="\n")
            raise

    yield open_meeting
    for bot in bots:
        bot.stop()
    records.close()


def _rtvi(type_: str, data: dict | None = None) -> str:
    return json.dumps({"label": RTVI.MESSAGE_LABEL, "type": type_, "id": uuid.uuid4().hex[:8],
                       "data": data})


async def test_two_people_in_turn_and_overlapping_are_heard_named_and_not_answered(meeting):
    async with meeting() as m:
        start = time.monotonic()
        await m.alice.say("Bob, did you see the football game last night?")
        await m.bob.say("Yes, the second half was wonderful.")
        # Both at once: each still heard, each attributed.
        await asyncio.gather(m.alice.say("I think the coffee machine is broken again."),
                             m.bob.say("Shall we book the room for Tuesday morning?"))
        expected = {("alice", "football"), ("bob", "wonderful"), ("alice", "coffee"),
                    ("bob", "tuesday")}

        def heard_all():
            got = {(who, w) for who, words in m.transcripts(m.bob, start) for w in words}
            return m.alive() and expected <= got
        await m.bob.human.wait_for(heard_all, REPLY_TIMEOUT, what=f"transcripts of {expected}")
        # Everyone sees every transcript with its speaker.
        assert {(who, w) for who, ws in m.transcripts(m.alice, start) for w in ws} >= expected
        # Nobody asked the bot: it said nothing.
        assert await m.silent(start, time.monotonic() - start + 4.0), "the bot answered chatter"


ALICE_ASIDE = "I always forget the capital of Spain."
BOB_LATE = "And what is the capital of Italy?"


async def test_the_name_anywhere_and_follow_ups_in_the_window_are_answered(meeting):
    async with meeting() as m:
        asked = await m.bob.say("Tell me, Ava, what is the capital of France?")
        last = await m.answered(asked)
        assert any(who == "Bob" and "france" in words for who, words in m.user_turns())

        follow = await m.bob.say("And what is the capital of Germany?")  # no name, in the window
        last = await m.answered(follow)
        who, words = m.user_turns()[-1]
        assert who == "Bob" and "germany" in words, m.user_turns()

        # Alice (not the one answered) says no name: not answered, even inside Bob's window.
        other = await m.alice.say(ALICE_ASIDE)
        assert await m.silent(other, 10.0), "the bot answered someone who did not address it"

        await asyncio.sleep(max(0.0, last + FOLLOW_UP_SECS + 1.0 - time.monotonic()))
        late = await m.bob.say(BOB_LATE)  # outside the window
        assert await m.silent(late, 10.0), "the bot answered a follow-up after its window"

        turns = len(m.user_turns())
        end = await m.alice.say("What is two plus two, Ava?")  # the name at the end
        await m.answered(end)
        assert [who for who, _ in m.user_turns()[turns:]] == ["Alice"], m.user_turns()
        # The two that were not for the bot are on record as heard, not as sent to the LLM: the
        # only utterances not sent are Alice's aside and Bob's late follow-up, each with most of
        # its words (as tiny.en heard them: "Italy" came out as "the belief" in one CI run).
        ignored: dict[str, list[str]] = {}
        for u in m.heard():
            if not u["addressed"]:
                ignored.setdefault(u["speaker_name"], []).extend(words_of(u["text"]))
        assert sorted(ignored) == ["Alice", "Bob"], m.heard()
        for name, said in (("Alice", ALICE_ASIDE), ("Bob", BOB_LATE)):
            words = set(words_of(said))
            assert len(words & set(ignored[name])) >= len(words) / 2, (said, ignored[name])


async def test_chatter_does_not_stop_the_bot_and_replies_go_to_their_asker(meeting):
    async with meeting(BOT_LLM_MAX_TOKENS="150") as m:
        # RTVI per participant: only Bob gets the bot-ready for Bob's client-ready.
        ready_sent = time.monotonic()
        await m.bob.human.send_data(_rtvi("client-ready", {"version": RTVI.PROTOCOL_VERSION}))
        await m.bob.human.wait_for(lambda: rtvi_messages(m.bob.human.messages, "bot-ready",
                                                         ready_sent), 30, what="bot-ready")
        # Disconnect policy: Bob is not the owner, and in a group nobody may end the bot.
        for person in (m.bob, m.alice):
            sent = time.monotonic()
            await person.human.send_data(_rtvi(DISCONNECT_BOT))
            await person.human.wait_for(
                lambda p=person, s=sent: rtvi_messages(p.human.messages, "error-response", s),
                30, what="the refusal of disconnect-bot")
        assert not rtvi_messages(m.alice.human.messages, "bot-ready", ready_sent)

        # A story with a subject: asked for "a long story", the 0.5B model once told a single
        # sentence about the meeting ("Alice told Bob a long story about ..."), over before the
        # chatter was heard, so nothing was left to go on with. The name goes last: tiny.en
        # once dropped the leading "Ava," of this longer question (issue 13), and the bot
        # rightly kept quiet.
        asked = await m.alice.say("Tell me a long story about a brave knight and a dragon, Ava.")
        await m.alice.human.wait_for(lambda: m.alive() and m.bot_speech(asked), REPLY_TIMEOUT,
                                     what="the bot starting its story")
        chatter = await m.bob.say("Alice, shall we have lunch together later?")
        chatter_end = m.bob.human.speech_ended_at

        # Heard = a transcript under Bob's name (its words are tiny.en's: "lunch" once came
        # back as "bunch", which is no reason for this test to fail).
        def chatter_heard():
            return m.alive() and any(who == "bob" for who, _ in m.transcripts(m.alice, chatter))

        def bobs():
            return [u for u in m.heard() if u["speaker_name"] == "Bob"]
        await m.alice.human.wait_for(chatter_heard, REPLY_TIMEOUT, what="Bob's chatter")
        heard = time.monotonic()
        await asyncio.sleep(2.0)
        # The chatter was heard, but it neither interrupted the bot nor opened a turn...
        assert not rtvi_messages(m.alice.human.messages, "bot-interrupted", chatter), \
            "people talking stopped the bot"
        # (a turn it opened would be on record as addressed at once; an unaddressed utterance
        # is written when the next one or the bot's next speech comes, checked at the end)
        assert not any(u["addressed"] for u in bobs())
        # ...and the bot goes on with its story after the chatter was heard.
        await m.alice.human.wait_for(lambda: m.alive() and m.bot_speech(heard), REPLY_TIMEOUT,
                                     what="the rest of the story after the chatter")
        assert chatter_end < heard

        # Once Bob has left, Alice (the owner, now alone) may end the bot.
        await m.bob.human.room.disconnect()
        await asyncio.sleep(2.0)
        await m.alice.human.send_data(_rtvi(DISCONNECT_BOT))
        assert await asyncio.to_thread(m.bot.wait, 30) == 0
        assert [(u["speaker_name"], u["addressed"]) for u in bobs()] == [("Bob", False)], m.heard()


@pytest.mark.xfail(strict=False, reason=(
    "known limit (issue 13, open): tiny.en hears espeak-ng's name unreliably through Opus; "
    "'Ava, what is two plus two?' came out as 'Ava, ...', 'Um, ...' and 'Ama. ...' in three "
    "live runs (the last with the prompt 'Ava.'), and 'Ava.' alone as 'Ah, but...' with the "
    "prompt 'Hey Ava.'"))
async def test_a_robotic_voice_saying_the_name_first_or_alone_is_answered(meeting):
    """Issue 13: espeak-ng's robotic voice lost the name in the meeting benchmark ("Ava." alone
    was not transcribed, "Ava, what is two plus two?" was heard as "um what is 2 plus 2").
    Each is said with nobody in a follow-up window, so only the name can address the bot."""
    async with meeting(bob_voice="espeak-m") as m:
        asked = await m.bob.say("Ava, what is two plus two?")
        last = await m.answered(asked)
        assert [who for who, _ in m.user_turns()] == ["Bob"], m.heard()
        assert {"plus", "2", "two"} & set(m.user_turns()[0][1]), m.heard()

        await asyncio.sleep(max(0.0, last + FOLLOW_UP_SECS + 1.0 - time.monotonic()))
        called = await m.bob.say("Ava.")
        # Heard as the name alone, it gets BOT_CALL_REPLY ("Yes, Bob?") without the LLM.
        await m.answered(called)
