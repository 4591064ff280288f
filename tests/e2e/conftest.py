"""Fixtures for the browser tests: prerequisites, the built client, and a STAND-IN token endpoint
for tests that put a stand-in bot (not the token server's own bot) in the room."""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from tests.e2e.browser import ensure_client_built, missing_prerequisite, screenshot_dir
from tests.support.serve import serve_app
from tests.support.worker import WorkerProcess
from token_server.app import create_app
from token_server.settings import TokenServerSettings


@pytest.fixture(scope="session")
def client_dist():
    reason = missing_prerequisite()
    if reason:
        pytest.skip(reason)
    return ensure_client_built()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """The folder a test saves page screenshots to: its tmp_path, or $E2E_SCREENSHOT_DIR (the
    README's pictures are refreshed with E2E_SCREENSHOT_DIR=docs); never the tree by default."""
    return screenshot_dir(tmp_path)


@dataclass(frozen=True)
class Site:
    url: str


@asynccontextmanager
async def serve_client(client_dist, token_handler):
    """client/dist at / and `token_handler` at POST /api/token, on a free loopback port."""
    app = web.Application()
    app.router.add_post("/api/token", token_handler)
    app.router.add_get("/", lambda _request: web.FileResponse(client_dist / "index.html"))
    app.router.add_static("/", client_dist)
    async with serve_app(app) as url:
        yield Site(url=url)


@pytest.fixture
async def standin_site(client_dist, livekit, make_token):
    """STAND-IN for token_server's join API, for stand-in-bot tests: serves client/dist and
    POST /api/token {room, identity, name} -> {token, url} minted by the test's make_token. It
    dispatches no bot (the test brings its own), which is exactly what the real server must not
    do."""

    async def token(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(
            {
                "token": make_token(body["room"], body["identity"], name=body["name"]),
                "url": livekit.url,
            }
        )

    async with serve_client(client_dist, token) as site:
        yield site


@asynccontextmanager
async def real_site(client_dist, *, livekit, ollama, stack_settings, stack_env, log_dir):
    """The real token server serving `client_dist` on a loopback port, and one agent worker that
    LiveKit dispatches the rooms' avatars to (`stack_env`: the fixture). Yields the site's URL."""
    worker = WorkerProcess(log_path=log_dir / "worker.log", env=stack_env).start()
    settings = TokenServerSettings(
        livekit_url=livekit.url,
        livekit_public_url=livekit.url,
        livekit_api_key=livekit.api_key,
        livekit_api_secret=livekit.api_secret,
        api_key=None,
        client_new_rooms=3,
        room_check_s=2.0,
        ollama_url=ollama.url,
        ollama_model=ollama.model,
        whisper_model=stack_settings.whisper_model,
        cache=stack_settings.cache,
        client_dist=client_dist,
    )
    try:
        worker.wait_registered()
        async with serve_app(create_app(settings)) as url:
            yield url
    finally:
        worker.stop()
