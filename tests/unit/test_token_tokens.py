"""Join tokens minted by the token server, decoded with livekit-api's TokenVerifier."""

from __future__ import annotations

import jwt
import pytest
from livekit.api import TokenVerifier

from bot.settings import BotSettings
from bot.token import bot_token
from token_server.tokens import TokenMinter

KEY, SECRET = "testkey", "testsecret-that-is-long-enough-for-hs256"


@pytest.fixture
def minter():
    return TokenMinter(api_key=KEY, api_secret=SECRET, ttl_s=600, agent_name="avatar")


def test_user_token_grants_only_join_publish_subscribe_data_in_one_room(minter):
    token = minter.user_token(room="lobby", identity="alice", name="Alice")
    claims = TokenVerifier(KEY, SECRET).verify(token)
    assert claims.identity == "alice"
    assert claims.name == "Alice"
    assert claims.kind == "standard"
    video = claims.video
    assert video.room_join is True and video.room == "lobby"
    assert video.can_publish and video.can_subscribe and video.can_publish_data
    for right in (
        "room_admin",
        "room_create",
        "room_list",
        "room_record",
        "recorder",
        "hidden",
        "agent",
        "ingress_admin",
        "can_update_own_metadata",
        "destination_room",
    ):
        assert not getattr(video, right), right
    assert not claims.attributes


def test_user_token_lives_for_the_configured_ttl(minter):
    raw = jwt.decode(
        minter.user_token(room="r", identity="a", name="a"), options={"verify_signature": False}
    )
    assert raw["exp"] - raw["nbf"] == 600
    assert raw["iss"] == KEY


def test_user_token_asks_livekit_to_dispatch_the_avatar_agent_and_nothing_else(minter):
    claims = TokenVerifier(KEY, SECRET).verify(
        minter.user_token(room="lobby", identity="a", name="a")
    )
    agents = claims.room_config.agents
    assert [(a.agent_name, a.metadata) for a in agents] == [("avatar", "")]
    # Only the dispatch: no room limits or timeouts of the person's choosing.
    assert claims.room_config.ListFields() == [
        (type(claims.room_config).DESCRIPTOR.fields_by_name["agents"], agents)
    ]


def test_a_token_signed_with_another_secret_is_rejected(minter):
    token = minter.user_token(room="r", identity="a", name="a")
    with pytest.raises(jwt.InvalidSignatureError):
        TokenVerifier(KEY, "another-secret-that-is-long-enough-too").verify(token)


def test_the_bots_own_token_has_exactly_a_persons_grants(minter, monkeypatch):
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    monkeypatch.setenv("LIVEKIT_API_KEY", KEY)
    monkeypatch.setenv("LIVEKIT_API_SECRET", SECRET)
    verify = TokenVerifier(KEY, SECRET).verify
    bot = verify(bot_token(BotSettings.from_env(), "lobby"))
    person = verify(minter.user_token(room="lobby", identity="alice", name="Alice"))
    assert bot.video == person.video
    assert (bot.kind, person.kind) == ("agent", "standard")
