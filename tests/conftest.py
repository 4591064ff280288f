"""Session fixtures: the real local servers on free loopback ports, tokens, models.

livekit-server and Ollama are the real binaries (found or built by `stack`), started once per
test run and stopped by pid at the end. Tests that need them are marked integration/e2e.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from livekit import api

from avatar_core.tokens import AGENT_KIND, STANDARD_KIND, join_token, room_grants
from records.options import sqlite_url
from stack import binaries, models, services
from stack.settings import DEV_API_KEY, DEV_API_SECRET, StackSettings

ROOT = Path(__file__).resolve().parent.parent
# Fixtures `postgres` (a real PostgreSQL server) and `records_url` (SQLite and PostgreSQL).
pytest_plugins = ["tests.support.postgres"]


@dataclass(frozen=True)
class LiveKitInfo:
    url: str
    http_url: str
    api_key: str
    api_secret: str
    webhook_port: int
    server: services.ManagedServer


@dataclass(frozen=True)
class OllamaInfo:
    url: str
    model: str
    server: services.ManagedServer


@pytest.fixture(scope="session")
def stack_settings() -> StackSettings:
    return StackSettings.from_env()


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def livekit(stack_settings, logs_dir):
    """A real livekit-server on free loopback ports; webhooks go to 127.0.0.1:webhook_port."""
    binary = binaries.livekit_server(stack_settings.cache)
    port, tcp_port, udp_port = services.free_port(), services.free_port(), services.free_udp_port()
    webhook_port = services.free_port()
    server = services.livekit_server(
        binary, port=port, tcp_port=tcp_port, udp_port=udp_port, api_key=DEV_API_KEY,
        api_secret=DEV_API_SECRET, log_path=logs_dir / "livekit.log",
        webhook_urls=[f"http://127.0.0.1:{webhook_port}/api/livekit/webhook"]).start()
    try:
        yield LiveKitInfo(url=f"ws://127.0.0.1:{port}", http_url=f"http://127.0.0.1:{port}",
                          api_key=DEV_API_KEY, api_secret=DEV_API_SECRET, webhook_port=webhook_port,
                          server=server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ollama(stack_settings, logs_dir):
    """A real Ollama on a free loopback port, serving the offline model from the cache."""
    binary = binaries.ollama(stack_settings.cache)
    port = services.free_port()
    server = services.ollama_server(binary, port=port, models_dir=stack_settings.cache / "ollama",
                                    log_path=logs_dir / "ollama.log").start()
    url = f"http://127.0.0.1:{port}"
    try:
        models.ensure_ollama_model(ollama_bin=binary, url=url, name=stack_settings.ollama_model,
                                   cache=stack_settings.cache)
        yield OllamaInfo(url=url, model=stack_settings.ollama_model, server=server)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def whisper_model(stack_settings) -> str:
    """The faster-whisper model directory (offline tiny.en unless WHISPER_MODEL says otherwise)."""
    return models.whisper_model(stack_settings.whisper_model, stack_settings.cache)


@pytest.fixture(scope="module")
async def admin(livekit):
    """LiveKit's server API (rooms, participants, dispatches) on the test server."""
    async with api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret) as lkapi:
        yield lkapi


@pytest.fixture(scope="session")
def stack_env(livekit, ollama, whisper_model, tmp_path_factory) -> dict[str, str]:
    """The environment a bot or worker process needs to use the test servers and models. Its
    conversation records go to the session's own SQLite file, not the user's cache: there a
    test's room left open would be resumed by the next run's bot (context back, no greeting)."""
    return {
        "LIVEKIT_URL": livekit.url,
        "LIVEKIT_API_KEY": livekit.api_key,
        "LIVEKIT_API_SECRET": livekit.api_secret,
        "OLLAMA_URL": ollama.url,
        "OLLAMA_MODEL": ollama.model,
        "WHISPER_MODEL": whisper_model,
        "DATABASE_URL": sqlite_url(tmp_path_factory.mktemp("records")),
    }


@pytest.fixture(scope="session")
def make_token(livekit):
    """Mint a join token for (room, identity) on the test server; grant fields can be overridden."""

    def mint(room: str, identity: str, *, name: str | None = None, agent: bool = False,
             ttl: timedelta = timedelta(minutes=10), **grant_overrides) -> str:
        grants = replace(room_grants(room), agent=agent, **grant_overrides)
        return join_token(api_key=livekit.api_key, api_secret=livekit.api_secret, room=room,
                          identity=identity, name=name or identity,
                          kind=AGENT_KIND if agent else STANDARD_KIND, ttl=ttl, grants=grants)

    return mint


def pytest_collection_modifyitems(config, items):
    """Tier markers from the folder, so `-m "not e2e"` and friends work."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in ("integration", "e2e"):
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


os.environ.setdefault("LOGURU_LEVEL", "INFO")
