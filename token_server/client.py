"""Serves the built browser client (client/dist) at `/`, or a page saying how to build it."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from token_server.settings import TokenServerSettings

INDEX = "index.html"
NOT_BUILT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Talking avatar: client not built</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>The browser client is not built</h1>
<p>The token server serves the client from <code>{dist}</code>, which has no
<code>index.html</code>.
Build it with:</p>
<pre>npm --prefix client ci
npm --prefix client run build</pre>
<p>The API works without it: see <a href="/api/openapi.json">/api/openapi.json</a> and
<a href="/health">/health</a>.</p>
</body></html>
"""


def _resolve(dist: Path, tail: str) -> Path | None:
    """The file under `dist` that `tail` names, or None (missing, a folder, or outside dist)."""
    try:
        target = (dist / (tail or INDEX)).resolve()
    except (OSError, ValueError):
        return None
    if not target.is_relative_to(dist) or not target.is_file():
        return None
    return target


def setup_client_routes(app: web.Application, settings: TokenServerSettings) -> None:
    """A catch-all GET route, so it must be registered after every other route."""
    dist = settings.client_dist.resolve()

    async def serve(request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        if not (dist / INDEX).is_file():
            if tail:
                raise web.HTTPNotFound(text=f"no such page: /{tail} (the client is not built)")
            return web.Response(text=NOT_BUILT_PAGE.format(dist=dist), content_type="text/html")
        target = _resolve(dist, tail)
        if target is None:
            raise web.HTTPNotFound(text=f"no such file: /{tail}")
        return web.FileResponse(target)

    app.router.add_get("/{tail:.*}", serve)
