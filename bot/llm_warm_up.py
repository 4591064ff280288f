"""Has Ollama read the bot's prompt before a question needs it: the system prompt before a room's
first question, and the history kept after each trim of the context."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from loguru import logger

from avatar_core.ollama import ollama_api
from bot.settings import BotSettings

# Ollama reads the system prompt in well under a second on a quiet machine.
LLM_WARM_UP_TIMEOUT_S = 20.0


def warm_up_llm(settings: BotSettings, history: Sequence[Mapping[str, str]] = ()) -> None:
    """Have Ollama read the system prompt and `history` once (one token of answer): it keeps the
    evaluated prompt and reuses it for every request that starts with it, so the next question
    is read on top of it (the system prompt is 0.6 s of a room's first answer on a quiet 2-core
    machine; after a trim of the history, reading the messages kept took ~1 s of every third
    answer of a meeting). `history` is the context's messages as the LLM service sends them
    after its system instruction. An unreachable Ollama is only logged here; rooms say so when
    they need it."""
    body = {"model": settings.ollama_model, "max_tokens": 1, "messages": [
        {"role": "system", "content": settings.system_prompt},
        *history,
        {"role": "user", "content": "Hello"},
    ]}
    try:
        ollama_api(settings.ollama_openai_url, "/chat/completions", body,
                   timeout=LLM_WARM_UP_TIMEOUT_S)
    except (OSError, ValueError) as e:  # unreachable, an HTTP error, or not JSON
        logger.warning(f"could not warm up the LLM at {settings.ollama_url}: {e}")
