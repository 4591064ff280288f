"""TokenServerSettings.from_env: shared stack/bot names, the bot command, limits, bad values."""

from __future__ import annotations

import sys

import pytest

from bot.settings import DEFAULT_IDENTITY
from token_server.settings import TokenServerSettings

OWN = (
    "AVATAR_API_KEY",
    "AVATAR_TOKEN_TTL_S",
    "AVATAR_BOT_COMMAND",
    "AVATAR_MAX_BOTS",
    "AVATAR_BOT_GRACE_S",
    "AVATAR_BOT_BACKOFF_S",
    "AVATAR_BOT_BACKOFF_MAX_S",
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
    assert settings.bot_command == (sys.executable, "-m", "bot")


def test_values_from_the_environment(monkeypatch):
    monkeypatch.setenv("AVATAR_API_KEY", "k1")
    monkeypatch.setenv("AVATAR_BOT_COMMAND", "python3 'my bot.py' --flag")
    monkeypatch.setenv("AVATAR_MAX_BOTS", "7")
    monkeypatch.setenv("AVATAR_BOT_GRACE_S", "2.5")
    monkeypatch.setenv("LIVEKIT_URL", "ws://10.0.0.5:7880")
    monkeypatch.setenv("LIVEKIT_PUBLIC_URL", "wss://avatar.example.org")
    monkeypatch.setenv("BOT_AGENT_IDENTITY_PREFIXES", "Agent-, svc-")
    monkeypatch.setenv("BOT_SYSTEM_PROMPT", "You are a pirate.")
    monkeypatch.setenv("OLLAMA_MODEL", "llama3.2:3b")
    settings = TokenServerSettings.from_env()
    assert settings.api_key == "k1"
    assert settings.bot_command == ("python3", "my bot.py", "--flag")
    assert settings.max_bots == 7 and settings.bot_grace_s == 2.5
    assert settings.livekit_url == "ws://10.0.0.5:7880"
    assert settings.livekit_public_url == "wss://avatar.example.org"
    assert settings.reserved_prefixes == ("agent-", "svc-")
    assert settings.system_prompt == "You are a pirate."
    assert settings.ollama_model == "llama3.2:3b"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AVATAR_MAX_BOTS", "many"),
        ("AVATAR_MAX_BOTS", "-1"),
        ("AVATAR_TOKEN_TTL_S", "5"),
        ("AVATAR_BOT_GRACE_S", "soon"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        TokenServerSettings.from_env()
