"""A session as JSON, plain text or WebVTT (one cue per utterance, speaker as the voice tag)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

WEBVTT_MIME = "text/vtt"
TEXT_MIME = "text/plain"
JSON_MIME = "application/json"


def to_jsonable(value: Any) -> Any:
    """Datetimes as ISO 8601 UTC text, recursively."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    return value


def as_json(session: dict[str, Any]) -> str:
    return json.dumps(to_jsonable(session), indent=2, ensure_ascii=False)


def _speaker(u: dict[str, Any]) -> str:
    return u["speaker_name"] or u["speaker_identity"]


def as_text(session: dict[str, Any]) -> str:
    """`[HH:MM:SS] Name: text` lines under a heading naming the room and the time."""
    lines = [f"Room {session['room']}, {to_jsonable(session['started_at'])}", ""]
    for u in session["utterances"]:
        mark = " (interrupted)" if u["interrupted"] else ""
        lines.append(f"[{u['started_at'].strftime('%H:%M:%S')}] {_speaker(u)}: {u['text']}{mark}")
    return "\n".join(lines) + "\n"


def _cue_time(offset: timedelta) -> str:
    ms = max(0, round(offset.total_seconds() * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    seconds, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}"


def _cue_text(value: str) -> str:
    """Cue payload on one line (a blank line ends a cue), with &, < and > escaped."""
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(value.split())


def as_webvtt(session: dict[str, Any]) -> str:
    """Cues timed from the session start; an utterance with no duration lasts 1 ms."""
    start = session["started_at"]
    blocks = ["WEBVTT"]
    for number, u in enumerate(session["utterances"], 1):
        begin = u["started_at"] - start
        end = max(u["ended_at"] - start, begin + timedelta(milliseconds=1))
        speaker = _cue_text(_speaker(u))
        blocks.append(
            f"{number}\n{_cue_time(begin)} --> {_cue_time(end)}\n"
            f"<v {speaker}>{_cue_text(u['text'])}"
        )
    return "\n\n".join(blocks) + "\n"
