"""Options of the records store, taken from the settings tree at a process's entry point."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from avatar_core.settings import RecordsSection

SQLITE_FILE = "records.sqlite3"


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
    def from_settings(cls, section: RecordsSection, *, cache: Path) -> RecordsOptions:
        """From the tree's records section: DATABASE_URL (else SQLite in `cache`),
        RECORDS_ENABLED, RECORDS_RETENTION_DAYS."""
        url = section.database_url
        options = section.given()
        options.pop("database_url", None)
        return cls(url=postgres_url(url) if url else sqlite_url(cache), **options)
