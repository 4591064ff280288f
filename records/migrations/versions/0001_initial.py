"""Sessions, participants, utterances, and the full-text index of utterances.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE utterances_fts USING fts5("
    "text, content='utterances', content_rowid='id')",
    "CREATE TRIGGER utterances_fts_insert AFTER INSERT ON utterances BEGIN "
    "INSERT INTO utterances_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER utterances_fts_delete AFTER DELETE ON utterances BEGIN "
    "INSERT INTO utterances_fts(utterances_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER utterances_fts_update AFTER UPDATE OF text ON utterances BEGIN "
    "INSERT INTO utterances_fts(utterances_fts, rowid, text) VALUES ('delete', old.id, old.text); "
    "INSERT INTO utterances_fts(rowid, text) VALUES (new.id, new.text); END",
]
POSTGRES_FTS = [
    "CREATE INDEX ix_utterances_text_fts ON utterances USING gin (to_tsvector('english', text))",
]


def upgrade() -> None:
    when = sa.DateTime(timezone=True)
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("room", sa.String(255), nullable=False),
        sa.Column("bot_identity", sa.String(255), nullable=False),
        sa.Column("started_at", when, nullable=False),
        sa.Column("ended_at", when),
    )
    op.create_index("ix_sessions_room", "sessions", ["room"])
    op.create_index("ix_sessions_started_at", "sessions", ["started_at"])
    op.create_table(
        "participants",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "session_id",
            sa.String(32),
            sa.ForeignKey("sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("identity", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("joined_at", when, nullable=False),
        sa.Column("left_at", when),
        sa.UniqueConstraint("session_id", "identity", name="uq_participants_session_identity"),
    )
    op.create_index("ix_participants_identity", "participants", ["identity"])
    op.create_table(
        "utterances",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "session_id",
            sa.String(32),
            sa.ForeignKey("sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("speaker_identity", sa.String(255), nullable=False),
        sa.Column("speaker_name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("started_at", when, nullable=False),
        sa.Column("ended_at", when, nullable=False),
        sa.Column("addressed", sa.Boolean),
        sa.Column("interrupted", sa.Boolean, nullable=False),
        sa.Column("latency_ms", sa.Integer),
    )
    op.create_index("ix_utterances_session_id", "utterances", ["session_id"])
    for statement in SQLITE_FTS if op.get_bind().dialect.name == "sqlite" else POSTGRES_FTS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE utterances_fts")
    op.drop_table("utterances")
    op.drop_table("participants")
    op.drop_table("sessions")
