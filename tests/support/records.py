"""A room's conversation record as a test reads it: through the records store, as the records
API and a resumed bot do (no log parsing)."""

from __future__ import annotations

from typing import Any

from bot.recorder import remembered_context
from records.store import RecordStore, SessionQuery


def room_record(store: RecordStore, room: str) -> dict[str, Any] | None:
    """The room's newest session with its participants and utterances, or None."""
    found = store.list_sessions(SessionQuery(room=room, limit=1))[0]
    return store.get_session(found[0]["id"]) if found else None


def room_context(store: RecordStore, room: str) -> list[dict]:
    """The LLM messages the room's conversation holds on record (empty before any)."""
    record = room_record(store, room)
    return remembered_context(store, record["id"]) if record else []


def room_utterances(store: RecordStore, room: str) -> list[dict[str, Any]]:
    """The utterances on record for the room's newest session, in time order."""
    record = room_record(store, room)
    return record["utterances"] if record else []
