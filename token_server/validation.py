"""Validation of client-supplied fields; every rejection names the field and the reason."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from avatar_core.identity import agent_prefix, impersonates, name_problem, reserved_skeletons

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
MAX_ROOM_LENGTH = 64
MAX_IDENTITY_LENGTH = 64
MAX_DISPLAY_NAME_LENGTH = 64
MAX_MESSAGE_LENGTH = 4000
MAX_HISTORY_TURNS = 40
CHAT_ROLES = ("user", "assistant")


class InvalidInput(ValueError):
    """A client field failed validation; `error` is a stable code, `detail` says why."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


def _require_str(field: str, value: Any) -> str:
    if value is None:
        raise InvalidInput("missing_field", f"'{field}' is required")
    if not isinstance(value, str):
        raise InvalidInput(
            "invalid_type", f"'{field}' must be a string, got {type(value).__name__}"
        )
    return value


def _check_slug(field: str, value: Any, max_length: int) -> str:
    text = _require_str(field, value)
    if not 1 <= len(text) <= max_length:
        raise InvalidInput(
            f"invalid_{field}", f"'{field}' must be 1 to {max_length} characters long"
        )
    if not NAME_PATTERN.fullmatch(text):
        raise InvalidInput(
            f"invalid_{field}",
            f"'{field}' may contain only letters, digits, '_', '-' and '.', "
            "and must start with a letter or digit",
        )
    return text


def validate_room(value: Any) -> str:
    """A LiveKit room name: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 64 characters."""
    return _check_slug("room", value, MAX_ROOM_LENGTH)


def validate_identity(
    value: Any, *, bot_identity: str, reserved_prefixes: tuple[str, ...], bot_name: str = ""
) -> str:
    """A participant identity that does not look like the bot's identity or name (homoglyphs and
    separators folded) and is not under an agent prefix in any case (avatar_core.identity)."""
    identity = _check_slug("identity", value, MAX_IDENTITY_LENGTH)
    if impersonates(identity, reserved_skeletons(bot_identity, bot_name)):
        raise InvalidInput(
            "reserved_identity", f"'{identity}' looks like the avatar bot's identity or name"
        )
    if prefix := agent_prefix(identity, prefixes=reserved_prefixes):
        raise InvalidInput(
            "reserved_identity", f"identities starting with '{prefix}' are reserved for agents"
        )
    return identity


def _check_text(field: str, value: Any, max_length: int, *, error: str | None = None) -> str:
    text = _require_str(field, value)
    error = error or f"invalid_{field}"
    if len(text) > max_length:
        raise InvalidInput(error, f"'{field}' must be at most {max_length} characters long")
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\t" for ch in text):
        raise InvalidInput(error, f"'{field}' must not contain control characters")
    return text


def validate_display_name(value: Any, *, default: str, reserved: tuple[str, ...] = ()) -> str:
    """An optional display name (printable text, at most 64 characters, no invisible or
    text-direction characters or chat-template tokens, not looking like one of `reserved`);
    `default` when absent."""
    if value is None:
        return default
    name = _check_text("name", value, MAX_DISPLAY_NAME_LENGTH).strip()
    if problem := name_problem(name):
        raise InvalidInput("invalid_name", f"'name' {problem}")
    if impersonates(name, reserved_skeletons(*reserved)):
        raise InvalidInput("reserved_name", f"'name' {name!r} looks like the avatar's name")
    return name or default


def validate_message(value: Any) -> str:
    """A chat message: non-blank printable text of at most 4000 characters."""
    message = _check_text("message", value, MAX_MESSAGE_LENGTH)
    if not message.strip():
        raise InvalidInput("invalid_message", "'message' must not be blank")
    return message


def validate_history(value: Any) -> list[dict[str, str]]:
    """Earlier chat turns: a list of {role: user|assistant, content: str}, at most 40 entries."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput("invalid_type", f"'history' must be a list, got {type(value).__name__}")
    if len(value) > MAX_HISTORY_TURNS:
        raise InvalidInput(
            "invalid_history", f"'history' may hold at most {MAX_HISTORY_TURNS} turns"
        )
    turns = []
    for index, turn in enumerate(value):
        if not isinstance(turn, dict):
            raise InvalidInput(
                "invalid_history", f"history[{index}] must be an object with role and content"
            )
        role = turn.get("role")
        if role not in CHAT_ROLES:
            raise InvalidInput(
                "invalid_history", f"history[{index}].role must be one of {', '.join(CHAT_ROLES)}"
            )
        content = _check_text(
            f"history[{index}].content",
            turn.get("content"),
            MAX_MESSAGE_LENGTH,
            error="invalid_history",
        )
        turns.append({"role": role, "content": content})
    return turns
