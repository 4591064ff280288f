"""Conversation records over REST: list, read, search, export and delete sessions; retention.

The store is synchronous (see `records.store`), so every call runs in a worker thread and the
event loop keeps serving. The API key middleware covers these routes like every /api route.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from loguru import logger

from records import export
from records.options import RecordsOptions
from records.store import RecordStore, SessionQuery
from token_server.errors import ApiError
from token_server.settings import TokenServerSettings

SESSIONS_ROUTE = "/api/records/sessions"
SESSION_ROUTE = "/api/records/sessions/{session_id}"
EXPORT_ROUTE = "/api/records/sessions/{session_id}/export"
SEARCH_ROUTE = "/api/records/search"
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_QUERY_CHARS = 200
MAX_FILTER_CHARS = 255
SESSION_ID = re.compile(r"[0-9a-f]{32}")
RETENTION_CHECK_S = 3600.0
EXPORTS: dict[str, tuple[Callable[[dict[str, Any]], str], str, str]] = {
    "json": (export.as_json, export.JSON_MIME, "json"),
    "text": (export.as_text, export.TEXT_MIME, "txt"),
    "vtt": (export.as_webvtt, export.WEBVTT_MIME, "vtt"),
}
RECORDS = web.AppKey("records", RecordStore)


def _only(params: Mapping[str, str], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ApiError(
            400,
            "invalid_query",
            f"unknown query parameter(s): {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(allowed))}",
        )


def _int(params: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, "invalid_query", f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _time(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(
            400, "invalid_query", f"{name} must be an ISO 8601 time such as 2026-11-30T10:00:00Z"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _text(params: Mapping[str, str], name: str) -> str | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.strip() or len(raw) > MAX_FILTER_CHARS:
        raise ApiError(400, "invalid_query", f"{name} must be 1 to {MAX_FILTER_CHARS} characters")
    return raw.strip()


def _page(params: Mapping[str, str]) -> tuple[int, int]:
    return (
        _int(params, "limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT),
        _int(params, "offset", 0, low=0, high=10**9),
    )


async def _call(request: web.Request, method: str, *args, **kwargs):
    """Run a store method in a thread; a database that is away is a 503, not a 500."""
    store = request.app[RECORDS]
    try:
        return await asyncio.to_thread(getattr(store, method), *args, **kwargs)
    except Exception as exc:
        logger.warning(f"records: {method} failed: {exc!r:.300}")
        raise ApiError(
            503,
            "records_unavailable",
            "the records database is not reachable",
            headers={"Retry-After": "5"},
        ) from None


async def _session(request: web.Request) -> dict[str, Any]:
    session_id = request.match_info["session_id"]
    if not SESSION_ID.fullmatch(session_id):
        raise ApiError(404, "not_found", "no such session (ids are 32 hex digits)")
    found = await _call(request, "get_session", session_id)
    if found is None:
        raise ApiError(404, "not_found", f"no session {session_id}")
    return found


async def list_sessions(request: web.Request) -> web.Response:
    """Sessions newest first; filters room, participant (identity or name), from/to (ISO 8601)."""
    params = request.query
    _only(params, {"room", "participant", "from", "to", "limit", "offset"})
    since, until = _time(params, "from"), _time(params, "to")
    if since and until and since > until:
        raise ApiError(400, "invalid_query", "from must not be later than to")
    limit, offset = _page(params)
    query = SessionQuery(
        room=_text(params, "room"),
        participant=_text(params, "participant"),
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    found, total = await _call(request, "list_sessions", query)
    return web.json_response(
        export.to_jsonable({"sessions": found, "total": total, "limit": limit, "offset": offset})
    )


async def get_session(request: web.Request) -> web.Response:
    _only(request.query, set())
    return web.json_response(export.to_jsonable(await _session(request)))


async def export_session(request: web.Request) -> web.Response:
    """The session as a download: ?format=json (default), text or vtt (WebVTT)."""
    _only(request.query, {"format"})
    kind = request.query.get("format", "json")
    if kind not in EXPORTS:
        raise ApiError(400, "invalid_query", f"format must be one of {', '.join(EXPORTS)}")
    render, mime, suffix = EXPORTS[kind]
    found = await _session(request)
    return web.Response(
        text=render(found),
        content_type=mime,
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{found["room"]}-{found["id"]}.{suffix}"'
        },
    )


async def delete_session(request: web.Request) -> web.Response:
    _only(request.query, set())
    found = await _session(request)
    await _call(request, "delete_session", found["id"])
    return web.Response(status=204)


async def search(request: web.Request) -> web.Response:
    """Utterances containing every word of q (optionally in one room), best match first."""
    params = request.query
    _only(params, {"q", "room", "limit", "offset"})
    words = params.get("q", "")
    if len(words) > MAX_QUERY_CHARS or not re.search(r"\w", words):
        raise ApiError(
            400,
            "invalid_query",
            f"q must hold at least one word and at most {MAX_QUERY_CHARS} characters",
        )
    limit, offset = _page(params)
    found = await _call(
        request, "search", words, room=_text(params, "room"), limit=limit, offset=offset
    )
    return web.json_response(
        export.to_jsonable({"results": found, "limit": limit, "offset": offset})
    )


async def _records_off(request: web.Request) -> web.Response:
    raise ApiError(404, "records_disabled", "conversation records are off (RECORDS_ENABLED=0)")


async def _delete_expired(store: RecordStore, days: int) -> None:
    """Retention: every hour, sessions older than `days` days go (the first check at start)."""
    while True:
        try:
            gone = await asyncio.to_thread(store.delete_older_than, days)
            if gone:
                logger.info(f"records: deleted {gone} session(s) older than {days} days")
        except Exception as exc:
            logger.warning(f"records: retention cleanup failed: {exc!r:.300}")
        await asyncio.sleep(RETENTION_CHECK_S)


def setup_records_routes(app: web.Application, settings: TokenServerSettings) -> None:
    """Mount the records API; the store opens (and migrates) with the app."""
    options: RecordsOptions | None = settings.records
    routes = [
        ("GET", SESSIONS_ROUTE, list_sessions),
        ("GET", SESSION_ROUTE, get_session),
        ("DELETE", SESSION_ROUTE, delete_session),
        ("GET", EXPORT_ROUTE, export_session),
        ("GET", SEARCH_ROUTE, search),
    ]
    if options is None or not options.enabled:
        for method, path, _handler in routes:
            app.router.add_route(method, path, _records_off)
        return
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    store = app[RECORDS] = RecordStore(url=options.url)

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        try:
            await asyncio.to_thread(store.migrate)
        except Exception as exc:  # the API answers 503 until the database is back
            logger.warning(f"records: database not reachable at start: {exc!r:.300}")
        cleanup = (
            asyncio.create_task(_delete_expired(store, options.retention_days))
            if options.retention_days
            else None
        )
        yield
        if cleanup:
            cleanup.cancel()
        await asyncio.to_thread(store.close)

    app.cleanup_ctx.append(lifecycle)
