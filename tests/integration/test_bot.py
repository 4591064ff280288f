"""The bot end to end: `python -m bot` in a real LiveKit room with real Ollama, Whisper and voice.

A Python participant (tests/support/human.py) speaks recorded questions into the room and
judges the bot by what comes back: RTVI messages on the data channel, its audio and its video.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np
import pytest

from bot.settings import (
    DEFAULT_IDENTITY,
    DEFAULT_LLM_UNREACHABLE_NOTICE,
    DEFAULT_LLM_WAIT_NOTICE,
)
from processors.timing import TTS_TIMING_MESSAGE_TYPE
from records.store import RecordStore
from stack import binaries, services
from tests.support.bot_process import BotProcess
from tests.support.human import HumanParticipant
from tests.support.probe import (
    frames_per_second,
    level_dbfs,
    lip_box,
    lip_motion,
    rtvi_messages,
    server_messages,
    speech_times,
    spoken_words,
    user_transcripts,
    video_frames,
    words_of,
)
from tests.support.records import room_context
from tests.support.replies import reply_over
from tests.support.speech import speak

BOT_READY_TIMEOUT = 120.0
REPLY_TIMEOUT = 180.0
MIN_FPS = 20
# Person's speech onset → the bot's last audio heard over them, at most.
BARGE_IN_MAX_S = 1.5


async def voice(text: str) -> tuple[np.ndarray, int]:
    """The recorded utterance, synthesized off the event loop so receiving never stalls."""
    return await asyncio.to_thread(speak, text)


@dataclass
class Session:
    """One room: the bot subprocess and the participant talking to it."""

    human: HumanParticipant
    bot: BotProcess
    records: RecordStore
    identity: str = DEFAULT_IDENTITY

    def alive(self) -> bool:
        """True while the bot process runs; a dead bot fails the test at once, not by timeout."""
        if self.bot.exit_code() is not None:
            raise AssertionError(f"the bot exited with status {self.bot.exit_code()}")
        return True

    async def ask(self, text: str) -> float:
        """Speak `text` into the room; returns when its last sample left (monotonic)."""
        await self.human.publish_audio(*await voice(text))
        return self.human.speech_ended_at

    def speech(self, since: float = 0.0) -> list[float]:
        return speech_times(self.human.audio, self.identity, since)

    def said(self, since: float = 0.0, until: float = float("inf")) -> list[str]:
        return words_of(" ".join(spoken_words(self.human.messages, since, until)))

    async def context(self, replies: int) -> list[dict]:
        """The LLM context the conversation holds, from the bot's record of it (the messages a
        resumed bot starts from), once it holds `replies` bot replies, the last one last (the
        recorder writes from a thread)."""

        def recorded():
            messages = self.alive() and room_context(self.records, self.bot.room)
            bot = [m for m in messages if m["role"] == "assistant"]
            return messages if len(bot) == replies and bot[-1] is messages[-1] else None

        try:
            return await self.human.wait_for(recorded, 30, what=f"{replies} replies on record")
        except TimeoutError:
            raise AssertionError(
                f"on record: {room_context(self.records, self.bot.room)}"
            ) from None

    def heard(self, since: float = 0.0) -> list[str]:
        return words_of(" ".join(user_transcripts(self.human.messages, since)))

    async def reply_end(
        self, since: float, *, quiet: float = 2.5, timeout: float = REPLY_TIMEOUT  # noqa: ASYNC109 (poll deadline)
    ) -> float:
        """Wait till the bot's reply to what was said at `since` is over (see `reply_over`) and
        it was quiet `quiet` s; its last speech time."""
        return await self.human.wait_for(
            lambda: self.alive() and reply_over(self.human, self.identity, since, quiet),
            timeout,
            what="the bot's spoken reply",
        )


def exchanges(context: list[dict]) -> list[tuple[str, str]]:
    """(what the people said, the bot's reply) per reply; a turn Whisper heard as several
    utterances is joined."""
    pairs, said = [], []
    for m in context:
        if m["role"] == "user":
            said.append(m["content"])
        else:
            pairs.append((" ".join(said), m["content"]))
            said = []
    return pairs


@pytest.fixture
def bot_env(stack_env) -> dict[str, str]:
    return {
        **stack_env,
        "BOT_GREETING": "",
        "BOT_LLM_TEMPERATURE": "0",
        "BOT_LLM_MAX_TOKENS": "32",
        "BOT_EMPTY_ROOM_GRACE_SECS": "1",
    }


@pytest.fixture
def session(livekit, make_token, bot_env, tmp_path) -> Callable:
    """`async with session(**env) as s`: a fresh room with the bot (subprocess) and a person."""
    bots: list[BotProcess] = []
    # The conversation record (on by default) in the test's own SQLite file.
    records_url = f"sqlite:///{tmp_path / 'records.sqlite3'}"
    records = RecordStore(url=records_url)

    @asynccontextmanager
    async def open_session(*, identity: str = "human-1", **env: str) -> AsyncIterator[Session]:
        room = f"test-{uuid.uuid4().hex[:8]}"
        env = {**bot_env, "DATABASE_URL": records_url, **env}
        bot = BotProcess(room=room, env=env, log_path=tmp_path / f"bot-{room}.log")
        bots.append(bot.start())
        try:
            async with HumanParticipant.connect(livekit.url, make_token(room, identity)) as human:
                s = Session(human=human, bot=bot, records=records)
                await human.wait_for(
                    lambda: s.alive() and any(w == s.identity for _, w, _ in human.video),
                    BOT_READY_TIMEOUT,
                    what="the bot's video",
                )
                yield s
        except BaseException:
            lines = [line[:300] for line in bot.log().splitlines()]
            print(f"--- bot log ({bot.log_path}) ---", *lines[-80:], sep="\n")
            raise

    yield open_session
    for bot in bots:
        bot.stop()
    records.close()


async def test_spoken_question_gets_a_spoken_lip_synced_answer(session):
    async with session() as s:
        h = s.human
        asked = await s.ask("What is the capital of France?")
        await s.reply_end(asked)

        assert {"capital", "france"} <= set(s.heard(asked - 10)), s.heard(asked - 10)
        loudest = max(
            level_dbfs(x) for at, who, x, _ in h.audio if who == s.identity and at > asked
        )
        assert loudest > -25, f"the reply has no speech energy ({loudest:.0f} dBFS)"

        timings = server_messages(h.messages, TTS_TIMING_MESSAGE_TYPE, asked)
        assert timings, "no bot-tts-timing message"
        for t in timings:
            assert " ".join(t["words"]).split() == t["text"].split()
            assert len(t["wtimes"]) == len(t["words"]) == len(t["wdurations"])
        assert s.said(asked) == words_of(" ".join(t["text"] for t in timings))

        frames = video_frames(h.video, s.identity)
        speech = np.array(s.speech(asked))
        speaking, silent = [], []
        # The lips are found in the face at rest as the question ends, not in the stream's first
        # frame (LiveKit may send a lower simulcast layer while the stream starts up).
        rest = [f for at, f in frames if at < asked][-1]
        for at, change in lip_motion(frames, lip_box(rest)):
            gap = np.min(np.abs(speech - at))
            (speaking if gap < 0.05 else silent if gap > 1.0 else []).append(change)
        assert speaking and silent, "need frames while speaking and while silent"
        assert np.median(speaking) > 2 * np.median(silent) + 0.5, (
            np.median(speaking),
            np.median(silent),
        )


async def test_video_keeps_its_frame_rate_while_the_bot_answers(session):
    # With LiveKit's default simulcast this viewer received 19.5-21 fps in most 2-s windows (2 of
    # 2 runs below MIN_FPS); with the one layer the bot publishes, 23.5-25.5 (3 of 3 runs).
    async with session() as s:
        asked = await s.ask("Tell me about the city of Paris in three sentences.")
        last_speech = await s.reply_end(asked)
        # While the bot speaks: between turns a still face is sent at its idle rate only.
        first_speech = s.speech(asked)[0]
        frames = video_frames(s.human.video, s.identity)
        fps = frames_per_second([at for at, _ in frames], first_speech, last_speech)
        print(f"video fps per 2-s window while the bot answers: {fps}")
        assert fps, f"the reply was shorter than a window ({last_speech - first_speech:.1f} s)"
        assert min(fps) >= MIN_FPS, f"video frames per second while the bot answers: {fps}"


async def test_two_turns_keep_context(session):
    async with session() as s:
        first = await s.ask("My name is Alice.")
        await s.reply_end(first)
        second = await s.ask("What is my name?")
        await s.reply_end(second)

        assert "alice" in s.heard(first - 10)
        # The context the second question was answered in holds the first exchange: the name
        # and the bot's answer (both user turns reached the LLM; a resumed bot starts from this).
        (told, reply), (asked, answer) = exchanges(await s.context(replies=2))
        assert "alice" in words_of(told) and reply.strip(), (told, reply)
        assert "name" in words_of(asked), asked
        # ...and the LLM answered from it: only the first turn holds the name (at temperature 0
        # the default model answers "My name is Alice.").
        assert "alice" in words_of(answer), answer


async def test_barge_in_stops_the_bot_and_the_new_question_is_answered(session):
    async with session(BOT_LLM_MAX_TOKENS="150") as s:
        h = s.human
        asked = await s.ask("Tell me a long story about a brave knight and a dragon.")
        # The story starts after the LLM's first words (a slow LLM gets a spoken wait notice
        # first, which is not the story).
        texts = await h.wait_for(
            lambda: rtvi_messages(h.messages, "bot-llm-text", asked), REPLY_TIMEOUT,
            what="the story's first words from the LLM",
        )
        await h.wait_for(lambda: s.speech(texts[0][0]), 60, what="the bot starting its story")
        started = s.speech(texts[0][0])[0]
        await h.wait_for(lambda: s.speech(started + 2.0), 90, what="two seconds of story")

        await h.publish_audio(
            *await voice("Stop please. What is the capital of France?"), wait=False
        )
        await h.wait_for(lambda: h.speech_started_at and h.speech_started_at > started, 5)
        interrupted = h.speech_started_at
        said_until = await h.wait_for(lambda: h.speech_ended_at, 20, what="the interruption")

        # The bot fell silent while the person was still talking...
        over = [at for at in s.speech(interrupted) if at < said_until]
        assert not over or over[-1] < said_until - 0.5, "the bot kept talking over the person"
        # ...soon after they began (0.58 s p50 on a quiet machine, bench/conversation_bench.py;
        # the margin is for a loaded CI machine): neither the story nor an answer to the first
        # words ("Stop please.") goes on while they finish the question.
        assert not over or over[-1] - interrupted < BARGE_IN_MAX_S, over[-1] - interrupted
        # ...then answered the new question...
        await s.reply_end(said_until)
        assert "france" in s.heard(interrupted)
        # ...and only what it got to say of the story is in the context the LLM sees next.
        story_said = s.said(asked, said_until)
        notice = words_of(DEFAULT_LLM_WAIT_NOTICE)  # spoken, by design not in the context
        if story_said[: len(notice)] == notice:
            story_said = story_said[len(notice) :]
        story_written = words_of(
            "".join(
                m["data"]["text"]
                for at, m in rtvi_messages(h.messages, "bot-llm-text", asked)
                if at <= said_until
            )
        )
        (_, story_kept), (interruption, _) = exchanges(await s.context(replies=2))
        assert "france" in words_of(interruption), interruption
        assert story_said and len(story_said) < len(story_written)
        # Pipecat's context aggregator drops a word's text frame still in its queue when the
        # interruption reaches it, after the client was already sent that word: at most that one
        # word, the one playing as the person cut in, may be missing from the context.
        kept_words = words_of(story_kept)
        assert story_said[: len(kept_words)] == kept_words, (kept_words, story_said)
        assert len(story_said) - len(kept_words) <= 1, (kept_words, story_said)
        # The mouth stopped with the voice: lips as still as before the story once it was cut
        # (from the bot's last sound before the person finished, whether that came before or
        # after the person's onset, to the end of the interruption: at least 0.5 s, see above).
        frames = video_frames(h.video, s.identity, asked - 2.0)
        motion = lip_motion(frames, lip_box(frames[0][1]))
        idle = [m for at, m in motion if at < asked]
        silent_from = max(at for at in s.speech(asked) if at < said_until)
        cut = [m for at, m in motion if silent_from + 0.3 < at < said_until]
        assert idle and cut, f"no frames before the story or after it was cut ({len(motion)})"
        assert np.median(cut) < 2 * np.median(idle) + 0.5, (np.median(cut), np.median(idle))


async def test_bad_inputs_neither_crash_nor_hang_the_bot(session):
    rng = np.random.default_rng(0)
    async with session() as s:
        h = s.human
        await h.publish_audio(np.zeros(24000 * 3, np.int16), 24000)  # silence
        await h.publish_audio(rng.normal(0, 2000, 24000 * 2).astype(np.int16), 24000)  # noise
        await s.ask("Wie spät ist es? Ich hätte gern einen Kaffee mit Milch, bitte.")  # not English
        await s.ask(" ".join(["I keep talking about the weather, the trains and the sea."] * 16))
        assert s.bot.exit_code() is None, "the bot died"
        question = await s.ask("What is the capital of France?")
        await s.reply_end(question)
        assert "france" in s.heard(question - 10)
        assert s.said(question), "no spoken answer after the bad inputs"
        assert s.bot.exit_code() is None


async def test_stopped_ollama_gives_a_spoken_notice_and_recovers(
    session, ollama, stack_settings, tmp_path
):
    port = services.free_port()
    own = services.ollama_server(
        binaries.ollama(stack_settings.cache),
        port=port,
        models_dir=stack_settings.cache / "ollama",
        log_path=tmp_path / "ollama-own.log",
    )
    own.start()
    try:
        async with session(OLLAMA_URL=f"http://127.0.0.1:{port}") as s:
            own.stop()  # Ollama goes away
            asked = await s.ask("What is the capital of France?")
            await s.reply_end(asked)
            # Its words come as data messages, which a loaded receiver may get seconds after
            # their audio (CI once had only the first four when the audio had gone quiet).
            notice = words_of(DEFAULT_LLM_UNREACHABLE_NOTICE)
            await s.human.wait_for(lambda: len(s.said(asked)) >= len(notice), 30,
                                   what="the notice's words")
            assert s.said(asked) == notice

            own.start()  # and comes back: the next turn is answered by the LLM again
            again = await s.ask("What is the capital of France?")
            await s.reply_end(again)
            assert s.said(again) and s.said(again) != words_of(DEFAULT_LLM_UNREACHABLE_NOTICE)
    finally:
        own.stop()


async def test_greets_ignores_other_agents_and_leaves_an_empty_room(session, livekit, make_token):
    greeting = "Hello there, nice to meet you."
    async with session(BOT_GREETING=greeting) as s:
        await s.human.wait_for(
            lambda: len(s.said()) >= len(words_of(greeting)), 60, what="the greeting"
        )
        assert s.said() == words_of(greeting)
        # Another agent speaks in the room: the bot neither transcribes nor answers it.
        # Its identity has no agent prefix: LiveKit's participant kind alone marks it an agent.
        token = make_token(s.bot.room, "assistant-two", agent=True)
        async with HumanParticipant.connect(livekit.url, token) as agent:
            await agent.publish_audio(*await voice("What is the capital of France?"))
            await asyncio.sleep(5)
        assert "france" not in s.heard()
    # Everybody left: the bot leaves the room and its process ends by itself, cleanly.
    assert s.bot.wait(30) == 0
