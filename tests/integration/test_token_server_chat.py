"""Token server with every real dependency: /health is green, /api/chat streams a persona reply
from the real Ollama model, and /health turns red with a reason when the model is missing."""

from __future__ import annotations

import json
from contextlib import asynccontextmanager

from aiohttp.test_utils import TestClient, TestServer

from stack.services import free_port
from token_server.app import create_app
from token_server.settings import TokenServerSettings

API_KEY = "integration-api-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@asynccontextmanager
async def serving(livekit, ollama, stack_settings, **overrides):
    settings = TokenServerSettings(
        **(
            {
                "livekit_url": livekit.url,
                "livekit_public_url": livekit.url,
                "livekit_api_key": livekit.api_key,
                "livekit_api_secret": livekit.api_secret,
                "api_key": API_KEY,
                "ollama_url": ollama.url,
                "ollama_model": ollama.model,
                "whisper_model": stack_settings.whisper_model,
                "cache": stack_settings.cache,
                "system_prompt": "You are Ava. Always answer in one short sentence.",
            }
            | overrides
        )
    )
    async with TestClient(
        TestServer(create_app(settings), host="127.0.0.1", port=free_port())
    ) as client:
        yield client


def events(text: str) -> list[dict]:
    return [
        json.loads(line.removeprefix("data: "))
        for line in text.splitlines()
        if line.startswith("data: ")
    ]


async def test_health_is_green_with_every_dependency_up(livekit, ollama, stack_settings):
    async with serving(livekit, ollama, stack_settings) as client:
        response = await client.get("/health", headers=AUTH)
        body = await response.json()
        assert response.status == 200, body
        assert (
            body["ok"] and body["livekit"]["ok"] and body["ollama"]["ok"] and body["whisper"]["ok"]
        )
        assert body["model"] == {"ok": True, "name": ollama.model}


async def test_health_names_a_missing_model(livekit, ollama, stack_settings):
    async with serving(livekit, ollama, stack_settings, ollama_model="no-such-model:1b") as client:
        response = await client.get("/health", headers=AUTH)
        body = await response.json()
        assert response.status == 503
        assert body["ollama"]["ok"] and not body["model"]["ok"]
        assert "no-such-model:1b" in body["model"]["detail"]
        chat = await client.post("/api/chat", json={"message": "hi"}, headers=AUTH)
        assert chat.status == 503 and (await chat.json())["error"] == "llm_unavailable"


async def test_chat_streams_a_reply_from_the_persona(livekit, ollama, stack_settings):
    # A generous time cap: this checks the stream, not the cap, on a possibly loaded machine.
    async with serving(livekit, ollama, stack_settings, chat_max_s=300.0) as client:
        response = await client.post(
            "/api/chat",
            headers=AUTH,
            json={
                "room": "lobby",
                "message": "What is your name?",
                "history": [
                    {"role": "user", "content": "Hello"},
                    {"role": "assistant", "content": "Hi there!"},
                ],
            },
        )
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        received = events(await response.text())
        deltas = [e["delta"] for e in received if "delta" in e]
        assert len(deltas) >= 2, received  # streamed in pieces, not one block
        assert received[-1]["done"] is True
        assert received[-1]["text"] == "".join(deltas) and received[-1]["text"].strip()
