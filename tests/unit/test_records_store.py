"""The records store and recorder on SQLite and on a real PostgreSQL server (Debian's).

Writes go through `SessionRecorder` (the bot's writer thread), reads through `RecordStore`:
migrations, resume of an open session, search, exports, retention, a full queue, and a
PostgreSQL server stopped in the middle of a call.
"""

from __future__ import annotations

import io
import time
import uuid
from datetime import timedelta

import pytest
import webvtt

from avatar_core.settings import load_settings
from records import export
from records.options import RecordsOptions
from records.recorder import SessionRecorder
from records.schema import ROLE_BOT, ROLE_USER
from records.store import RecordStore, SessionInfo, SessionQuery, Utterance, now

CLOSE_S = 10.0


@pytest.fixture
def store(records_url):
    store = RecordStore(url=records_url)
    store.migrate()
    yield store
    store.close()


def new_session(room: str = "room-1", started=None) -> SessionInfo:
    return SessionInfo(
        id=uuid.uuid4().hex, room=room, bot_identity="avatar-bot", started_at=started or now()
    )


def said(
    who: str, text: str, at, *, role: str = ROLE_USER, secs: float = 1.5, **extra
) -> Utterance:
    name = {"dana": "Dana", "avatar-bot": "Ava"}.get(who, who)
    return Utterance(
        speaker_identity=who,
        speaker_name=name,
        role=role,
        text=text,
        started_at=at,
        ended_at=at + timedelta(seconds=secs),
        **extra,
    )


def record_call(store: RecordStore, session: SessionInfo) -> SessionRecorder:
    """A short call: Dana joins, speaks, the bot answers (interrupted once), someone mutters."""
    rec = SessionRecorder(store=store, session=session)
    t = session.started_at
    rec.participant_joined("dana", "Dana", t)
    rec.utterance(
        said(
            "dana",
            "My name is Dana and my favourite colour is green",
            t + timedelta(seconds=1),
            addressed=True,
        )
    )
    rec.utterance(
        said(
            "avatar-bot",
            "Nice to meet you, Dana.",
            t + timedelta(seconds=4),
            role=ROLE_BOT,
            latency_ms=1200,
        )
    )
    rec.utterance(said("sam", "is it lunch yet", t + timedelta(seconds=7), addressed=False))
    rec.utterance(
        said(
            "avatar-bot",
            "Green is a",
            t + timedelta(seconds=9),
            role=ROLE_BOT,
            interrupted=True,
            latency_ms=900,
        )
    )
    return rec


def test_migrations_are_idempotent_and_a_call_is_recorded_in_order(store):
    store.migrate()  # a second process starting: nothing to do, nothing broken
    session = new_session()
    stats = record_call(store, session).close(CLOSE_S)
    assert (stats.written, stats.lost, stats.pending) == (6, 0, 0)  # with the session row

    found = store.get_session(session.id)
    assert found["room"] == "room-1" and found["ended_at"] is None
    assert [p["identity"] for p in found["participants"]] == ["dana"]
    rows = found["utterances"]
    assert [(u["speaker_identity"], u["role"]) for u in rows] == [
        ("dana", "user"),
        ("avatar-bot", "bot"),
        ("sam", "user"),
        ("avatar-bot", "bot"),
    ]
    assert rows[0]["started_at"] == session.started_at + timedelta(seconds=1)
    assert rows[0]["ended_at"] == session.started_at + timedelta(seconds=2.5)
    assert rows[3]["interrupted"] is True and rows[1]["interrupted"] is False
    assert [u["addressed"] for u in rows] == [True, None, False, None]
    assert rows[1]["latency_ms"] == 1200


def test_resume_finds_the_open_session_and_its_conversation_turns(store):
    session = new_session()
    record_call(store, session).close(CLOSE_S)
    assert store.open_session("room-1", active_within=timedelta(minutes=10)) == session
    assert store.open_session("other-room", active_within=timedelta(minutes=10)) is None
    turns = store.recent_turns(session.id, limit=20)
    # The utterance not addressed to the bot never was part of its conversation.
    assert [t["text"] for t in turns] == [
        "My name is Dana and my favourite colour is green",
        "Nice to meet you, Dana.",
        "Green is a",
    ]
    assert [t["text"] for t in store.recent_turns(session.id, limit=1)] == ["Green is a"]

    rec = SessionRecorder(store=store, session=session)
    rec.end(now())
    rec.close(CLOSE_S)
    assert store.open_session("room-1", active_within=timedelta(minutes=10)) is None


