"""A conversation worth having (issue 10), judged at a real participant: correct answers from the
default model, turns that end when the question is finished but survive a pause inside a
sentence, and no reply spoken in another language.
"""

from __future__ import annotations

import asyncio

import numpy as np

from bot.pipeline import LATENCY_MESSAGE_TYPE
from bot.reply_guard import LANGUAGE, off_track
from bot.settings import DEFAULT_OFF_TRACK_NOTICE
from stack.settings import DEFAULT_OLLAMA_MODEL
from tests.integration.test_bot import REPLY_TIMEOUT, bot_env, session  # noqa: F401 (fixtures)
from tests.support.probe import server_messages, words_of
from tests.support.speech import speak

# A smart-turn silence limit far above any honest transcript delay, so a turn that waited for
# it instead of ending on its finished transcript shows plainly.
LONG_TURN_LIMIT_SECS = "5"
FINISHED_TURN_MAX_MS = 3000
# A turn's whole latency as the bot measures it (end of the question → bot speaking): seconds on a
# loaded 2-core machine; measured from the start of the call it passed 15 s by the second turn.
TURN_TOTAL_MAX_MS = 10_000


async def test_the_default_model_answers_correctly(session, ollama):
    assert ollama.model == DEFAULT_OLLAMA_MODEL
    async with session() as s:
        for question, answer in (("What is the capital of France?", "paris"),
                                 ("What do bees make?", "honey")):
            asked = await s.ask(question)
            await s.reply_end(asked)
            assert answer in s.said(asked), (question, s.said(asked))


async def test_a_long_pause_inside_one_sentence_is_one_turn(session):
    first, rate = await asyncio.to_thread(speak, "What is the capital of")
    second, _ = await asyncio.to_thread(speak, "Japan?")
    pause = np.zeros(int(1.2 * rate), np.int16)
    async with session() as s:
        await s.human.publish_audio(np.concatenate([first, pause, second]), rate)
        asked = s.human.speech_ended_at
        await s.reply_end(asked)
        # One user turn reached the LLM (a split sentence would be two), with both halves.
        context = await s.context(replies=1)
        users = [m["content"] for m in context if m["role"] == "user"]
        assert len(users) == 1, users
        assert "capital" in users[0].lower() and "japan" in users[0].lower(), users
        assert "tokyo" in s.said(asked)


async def test_a_finished_question_is_answered_without_the_long_wait(session):
    async with session(BOT_TURN_MAX_WAIT_SECS=LONG_TURN_LIMIT_SECS) as s:
        waits, breakdowns = [], []
        for question in ("What do bees make?", "Which season comes after winter?",
                         "What is the opposite of hot?", "Where does the sun rise?"):
            asked = await s.ask(question)
            await s.reply_end(asked)
            latency = server_messages(s.human.messages, LATENCY_MESSAGE_TYPE, asked)
            assert latency, "no bot-latency message"
            waits.append(latency[0]["user_turn_ms"])
            breakdowns.append(latency[0])
        assert max(waits) < FINISHED_TURN_MAX_MS, f"turn waits (ms): {waits}"
        # Each turn's breakdown runs from the end of its question, not from the call's start.
        totals = [(b["measured_from"], b["total_ms"]) for b in breakdowns]
        assert all(f == "user_silence" and w <= t < TURN_TOTAL_MAX_MS
                   for (f, t), w in zip(totals, waits, strict=True)), totals
        # Whisper ran while the VAD waited out its stop time: the transcripts came from early
        # runs (one question may have been cut by a pause the VAD heard inside it).
        early = latency[-1]["early_transcripts"]
        assert early["used"] >= len(waits) - 1, early


async def test_a_reply_in_the_wrong_language_is_never_spoken(session):
    # A translator's system prompt stands in for a drifting model: the default model answers
    # English questions in English even when told in French to reply in French.
    async with session(BOT_SYSTEM_PROMPT="You are a translator. Reply only with the French "
                                         "translation of what the user says, nothing else.") as s:
        asked = await s.ask("What is the capital of Italy?")
        await s.reply_end(asked)
        said = " ".join(s.said(asked))
        assert said, "nothing was spoken"
        assert off_track(said) != LANGUAGE, said
        assert "reply not spoken (language)" in s.bot.log()
        notice = " ".join(words_of(DEFAULT_OFF_TRACK_NOTICE))  # as `said` reads words
        assert "rome" in said or said == notice, said
