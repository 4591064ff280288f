"""TokenServerSettings.from_env: shared stack/bot names, the avatar's agent name, bad values."""

from __future__ import annotations

import pytest

from bot.settings import DEFAULT_AGENT_NAME, DEFAULT_IDENTITY
from token_server.settings import TokenServerSettings

OWN = (
    "AVATAR_API_KEY",
    "AVATAR_TOKEN_TTL_S",
    "BOT_AGENT_NAME",
    "AVATAR_ROOM_CHECK_S",
    "AVATAR_CLIENT_DIST",
    "AVATAR_LOG_LEVEL",
    "TOKEN_SERVER_HOST",
    "TOKEN_SERVER_PORT",
    "LIVEKIT_URL",
    "LIVEKIT_PUBLIC_URL",
    "BOT_IDENTITY",
    "BOT_AGENT_IDENTITY_PREFIXES",
    "BOT_SYSTEM_PROMPT",
    "OLLAMA_URL",
    "OLLAMA_MODEL",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in OWN:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_local_and_shared_with_the_bot():
    settings = TokenServerSettings.from_env()
    assert settings.host == "127.0.0.1" and settings.port == 8080
    assert settings.livekit_url == settings.livekit_public_url == "ws://127.0.0.1:7880"
    assert settings.api_key is None
    assert settings.bot_identity == DEFAULT_IDENTITY
    assert settings.agent_name == DEFAULT_AGENT_NAME == "avatar"


def test_values_from_the_environment(monkeypatch):
    monkeypatch.setenv("AVATAR_API_KEY", "k1")
    monkeypatch.setenv("BOT_AGENT_NAME", "avatar-staging")
    monkeypatch.setenv("AVATAR_ROOM_CHECK_S", "0.5")
    monkeypatch.setenv("LIVEKIT_URL", "ws://10.0.0.5:7880")
    monkeypatch.setenv("LIVEKIT_PUBLIC_URL", "wss://avatar.example.org")
    monkeypatch.setenv("BOT_AGENT_IDENTITY_PREFIXES", "Agent-, svc-")
    monkeypatch.setenv("BOT_SYSTEM_PROMPT", "You are a pirate.")
    monkeypatch.setenv("OLLAMA_MODEL", "llama3.2:3b")
    settings = TokenServerSettings.from_env()
    assert settings.api_key == "k1"
    assert settings.agent_name == "avatar-staging" and settings.room_check_s == 0.5
    assert settings.livekit_url == "ws://10.0.0.5:7880"
    assert settings.livekit_public_url == "wss://avatar.example.org"
    # As given: the prefixes are compared in any case (avatar_core.identity.agent_prefix).
    assert settings.reserved_prefixes == ("Agent-", "svc-")
    assert settings.system_prompt == "You are a pirate."
    assert settings.ollama_model == "llama3.2:3b"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AVATAR_ROOM_CHECK_S", "often"),
        ("AVATAR_ROOM_CHECK_S", "0"),
        ("AVATAR_TOKEN_TTL_S", "5"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        TokenServerSettings.from_env()
