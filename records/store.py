"""The data-access layer: one `RecordStore` over SQLite (default) or PostgreSQL.

Synchronous SQLAlchemy 2 on purpose: the bot writes from one writer thread (`records.recorder`)
and the token server reads through `asyncio.to_thread`, so neither event loop ever waits on
the database, and one code path serves both drivers (the stdlib's sqlite3 and psycopg 3)
without an async bridge per backend.
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    column,
    create_engine,
    delete,
    event,
    func,
    insert,
    literal_column,
    select,
    table,
    update,
)
from sqlalchemy.engine import make_url

from records.schema import (
    POSTGRES_FTS_CONFIG,
    ROLE_BOT,
    ROLE_USER,
    SQLITE_FTS_TABLE,
    participants,
    sessions,
    utterances,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# SQLite: how long a writer waits for another process's lock before failing (ms).
SQLITE_BUSY_TIMEOUT_MS = 5000
# PostgreSQL: fail fast when the server is away, so a write is counted lost instead of hanging.
POSTGRES_CONNECT_TIMEOUT_S = 3
# Any key, same in every process: serializes concurrent migrations on one PostgreSQL database.
POSTGRES_MIGRATION_LOCK = 0x61766174
WORD = re.compile(r"\w+", re.UNICODE)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class SessionInfo:
    """What identifies a room session; enough to write its row again after a lost write."""

    id: str
    room: str
    bot_identity: str
    started_at: datetime


@dataclass(frozen=True, kw_only=True)
class Utterance:
    """One thing said in a session, by a person (`role` user) or the bot."""

    speaker_identity: str
    speaker_name: str
    role: str
    text: str
    started_at: datetime
    ended_at: datetime
    addressed: bool | None = None
    interrupted: bool = False
    latency_ms: int | None = None


@dataclass(frozen=True, kw_only=True)
class SessionQuery:
    """Filters and page of a session listing (all optional)."""

    room: str | None = None
    participant: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    offset: int = 0


class RecordStore:
    """Sessions, participants and utterances in one database; every method is a transaction."""

    def __init__(self, *, url: str):
        """`url`: a SQLAlchemy URL (`sqlite:///file`, `postgresql+psycopg://...`)."""
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            if parsed.database:
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(url)
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(
                url,
                pool_pre_ping=True,
                connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S},
            )
        self._sqlite_file = parsed.database if self.dialect == "sqlite" else None

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic, shipped in this package)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self._migration_lock(), self.engine.begin() as connection:
            if self.dialect == "postgresql":
                connection.execute(select(func.pg_advisory_xact_lock(POSTGRES_MIGRATION_LOCK)))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        """SQLite files: a lock file, so a bot and the token server never migrate at once."""
        if not self._sqlite_file or self._sqlite_file == ":memory:":
            yield
            return
        with open(Path(self._sqlite_file).expanduser().with_suffix(".migrate.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def close(self) -> None:
        self.engine.dispose()

    # Writing (the bot, through the recorder's writer thread).

    def ensure_session(self, session: SessionInfo) -> None:
        """Write the session's row unless it exists (start, resume, and after lost writes)."""
        with self.engine.begin() as db:
            if db.scalar(select(sessions.c.id).where(sessions.c.id == session.id)) is None:
                db.execute(
                    insert(sessions).values(
                        id=session.id,
                        room=session.room,
                        bot_identity=session.bot_identity,
                        started_at=session.started_at,
                    )
                )
            else:
                db.execute(
                    update(sessions).where(sessions.c.id == session.id).values(ended_at=None)
                )

    def end_session(self, session_id: str, at: datetime) -> None:
        with self.engine.begin() as db:
            db.execute(update(sessions).where(sessions.c.id == session_id).values(ended_at=at))
            db.execute(
                update(participants)
                .where(participants.c.session_id == session_id, participants.c.left_at.is_(None))
                .values(left_at=at)
            )

    def participant_joined(self, session_id: str, identity: str, name: str, at: datetime) -> None:
        with self.engine.begin() as db:
            found = db.scalar(
                select(participants.c.id).where(
                    participants.c.session_id == session_id, participants.c.identity == identity
                )
            )
            if found is None:
                db.execute(
                    insert(participants).values(
                        session_id=session_id, identity=identity, name=name, joined_at=at
                    )
                )
            else:
                values = {"left_at": None, **({"name": name} if name else {})}
                db.execute(update(participants).where(participants.c.id == found).values(**values))

    def participant_left(self, session_id: str, identity: str, at: datetime) -> None:
        with self.engine.begin() as db:
            db.execute(
                update(participants)
                .where(participants.c.session_id == session_id, participants.c.identity == identity)
                .values(left_at=at)
            )

    def add_utterance(self, session_id: str, utterance: Utterance) -> None:
        with self.engine.begin() as db:
            db.execute(insert(utterances).values(session_id=session_id, **vars(utterance)))

    # Reading (the bot at start-up, the API).

    def open_session(self, room: str, *, active_within: timedelta) -> SessionInfo | None:
        """The room's newest session still open (no end) with activity within `active_within`."""
        cutoff = now() - active_within
        with self.engine.connect() as db:
            row = db.execute(
                select(sessions)
                .where(sessions.c.room == room, sessions.c.ended_at.is_(None))
                .order_by(sessions.c.started_at.desc())
                .limit(1)
            ).first()
            if row is None:
                return None
            last = db.scalar(
                select(func.max(utterances.c.ended_at)).where(utterances.c.session_id == row.id)
            )
        if max(row.started_at, last or row.started_at) < cutoff:
            return None
        return SessionInfo(
            id=row.id, room=row.room, bot_identity=row.bot_identity, started_at=row.started_at
        )

    def recent_turns(self, session_id: str, *, limit: int) -> list[dict[str, Any]]:
        """The last `limit` utterances that were part of the conversation, oldest first."""
        with self.engine.connect() as db:
            rows = db.execute(
                select(utterances)
                .where(
                    utterances.c.session_id == session_id,
                    (utterances.c.role == ROLE_BOT) | utterances.c.addressed.is_(True),
                )
                .order_by(utterances.c.started_at.desc(), utterances.c.id.desc())
                .limit(limit)
            ).all()
        return [dict(r._mapping) for r in reversed(rows)]

    def list_sessions(self, query: SessionQuery) -> tuple[list[dict[str, Any]], int]:
        """One page of sessions, newest first, with their participants; and the total count."""
        where = []
        if query.room:
            where.append(sessions.c.room == query.room)
        if query.participant:
            where.append(
                sessions.c.id.in_(
                    select(participants.c.session_id).where(
                        (participants.c.identity == query.participant)
                        | (participants.c.name == query.participant)
                    )
                )
            )
        if query.since:
            where.append(func.coalesce(sessions.c.ended_at, now()) >= query.since)
        if query.until:
            where.append(sessions.c.started_at <= query.until)
        with self.engine.connect() as db:
            total = db.scalar(select(func.count()).select_from(sessions).where(*where))
            rows = db.execute(
                select(sessions)
                .where(*where)
                .order_by(sessions.c.started_at.desc(), sessions.c.id)
                .limit(query.limit)
                .offset(query.offset)
            ).all()
            found = [dict(r._mapping) for r in rows]
            people = self._participants(db, [s["id"] for s in found])
            counts: dict[str, int] = dict(
                db.execute(
                    select(utterances.c.session_id, func.count())
                    .where(utterances.c.session_id.in_([s["id"] for s in found]))
                    .group_by(utterances.c.session_id)
                ).all()
            )
        for s in found:
            s["participants"] = people.get(s["id"], [])
            s["utterance_count"] = counts.get(s["id"], 0)
        # COUNT(*) always returns one row, so total is an int
        return found, total  # type: ignore[return-value]

    def get_session(self, session_id: str) -> dict[str, Any] | None:
        """A session with its participants and all its utterances in time order."""
        with self.engine.connect() as db:
            row = db.execute(select(sessions).where(sessions.c.id == session_id)).first()
            if row is None:
                return None
            found = dict(row._mapping)
            found["participants"] = self._participants(db, [session_id]).get(session_id, [])
            found["utterances"] = [
                dict(r._mapping)
                for r in db.execute(
                    select(utterances)
                    .where(utterances.c.session_id == session_id)
                    .order_by(utterances.c.started_at, utterances.c.id)
                ).all()
            ]
        return found

    def search(
        self, words: str, *, room: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Utterances matching every word of `words` (SQLite FTS5 / PostgreSQL tsvector), best
        first, each with its session's room."""
        terms = WORD.findall(words)
        if not terms:
            return []
        columns = [*utterances.c, sessions.c.room]
        if self.dialect == "sqlite":
            fts = table(SQLITE_FTS_TABLE, column("rowid"), column("rank"))
            statement = (
                select(*columns)
                .select_from(utterances.join(sessions).join(fts, fts.c.rowid == utterances.c.id))
                .where(
                    literal_column(SQLITE_FTS_TABLE).op("MATCH")(" ".join(f'"{t}"' for t in terms))
                )
                .order_by(fts.c.rank, utterances.c.id)
            )
        else:
            vector = func.to_tsvector(POSTGRES_FTS_CONFIG, utterances.c.text)
            query = func.plainto_tsquery(POSTGRES_FTS_CONFIG, " ".join(terms))
            statement = (
                select(*columns)
                .select_from(utterances.join(sessions))
                .where(vector.bool_op("@@")(query))
                .order_by(func.ts_rank(vector, query).desc(), utterances.c.id)
            )
        if room:
            statement = statement.where(sessions.c.room == room)
        with self.engine.connect() as db:
            rows = db.execute(statement.limit(limit).offset(offset)).all()
        return [dict(r._mapping) for r in rows]

    def delete_session(self, session_id: str) -> bool:
        with self.engine.begin() as db:
            db.execute(delete(utterances).where(utterances.c.session_id == session_id))
            db.execute(delete(participants).where(participants.c.session_id == session_id))
            return db.execute(delete(sessions).where(sessions.c.id == session_id)).rowcount > 0

    def delete_older_than(self, days: int) -> int:
        """Delete sessions that started more than `days` days ago; how many went."""
        cutoff = now() - timedelta(days=days)
        old = select(sessions.c.id).where(sessions.c.started_at < cutoff)
        with self.engine.begin() as db:
            db.execute(delete(utterances).where(utterances.c.session_id.in_(old)))
            db.execute(delete(participants).where(participants.c.session_id.in_(old)))
            return db.execute(delete(sessions).where(sessions.c.started_at < cutoff)).rowcount

    @staticmethod
    def _participants(db, session_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        rows = db.execute(
            select(participants)
            .where(participants.c.session_id.in_(session_ids))
            .order_by(participants.c.joined_at)
        ).all()
        for r in rows:
            p = dict(r._mapping)
            found.setdefault(p.pop("session_id"), []).append(
                {k: p[k] for k in ("identity", "name", "joined_at", "left_at")}
            )
        return found


def _sqlite_pragmas(connection, _record) -> None:
    """WAL (readers never block the writer; NORMAL sync is durable in WAL except for the last
    commits on power loss), a busy wait, and enforced foreign keys."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


__all__ = [
    "ROLE_BOT",
    "ROLE_USER",
    "RecordStore",
    "SessionInfo",
    "SessionQuery",
    "Utterance",
    "now",
]
