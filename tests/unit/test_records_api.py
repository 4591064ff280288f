"""The records REST API of the real token server app on a loopback port, over SQLite and a real
PostgreSQL: listing with filters and pages, one session, search, exports, delete, the API key,
retention, and 4xx answers (with reasons) to bad queries.

LiveKit is not needed by these routes, so the app points at a closed port.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
import webvtt

from records.options import RecordsOptions
from records.recorder import SessionRecorder
from records.schema import ROLE_BOT, ROLE_USER
from records.store import RecordStore, SessionInfo, Utterance, now
from stack.services import free_port
from tests.support.serve import serve_app
from token_server.app import create_app
from token_server.settings import TokenServerSettings

API_KEY = "records-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
SESSIONS = "/api/records/sessions"


def settings(records: RecordsOptions | None) -> TokenServerSettings:
    closed = f"ws://127.0.0.1:{free_port()}"
    return TokenServerSettings(
        livekit_url=closed,
        livekit_public_url=closed,
        livekit_api_key="k",
        livekit_api_secret="s" * 32,
        api_key=API_KEY,
        ollama_url=f"http://127.0.0.1:{free_port()}",
        ollama_model="unused",
        cache=Path("/nonexistent"),
        records=records,
    )


@asynccontextmanager
async def token_server(records: RecordsOptions | None) -> AsyncIterator[aiohttp.ClientSession]:
    async with serve_app(create_app(settings(records))) as url:
        async with aiohttp.ClientSession(base_url=url, headers=AUTH) as http:
            yield http


def record(url: str, room: str, who: str, text: str, *, started=None) -> str:
    """One session: `who` joins and says `text`, the bot answers; its id."""
    store = RecordStore(url=url)
    store.migrate()
    session = SessionInfo(
        id=uuid.uuid4().hex, room=room, bot_identity="avatar-bot", started_at=started or now()
    )
    rec = SessionRecorder(store=store, session=session)
    t = session.started_at
    rec.participant_joined(who, who.title(), t)
    rec.utterance(
        Utterance(
            speaker_identity=who,
            speaker_name=who.title(),
            role=ROLE_USER,
            text=text,
            started_at=t + timedelta(seconds=1),
            ended_at=t + timedelta(seconds=3),
            addressed=True,
        )
    )
    rec.utterance(
        Utterance(
            speaker_identity="avatar-bot",
            speaker_name="Ava",
            role=ROLE_BOT,
            text="I see.",
            started_at=t + timedelta(seconds=4),
            ended_at=t + timedelta(seconds=5),
            latency_ms=800,
        )
    )
    assert rec.close(10).lost == 0
    store.close()
    return session.id


async def test_list_read_search_export_delete(records_url):
    first = record(records_url, "room-a", "dana", "My favourite colour is green")
    second = record(records_url, "room-b", "lee", "Whales are mammals")
    async with token_server(RecordsOptions(url=records_url)) as http:
        async with http.get(SESSIONS) as r:
            body = await r.json()
            assert r.status == 200 and body["total"] == 2
            assert {s["id"] for s in body["sessions"]} == {first, second}
        async with http.get(SESSIONS, params={"room": "room-a"}) as r:
            assert [s["id"] for s in (await r.json())["sessions"]] == [first]
        async with http.get(SESSIONS, params={"participant": "Lee", "limit": "1"}) as r:
            body = await r.json()
            assert [s["id"] for s in body["sessions"]] == [second]
            assert body["sessions"][0]["participants"][0]["name"] == "Lee"
        async with http.get(SESSIONS, params={"limit": "1", "offset": "1"}) as r:
            body = await r.json()
            assert (body["total"], len(body["sessions"]), body["offset"]) == (2, 1, 1)
        async with http.get(SESSIONS, params={"to": "2000-01-01T00:00:00Z"}) as r:
            assert (await r.json())["total"] == 0

        async with http.get(f"{SESSIONS}/{first}") as r:
            found = await r.json()
            assert [(u["speaker_identity"], u["role"]) for u in found["utterances"]] == [
                ("dana", "user"),
                ("avatar-bot", "bot"),
            ]
            assert found["utterances"][1]["latency_ms"] == 800

        async with http.get("/api/records/search", params={"q": "favourite colour"}) as r:
            hits = (await r.json())["results"]
            assert [(h["session_id"], h["room"]) for h in hits] == [(first, "room-a")]

        async with http.get(f"{SESSIONS}/{first}/export", params={"format": "vtt"}) as r:
            assert r.status == 200 and r.content_type == "text/vtt"
            assert "attachment" in r.headers["Content-Disposition"]
            cues = webvtt.from_buffer(io.StringIO(await r.text())).captions
            assert [(c.voice, c.start, c.end) for c in cues] == [
                ("Dana", "00:00:01.000", "00:00:03.000"),
                ("Ava", "00:00:04.000", "00:00:05.000"),
            ]
        async with http.get(f"{SESSIONS}/{first}/export", params={"format": "text"}) as r:
            assert "Dana: My favourite colour is green" in await r.text()
        async with http.get(f"{SESSIONS}/{first}/export") as r:
            assert (await r.json())["id"] == first

        async with http.delete(f"{SESSIONS}/{first}") as r:
            assert r.status == 204
        for method in (http.get, http.delete):
            async with method(f"{SESSIONS}/{first}") as r:
                assert r.status == 404 and (await r.json())["error"] == "not_found"
        async with http.get("/api/records/search", params={"q": "favourite"}) as r:
            assert (await r.json())["results"] == []


BAD_QUERIES = [
    (SESSIONS, {"limit": "0"}, "limit"),
    (SESSIONS, {"limit": "abc"}, "limit"),
    (SESSIONS, {"limit": "201"}, "limit"),
    (SESSIONS, {"offset": "-1"}, "offset"),
    (SESSIONS, {"from": "yesterday"}, "ISO 8601"),
    (SESSIONS, {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "later"),
    (SESSIONS, {"room": " "}, "room"),
    (SESSIONS, {"sort": "name"}, "unknown query parameter"),
    ("/api/records/search", {}, "q must"),
    ("/api/records/search", {"q": "!!"}, "q must"),
    ("/api/records/search", {"q": "x" * 201}, "q must"),
    (f"{SESSIONS}/{'0' * 32}/export", {"format": "pdf"}, "format"),
]


async def test_bad_queries_get_400_with_a_reason(tmp_path):
    async with token_server(RecordsOptions(url=f"sqlite:///{tmp_path}/r.sqlite3")) as http:
        for path, params, reason in BAD_QUERIES:
            async with http.get(path, params=params) as r:
                body = await r.json()
                assert r.status == 400, (path, params, r.status, body)
                assert body["error"] == "invalid_query" and reason in body["detail"], (params, body)
        for path in (f"{SESSIONS}/not-an-id", f"{SESSIONS}/{'0' * 32}"):
            async with http.get(path) as r:
                assert r.status == 404


async def test_the_api_key_guards_the_records(tmp_path):
    async with token_server(RecordsOptions(url=f"sqlite:///{tmp_path}/r.sqlite3")) as http:
        for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}):
            async with http.get(SESSIONS, headers=headers) as r:
                assert r.status == 401
        async with http.get(SESSIONS) as r:
            assert r.status == 200


async def test_retention_deletes_old_sessions_at_start(records_url):
    old = record(records_url, "room-a", "dana", "an old talk", started=now() - timedelta(days=8))
    kept = record(records_url, "room-a", "dana", "a new talk")
    async with token_server(RecordsOptions(url=records_url, retention_days=7)) as http:
        for _ in range(100):
            async with http.get(SESSIONS) as r:
                ids = {s["id"] for s in (await r.json())["sessions"]}
            if old not in ids:
                break
            await asyncio.sleep(0.1)
        assert ids == {kept}


async def test_records_off_answers_404_with_the_reason():
    async with token_server(RecordsOptions(url="sqlite://", enabled=False)) as http:
        async with http.get(SESSIONS) as r:
            assert r.status == 404 and "RECORDS_ENABLED" in (await r.json())["detail"]


@pytest.mark.parametrize("path", [SESSIONS, "/api/records/search?q=x"])
async def test_a_database_that_is_away_is_a_503(path):
    url = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none"
    async with token_server(RecordsOptions(url=url)) as http:
        async with http.get(path) as r:
            assert r.status == 503 and (await r.json())["error"] == "records_unavailable"
