"""Has Ollama read the bot's system prompt before the first question of a room."""

from __future__ import annotations

from loguru import logger

from avatar_core.ollama import ollama_api
from bot.settings import BotSettings

# Ollama reads the system prompt in well under a second on a quiet machine.
LLM_WARM_UP_TIMEOUT_S = 20.0


def warm_up_llm(settings: BotSettings) -> None:
    """Have Ollama read the system prompt once (one token of answer): it keeps the evaluated
    prompt and reuses it for every conversation that starts with it, so a room's first question
    does not wait for the system prompt (0.6 s of the first answer on a quiet 2-core machine).
    An unreachable Ollama is only logged here; rooms say so when they need it."""
    body = {"model": settings.ollama_model, "max_tokens": 1, "messages": [
        {"role": "system", "content": settings.system_prompt},
        {"role": "user", "content": "Hello"},
    ]}
    try:
        ollama_api(settings.ollama_openai_url, "/chat/completions", body,
                   timeout=LLM_WARM_UP_TIMEOUT_S)
    except (OSError, ValueError) as e:  # unreachable, an HTTP error, or not JSON
        logger.warning(f"could not warm up the LLM at {settings.ollama_url}: {e}")
