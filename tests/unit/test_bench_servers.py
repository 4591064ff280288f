"""The bench helper's bot environment and join tokens (no servers started)."""

from __future__ import annotations

from pathlib import Path

from livekit import api

from bench.servers import BENCH_IDENTITY, BenchServers
from stack.settings import DEV_API_KEY, DEV_API_SECRET, StackSettings


def servers() -> BenchServers:
    return BenchServers(
        settings=StackSettings.from_env(),
        logs=Path("/nonexistent"),
        url="ws://127.0.0.1:7881",
        ollama_url="http://127.0.0.1:11500",
        livekit=None,  # type: ignore[arg-type]
        ollama=None,  # type: ignore[arg-type]
    )


def test_bot_env_points_at_these_servers_and_takes_extras():
    s = servers()
    env = s.bot_env(BOT_GREETING="", OLLAMA_MODEL="other")
    assert env["LIVEKIT_URL"] == "ws://127.0.0.1:7881"
    assert env["OLLAMA_URL"] == "http://127.0.0.1:11500"
    assert (env["LIVEKIT_API_KEY"], env["LIVEKIT_API_SECRET"]) == (DEV_API_KEY, DEV_API_SECRET)
    assert Path(env["WHISPER_MODEL"]).exists()
    assert env["BOT_GREETING"] == ""
    assert env["OLLAMA_MODEL"] == "other"  # an extra overrides the default
    assert s.bot_env()["OLLAMA_MODEL"] == s.settings.ollama_model


def test_token_joins_only_its_room_as_the_given_person():
    s = servers()
    claims = api.TokenVerifier(DEV_API_KEY, DEV_API_SECRET).verify(s.token("room-a"))
    assert claims.identity == BENCH_IDENTITY
    assert claims.video.room_join and claims.video.room == "room-a"
    named = api.TokenVerifier(DEV_API_KEY, DEV_API_SECRET).verify(
        s.token("room-b", "alice", name="Alice")
    )
    assert (named.identity, named.name, named.video.room) == ("alice", "Alice", "room-b")
