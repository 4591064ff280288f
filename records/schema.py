"""The tables: sessions, their participants, and utterances (ORM-free SQLAlchemy Core)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

ROLE_USER = "user"
ROLE_BOT = "bot"
# Full-text index names (created by the migrations, per dialect).
SQLITE_FTS_TABLE = "utterances_fts"
POSTGRES_FTS_CONFIG = "english"


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out on every backend (SQLite keeps no time zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("room", String(255), nullable=False, index=True),
    Column("bot_identity", String(255), nullable=False),
    Column("started_at", UTCDateTime, nullable=False, index=True),
    Column("ended_at", UTCDateTime),
)

participants = Table(
    "participants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(32), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("identity", String(255), nullable=False, index=True),
    Column("name", String(255), nullable=False, default=""),
    Column("joined_at", UTCDateTime, nullable=False),
    Column("left_at", UTCDateTime),
    UniqueConstraint("session_id", "identity", name="uq_participants_session_identity"),
)

utterances = Table(
    "utterances",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "session_id",
        String(32),
        ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("speaker_identity", String(255), nullable=False),
    Column("speaker_name", String(255), nullable=False, default=""),
    Column("role", String(8), nullable=False),
    Column("text", Text, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=False),
    # User turns: whether the words reached the bot's LLM (in a group only when addressed).
    Column("addressed", Boolean),
    # Bot turns: cut short by the user (only the spoken part is kept) or spoken in full.
    Column("interrupted", Boolean, nullable=False, default=False),
    # Bot turns: user stopped speaking → bot started speaking.
    Column("latency_ms", Integer),
)
