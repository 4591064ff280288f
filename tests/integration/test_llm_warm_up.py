"""The LLM warm-up (bot/llm_warm_up.py, run by a worker's prewarmed process and by
`python -m bot --room`) leaves the bot's system prompt in the real Ollama's prompt cache, so a
room's first question is read on top of it."""

from __future__ import annotations

import dataclasses

from avatar_core.ollama import ollama_api
from avatar_core.settings import load_settings
from bot.llm_warm_up import warm_up_llm
from bot.settings import BotSettings

OTHER_PROMPT = "You are a pirate who talks only about ships and the sea, all day long."
QUESTION = "What is two plus two?"


def _prompt_read_s(ollama, system: str) -> float:
    """Seconds Ollama spent reading a request's prompt (what its cache did not hold)."""
    answer = ollama_api(ollama.url, "/api/chat", {
        "model": ollama.model, "stream": False, "options": {"num_predict": 1},
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": QUESTION}],
    }, timeout=120)
    return answer["prompt_eval_duration"] / 1e9


def test_the_first_question_after_the_warm_up_finds_the_system_prompt_read(ollama):
    settings = dataclasses.replace(BotSettings.from_tree(load_settings()),
                                   ollama_url=ollama.url, ollama_model=ollama.model)
    _prompt_read_s(ollama, OTHER_PROMPT)  # another conversation in the cache
    cold = _prompt_read_s(ollama, settings.system_prompt)
    _prompt_read_s(ollama, OTHER_PROMPT)
    warm_up_llm(settings)
    warm = _prompt_read_s(ollama, settings.system_prompt)
    # Measured 0.40 s cold and 0.10 s warm on a quiet 2-core machine (67 prompt tokens).
    assert warm < 0.6 * cold, (cold, warm)
