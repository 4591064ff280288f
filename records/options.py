"""Settings of the records store, read once at a process's entry point."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DATABASE_URL_ENV = "DATABASE_URL"
ENABLED_ENV = "RECORDS_ENABLED"
RETENTION_ENV = "RECORDS_RETENTION_DAYS"
# The cache folder of the whole stack (models, servers, the default records file).
CACHE_ENV = "AVATAR_CACHE"
DEFAULT_CACHE = "~/.cache/talking-avatar"
SQLITE_FILE = "records.sqlite3"
FALSE_WORDS = ("0", "false", "no", "off")


def sqlite_url(folder: Path) -> str:
    """The SQLAlchemy URL of the default records file in `folder`."""
    return f"sqlite:///{folder.expanduser() / SQLITE_FILE}"


def postgres_url(url: str) -> str:
    """`postgres://` and `postgresql://` URLs mean psycopg 3 (the driver this package ships)."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


@dataclass(frozen=True, kw_only=True)
class RecordsOptions:
    """Where records go, whether they are kept at all, and for how many days (0: forever)."""

    url: str
    enabled: bool = True
    retention_days: int = 0

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] = os.environ, *, cache: Path | None = None
    ) -> RecordsOptions:
        """DATABASE_URL (else SQLite in `cache`, default $AVATAR_CACHE), RECORDS_ENABLED,
        RECORDS_RETENTION_DAYS; a bad value raises ValueError naming the variable."""
        folder = cache or Path(env.get(CACHE_ENV) or DEFAULT_CACHE)
        url = env.get(DATABASE_URL_ENV, "").strip()
        raw_days = env.get(RETENTION_ENV, "").strip() or "0"
        try:
            days = int(raw_days)
        except ValueError:
            raise ValueError(
                f"{RETENTION_ENV} must be a whole number of days, got {raw_days!r}"
            ) from None
        if days < 0:
            raise ValueError(f"{RETENTION_ENV} must be >= 0 (0 keeps records forever), got {days}")
        return cls(
            url=postgres_url(url) if url else sqlite_url(folder),
            enabled=env.get(ENABLED_ENV, "1").strip().lower() not in FALSE_WORDS,
            retention_days=days,
        )
