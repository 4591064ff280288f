"""BotSettings.from_env and the bot's join token."""

from __future__ import annotations

import os

import pytest
from livekit import api

from avatar_core.tokens import AGENT_KIND
from bot.settings import DEFAULT_GREETING, DEFAULT_IDENTITY, BotSettings
from bot.token import bot_token

BOT_ENV = (
    "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "OLLAMA_URL", "OLLAMA_MODEL",
    "WHISPER_MODEL", "BOT_TOKEN", "BOT_IDENTITY", "BOT_NAME", "BOT_GREETING",
    "BOT_LLM_TEMPERATURE", "BOT_LLM_SEED", "BOT_AGENT_IDENTITY_PREFIXES", "BOT_NAME_ALIASES",
    "BOT_FOLLOW_UP_SECS", "BOT_DISCONNECT_POLICY",
)


@pytest.fixture
def clean_env(monkeypatch):
    for name in BOT_ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_point_at_the_local_stack(clean_env):
    s = BotSettings.from_env()
    assert s.livekit_url == "ws://127.0.0.1:7880"
    assert s.ollama_openai_url == "http://127.0.0.1:11434/v1"
    assert s.identity == DEFAULT_IDENTITY
    assert s.greeting == DEFAULT_GREETING
    assert s.token is None
    # The packaged tiny.en model directory is the offline default.
    assert os.path.isfile(os.path.join(s.whisper_model, "model.bin"))


def test_environment_overrides(clean_env):
    clean_env.setenv("OLLAMA_URL", "http://127.0.0.1:9999/")
    clean_env.setenv("BOT_IDENTITY", "agent-7")
    clean_env.setenv("BOT_GREETING", "")
    clean_env.setenv("BOT_LLM_TEMPERATURE", "0")
    clean_env.setenv("BOT_LLM_SEED", "42")
    clean_env.setenv("BOT_AGENT_IDENTITY_PREFIXES", "robot-, ai-")
    s = BotSettings.from_env()
    assert s.ollama_openai_url == "http://127.0.0.1:9999/v1"
    assert s.identity == "agent-7"
    assert s.greeting == ""
    assert (s.llm_temperature, s.llm_seed) == (0.0, 42)
    assert s.agent_identity_prefixes == ("robot-", "ai-")


def test_meeting_settings(clean_env):
    s = BotSettings.from_env()
    assert s.names == ("Ava", "Eva", "Ava's", "Hey Ava")
    assert (s.follow_up_secs, s.disconnect_policy) == (8.0, "owner")
    clean_env.setenv("BOT_NAME", "Max")
    clean_env.setenv("BOT_NAME_ALIASES", "Maxi, Hey Max")
    clean_env.setenv("BOT_DISCONNECT_POLICY", "Never")
    s = BotSettings.from_env()
    assert s.names == ("Max", "Maxi", "Hey Max") and s.disconnect_policy == "never"
    clean_env.setenv("BOT_DISCONNECT_POLICY", "everyone")
    with pytest.raises(ValueError, match="BOT_DISCONNECT_POLICY must be one of"):
        BotSettings.from_env()


def test_the_call_reply_is_read_from_the_environment_and_checked(clean_env):
    assert BotSettings.from_env().call_reply.format(name="Dana") == "Yes, Dana?"
    clean_env.setenv("BOT_CALL_REPLY", "Hm, {name}?")
    assert BotSettings.from_env().call_reply == "Hm, {name}?"
    clean_env.setenv("BOT_CALL_REPLY", "Yes, {who}?")
    with pytest.raises(ValueError, match="BOT_CALL_REPLY=.* may use only {name}"):
        BotSettings.from_env()


def test_bad_number_is_a_clear_error(clean_env):
    clean_env.setenv("BOT_LLM_SEED", "seven")
    with pytest.raises(ValueError, match="BOT_LLM_SEED=.seven.: Input should be a valid integer"):
        BotSettings.from_env()


def test_minted_token_joins_the_room_as_an_agent(clean_env):
    clean_env.setenv("LIVEKIT_API_KEY", "k1")
    clean_env.setenv("LIVEKIT_API_SECRET", "s" * 32)
    s = BotSettings.from_env()
    claims = api.TokenVerifier("k1", "s" * 32).verify(bot_token(s, "room-a"))
    assert claims.identity == s.identity
    assert claims.name == s.name
    assert claims.kind == AGENT_KIND
    assert claims.video.room == "room-a" and claims.video.room_join


def test_given_token_is_used_as_is(clean_env):
    clean_env.setenv("BOT_TOKEN", "given.jwt.token")
    assert bot_token(BotSettings.from_env(), "any") == "given.jwt.token"


def test_voice_choice_follows_gpt_sovits_url(monkeypatch):
    from bot.pipeline import build_tts
    from processors.tts.embedded import EmbeddedTTSService
    from processors.tts.gpt_sovits import GPTSoVITSTTSService

    monkeypatch.delenv("GPT_SOVITS_URL", raising=False)
    assert isinstance(build_tts(BotSettings.from_env()), EmbeddedTTSService)
    monkeypatch.setenv("GPT_SOVITS_URL", "http://127.0.0.1:9880")
    assert isinstance(build_tts(BotSettings.from_env()), GPTSoVITSTTSService)
