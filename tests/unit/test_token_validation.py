"""Validation of token-server inputs: rooms, identities (reserved ones refused), names, chat."""

from __future__ import annotations

import pytest

from token_server.validation import (
    InvalidInput,
    validate_display_name,
    validate_history,
    validate_identity,
    validate_message,
    validate_room,
)

BOT = "avatar-bot"
PREFIXES = ("agent-", "bot-", "avatar-")


def identity(value):
    return validate_identity(value, bot_identity=BOT, reserved_prefixes=PREFIXES)


@pytest.mark.parametrize("room", ["a", "Room_1", "team.sync-2", "x" * 64, "0"])
def test_valid_rooms_pass_unchanged(room):
    assert validate_room(room) == room


@pytest.mark.parametrize(
    ("room", "error"),
    [
        (None, "missing_field"),
        (5, "invalid_type"),
        (["r"], "invalid_type"),
        ("", "invalid_room"),
        ("x" * 65, "invalid_room"),
        ("has space", "invalid_room"),
        ("-starts-with-dash", "invalid_room"),
        (".hidden", "invalid_room"),
        ("a/b", "invalid_room"),
        ("ünï", "invalid_room"),
        ("room\n", "invalid_room"),
    ],
)
def test_invalid_rooms_are_refused_with_a_reason(room, error):
    with pytest.raises(InvalidInput) as caught:
        validate_room(room)
    assert caught.value.error == error
    assert "room" in caught.value.detail


@pytest.mark.parametrize(
    "value", ["alice", "user-1", "Bob.Smith_2", "robot", "agentsmith", "avatarfan"]
)
def test_ordinary_identities_pass(value):
    assert identity(value) == value


@pytest.mark.parametrize(
    "value", [BOT, "AVATAR-BOT", "agent-x", "Agent-Smith", "bot-1", "avatar-2"]
)
def test_bot_and_reserved_agent_identities_are_refused(value):
    with pytest.raises(InvalidInput) as caught:
        identity(value)
    assert caught.value.error == "reserved_identity"


def test_a_custom_bot_identity_outside_the_prefixes_is_still_reserved():
    with pytest.raises(InvalidInput):
        validate_identity("ava", bot_identity="ava", reserved_prefixes=())


def test_display_name_defaults_and_limits():
    assert validate_display_name(None, default="alice") == "alice"
    assert validate_display_name("  ", default="alice") == "alice"
    assert validate_display_name("Alice Ünal", default="x") == "Alice Ünal"
    for bad in ("n" * 65, "bell\x07", 7):
        with pytest.raises(InvalidInput):
            validate_display_name(bad, default="x")


def test_chat_message_and_history():
    assert validate_message("hi there") == "hi there"
    for bad in (None, "", "   ", "x" * 4001, 3, "nul\x00"):
        with pytest.raises(InvalidInput):
            validate_message(bad)
    assert validate_history(None) == []
    turns = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello", "extra": 1},
    ]
    assert validate_history(turns) == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
    ]
    for bad in (
        {},
        "hi",
        [1],
        [{"role": "system", "content": "x"}],
        [{"role": "user"}],
        [{"role": ["user"], "content": "x"}],
        [{"role": "user", "content": "x"}] * 41,
    ):
        with pytest.raises(InvalidInput) as caught:
            validate_history(bad)
        assert caught.value.error in ("invalid_history", "invalid_type", "missing_field")