def test_a_stale_open_session_is_not_resumed(store):
    old = new_session(started=now() - timedelta(hours=2))
    SessionRecorder(store=store, session=old).close(CLOSE_S)
    assert store.get_session(old.id) is not None
    assert store.open_session("room-1", active_within=timedelta(minutes=10)) is None


def test_search_listing_and_filters(store):
    first, second = new_session("room-1"), new_session("room-2")
    record_call(store, first).close(CLOSE_S)
    rec = SessionRecorder(store=store, session=second)
    rec.participant_joined("lee", "Lee", now())
    rec.utterance(said("lee", "The blue whale is the largest animal", now(), addressed=True))
    rec.close(CLOSE_S)

    hits = store.search("favourite colour")
    assert [(h["session_id"], h["speaker_identity"]) for h in hits] == [(first.id, "dana")]
    assert hits[0]["room"] == "room-1"
    assert [h["session_id"] for h in store.search("whale")] == [second.id]
    assert store.search("whale", room="room-1") == []
    assert store.search("giraffe") == []
    assert store.search("  !! ") == []
    # Quotes, stars and parentheses are not query syntax: only the words count.
    assert [h["speaker_identity"] for h in store.search('("green"* colour')] == ["dana"]

    listed, total = store.list_sessions(SessionQuery())
    assert total == 2 and {s["id"] for s in listed} == {first.id, second.id}
    assert [s["id"] for s in store.list_sessions(SessionQuery(participant="Lee"))[0]] == [second.id]
    assert [s["id"] for s in store.list_sessions(SessionQuery(room="room-1"))[0]] == [first.id]
    page, total = store.list_sessions(SessionQuery(limit=1, offset=1))
    assert total == 2 and len(page) == 1
    assert store.list_sessions(SessionQuery(until=now() - timedelta(hours=1)))[1] == 0
    assert store.list_sessions(SessionQuery(since=now() - timedelta(minutes=5)))[1] == 2
    assert store.list_sessions(SessionQuery(since=now() + timedelta(hours=1)))[1] == 0


def test_exports_are_valid_json_text_and_webvtt(store):
    session = new_session()
    record_call(store, session).close(CLOSE_S)
    found = store.get_session(session.id)

    vtt = export.as_webvtt(found)
    assert vtt.startswith("WEBVTT\n\n")
    cues = webvtt.from_buffer(io.StringIO(vtt)).captions
    assert [c.voice for c in cues] == ["Dana", "Ava", "sam", "Ava"]
    assert [c.start for c in cues] == [
        "00:00:01.000",
        "00:00:04.000",
        "00:00:07.000",
        "00:00:09.000",
    ]
    assert [c.end for c in cues] == ["00:00:02.500", "00:00:05.500", "00:00:08.500", "00:00:10.500"]
    assert cues[0].text == "My name is Dana and my favourite colour is green"

    text = export.as_text(found)
    assert "Dana: My name is Dana" in text and "Ava: Green is a (interrupted)" in text
    assert '"speaker_identity": "dana"' in export.as_json(found)


def test_webvtt_escapes_what_would_break_a_cue():
    at = now()
    found = {
        "room": "r",
        "started_at": at,
        "utterances": [vars(said("x<y>", "a --> b\n\nc & <i>", at))],
    }
    vtt = export.as_webvtt(found)
    cues = webvtt.from_buffer(io.StringIO(vtt)).captions
    assert len(cues) == 1 and "-->" not in cues[0].raw_text.split("\n", 1)[-1]
    assert "\n\n" not in vtt.split("WEBVTT\n\n", 1)[1].strip()


def test_retention_deletes_old_sessions_and_their_utterances(store):
    old, recent = new_session(started=now() - timedelta(days=40)), new_session()
    record_call(store, old).close(CLOSE_S)
    record_call(store, recent).close(CLOSE_S)
    assert store.delete_older_than(30) == 1
    assert store.get_session(old.id) is None and store.get_session(recent.id) is not None
    assert [h["session_id"] for h in store.search("favourite")] == [recent.id]
    assert store.delete_session(recent.id) and not store.delete_session(recent.id)
    assert store.search("favourite") == []


