"""Text-only turns against the avatar's persona, streamed from Ollama's OpenAI-compatible API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai

# Ollama ignores the key, the OpenAI client requires one.
OLLAMA_API_KEY = "ollama"
REQUEST_TIMEOUT_S = 60.0


class ChatUnavailable(RuntimeError):
    """Ollama could not be reached or has no such model."""


class PersonaChat:
    """Streams one reply (at most `max_tokens`) from the configured Ollama model with the bot's
    system prompt."""

    def __init__(self, *, ollama_url: str, model: str, system_prompt: str, max_tokens: int) -> None:
        self._client = openai.AsyncOpenAI(
            base_url=f"{ollama_url}/v1",
            api_key=OLLAMA_API_KEY,
            timeout=REQUEST_TIMEOUT_S,
            max_retries=0,
        )
        self.model = model
        self._system_prompt = system_prompt
        self._max_tokens = max_tokens

    async def aclose(self) -> None:
        await self._client.close()

    async def reply(
        self, *, message: str, history: list[dict[str, str]], user: str | None
    ) -> AsyncIterator[str]:
        """Open the stream (raises ChatUnavailable before any text) and return its text deltas."""
        messages = [
            {"role": "system", "content": self._system_prompt},
            *history,
            {"role": "user", "content": message},
        ]
        try:
            # plain dict messages in OpenAI's chat shape
            stream = await self._client.chat.completions.create(  # type: ignore[call-overload]
                model=self.model,
                messages=messages,
                stream=True,
                max_tokens=self._max_tokens,
                **({"user": user} if user else {}),
            )
        except openai.APIStatusError as exc:
            raise ChatUnavailable(
                f"Ollama refused the request for model '{self.model}': {exc.message}"
            ) from exc
        except openai.APIError as exc:
            raise ChatUnavailable(f"Ollama unreachable: {exc.message}") from exc
        return self._deltas(stream)

    async def _deltas(self, stream) -> AsyncIterator[str]:
        async with stream:
            async for chunk in stream:
                for choice in chunk.choices:
                    if choice.delta.content:
                        yield choice.delta.content
