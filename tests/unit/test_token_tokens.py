"""Join tokens minted by the token server, decoded with livekit-api's TokenVerifier."""

from __future__ import annotations

import jwt
import pytest
from livekit.api import TokenVerifier

from token_server.tokens import SUPERVISOR_ATTRIBUTE, TokenMinter

KEY, SECRET = "testkey", "testsecret-that-is-long-enough-for-hs256"


@pytest.fixture
def minter():
    return TokenMinter(api_key=KEY, api_secret=SECRET, ttl_s=600, bot_identity="avatar-bot")


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
    raw = jwt.decode(minter.user_token(room="r", identity="a", name="a"), options={"verify_signature": False})
    assert raw["exp"] - raw["nbf"] == 600
    assert raw["iss"] == KEY


def test_bot_token_is_an_agent_with_the_fixed_identity_and_its_supervisor(minter):
    claims = TokenVerifier(KEY, SECRET).verify(minter.bot_token(room="lobby", supervisor_id="inst1"))
    assert claims.identity == "avatar-bot"
    assert claims.kind == "agent"
    assert claims.attributes == {SUPERVISOR_ATTRIBUTE: "inst1"}
    assert claims.video.room == "lobby" and claims.video.room_join
    assert not claims.video.room_admin and not claims.video.room_create and not claims.video.hidden


def test_a_token_signed_with_another_secret_is_rejected(minter):
    token = minter.user_token(room="r", identity="a", name="a")
    with pytest.raises(jwt.InvalidSignatureError):
        TokenVerifier(KEY, "another-secret-that-is-long-enough-too").verify(token)
