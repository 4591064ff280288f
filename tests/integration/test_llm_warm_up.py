"""The LLM warm-up (bot/llm_warm_up.py, run by a worker's prewarmed process and by
`python -m bot --room`) leaves the bot's system prompt in the real Ollama's prompt cache, so a
room's first question is read on top of it; run after a trim of the context's history, it leaves
the history kept there, so the next question is read on top of that."""

from __future__ import annotations

import dataclasses
import uuid

from avatar_core.ollama import ollama_api
from avatar_core.settings import load_settings
from bot.llm_warm_up import warm_up_llm
from bot.settings import BotSettings

OTHER_PROMPT = "You are a pirate who talks only about ships and the sea, all day long."
QUESTION = "What is two plus two?"


# A meeting's history as the bot keeps it after a trim (bot.pipeline.trimmed_history).
KEPT_HISTORY = [
    {"role": "user", "content": "Carol: Ava, how many days are in a week?"},
    {"role": "assistant", "content": "There are seven days in a week, Carol."},
    {"role": "system", "content": "Dana joined the call."},
    {"role": "user", "content": "Bob: Hey Ava, tell me a long story about a dragon."},
    {"role": "assistant", "content": "Once upon a time, a small green dragon lived in a cave "
     "by the sea. Every morning he flew over the village and the children waved at him."},
]


def _settings(ollama) -> BotSettings:
    """The bot's settings on the test's Ollama, its system prompt made new to this test: Ollama
    keeps a prompt cache per parallel slot, so the default prompt an earlier test sent may still
    be cached in another slot, and the "cold" read would be warm (0.094 s cold, 0.095 s warm).
    The new part comes first, as the cache is reused by common prefix."""
    settings = BotSettings.from_tree(load_settings())
    return dataclasses.replace(settings, ollama_url=ollama.url, ollama_model=ollama.model,
                               system_prompt=f"Call {uuid.uuid4().hex}. {settings.system_prompt}")


def _prompt_read_s(ollama, system: str, history: list[dict] | None = None) -> float:
    """Seconds Ollama spent reading a request's prompt (what its cache did not hold)."""
    answer = ollama_api(ollama.url, "/api/chat", {
        "model": ollama.model, "stream": False, "options": {"num_predict": 1},
        "messages": [{"role": "system", "content": system}, *(history or []),
                     {"role": "user", "content": QUESTION}],
    }, timeout=120)
    return answer["prompt_eval_duration"] / 1e9


def test_the_first_question_after_the_warm_up_finds_the_system_prompt_read(ollama):
    settings = _settings(ollama)
    _prompt_read_s(ollama, OTHER_PROMPT)  # another conversation in the cache
    cold = _prompt_read_s(ollama, settings.system_prompt)
    _prompt_read_s(ollama, OTHER_PROMPT)
    warm_up_llm(settings)
    warm = _prompt_read_s(ollama, settings.system_prompt)
    # Measured 0.40 s cold and 0.10 s warm on a quiet 2-core machine (67 prompt tokens).
    assert warm < 0.6 * cold, (cold, warm)


def test_the_next_question_after_a_trim_finds_the_kept_history_read(ollama):
    settings = _settings(ollama)
    _prompt_read_s(ollama, OTHER_PROMPT)
    cold = _prompt_read_s(ollama, settings.system_prompt, KEPT_HISTORY)
    _prompt_read_s(ollama, OTHER_PROMPT)
    warm_up_llm(settings, KEPT_HISTORY)
    warm = _prompt_read_s(ollama, settings.system_prompt, KEPT_HISTORY)
    # Measured 0.58 s cold and 0.06 s warm on a quiet 2-core machine (0.40 s when only the
    # system prompt was warmed).
    assert warm < 0.6 * cold, (cold, warm)