def test_a_full_queue_drops_and_counts_without_blocking(store):
    session = new_session()
    rec = SessionRecorder(store=store, session=session, max_pending=2)
    started = time.perf_counter()
    accepted = [rec.utterance(said("dana", f"word {i}", now(), addressed=True)) for i in range(200)]
    assert time.perf_counter() - started < 1.0  # submitting never waits on the database
    stats = rec.close(CLOSE_S)
    assert not all(accepted)
    assert stats.lost == accepted.count(False) > 0
    assert stats.written == accepted.count(True) + 1  # the session row
    assert len(store.get_session(session.id)["utterances"]) == stats.written - 1


def test_postgres_going_away_mid_call_loses_counted_writes_then_resumes(postgres, tmp_path):
    store = RecordStore(url=postgres.new_database())
    store.migrate()
    session = new_session("outage-room")
    rec = SessionRecorder(store=store, session=session)
    rec.utterance(said("dana", "before the outage", now(), addressed=True))
    _wait(lambda: rec.stats.written == 2, "the session row and the first utterance")

    postgres.stop()
    try:
        for i in range(3):
            assert rec.utterance(said("dana", f"during the outage {i}", now(), addressed=True))
        _wait(lambda: rec.stats.lost == 3 and rec.stats.pending == 0, "the lost writes")
        # A bot starting while the database is away: its session row is lost too.
        late = SessionRecorder(store=store, session=new_session("late-room"))
        _wait(lambda: late.stats.lost == 1, "the lost session row")
    finally:
        postgres.start()
    rec.utterance(said("dana", "after the outage", now(), addressed=True))
    stats = rec.close(CLOSE_S)
    assert (stats.written, stats.lost) == (3, 3)
    texts = [u["text"] for u in store.get_session(session.id)["utterances"]]
    assert texts == ["before the outage", "after the outage"]
    # The late session's row is written again before its first utterance.
    late.utterance(said("lee", "first words", now(), addressed=True))
    assert late.close(CLOSE_S).written == 1
    assert [u["text"] for u in store.get_session(late.session.id)["utterances"]] == ["first words"]
    store.close()


def test_options_from_env(tmp_path, monkeypatch):
    def records(**env: str) -> RecordsOptions:
        """The records options as an entry point takes them from the tree."""
        for name in ("DATABASE_URL", "RECORDS_ENABLED", "RECORDS_RETENTION_DAYS", "AVATAR_CACHE"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        tree = load_settings()
        return RecordsOptions.from_settings(tree.records, cache=tree.stack.cache)

    assert records(AVATAR_CACHE=str(tmp_path)).url == f"sqlite:///{tmp_path}/records.sqlite3"
    pg = records(DATABASE_URL="postgres://u@h/db", RECORDS_ENABLED="0",
                 RECORDS_RETENTION_DAYS="30")
    assert (pg.url, pg.enabled, pg.retention_days) == ("postgresql+psycopg://u@h/db", False, 30)
    for bad in ("x", "-1"):
        with pytest.raises(ValueError, match="RECORDS_RETENTION_DAYS"):
            records(RECORDS_RETENTION_DAYS=bad)


def _wait(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_turn_heard_as_two_utterances_is_one_message_of_the_remembered_context(store):
    """Pipecat's aggregator joins a turn's transcripts into one user message; a resumed bot's
    context from the record does the same."""
    from bot.recorder import remembered_context

    session = new_session()
    rec = SessionRecorder(store=store, session=session)
    t = session.started_at
    rec.utterance(said("dana", "What is the capital of", t, addressed=True))
    rec.utterance(said("dana", "Japan?", t + timedelta(seconds=2), addressed=True))
    rec.utterance(said("avatar-bot", "Tokyo.", t + timedelta(seconds=4), role=ROLE_BOT))
    rec.close(CLOSE_S)
    assert remembered_context(store, session.id) == [
        {"role": "user", "content": "What is the capital of Japan?"},
        {"role": "assistant", "content": "Tokyo."},
    ]
