"""The aiohttp application: middlewares (errors, API key, access log), services, routes."""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator

from aiohttp import web
from loguru import logger

from token_server.api import PUBLIC_ROUTES, WEBHOOK_ROUTE, setup_api_routes
from token_server.avatar_videos import setup_avatar_video_routes
from token_server.client import setup_client_routes
from token_server.errors import error_middleware, error_response
from token_server.limits import OPERATOR
from token_server.policy import request_policy_middleware
from token_server.records_api import setup_records_routes
from token_server.services import SERVICES, Services
from token_server.settings import TokenServerSettings
from token_server.voices_api import setup_voice_routes

API_PREFIX = "/api/"
BEARER_PREFIX = "Bearer "
# Largest request body accepted (chat history included); larger bodies get 413.
MAX_BODY_BYTES = 256 * 1024


def api_key_middleware(api_key: str | None):
    """Require `Authorization: Bearer <AVATAR_API_KEY>` on /api/* (except public routes) when a key
    is set; mark requests that carry it as the operator's."""
    expected = api_key.encode() if api_key else None

    @web.middleware
    async def check_api_key(request: web.Request, handler) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        given = (
            header[len(BEARER_PREFIX) :].strip().encode()
            if header.startswith(BEARER_PREFIX)
            else b""
        )
        request[OPERATOR] = expected is not None and hmac.compare_digest(given, expected)
        if (
            expected is None
            or not request.path.startswith(API_PREFIX)
            or request.path in PUBLIC_ROUTES
        ):
            return await handler(request)
        if not request[OPERATOR]:
            reason = (
                "wrong API key" if given else "missing API key: send 'Authorization: Bearer <key>'"
            )
            return error_response(
                401, "unauthorized", reason, headers={"WWW-Authenticate": "Bearer"}
            )
        return await handler(request)

    return check_api_key


@web.middleware
async def access_log_middleware(request: web.Request, handler) -> web.StreamResponse:
    """One structured log line per request (never bodies or headers: they carry tokens and keys)."""
    started = time.perf_counter()
    response = await handler(request)
    logger.bind(
        method=request.method,
        path=request.path,
        status=response.status,
        ms=round((time.perf_counter() - started) * 1000, 1),
    ).info("http request")
    return response


def create_app(settings: TokenServerSettings) -> web.Application:
    """Build the token server app; its services start and stop with the app."""
    app = web.Application(
        client_max_size=MAX_BODY_BYTES,
        middlewares=[
            access_log_middleware,
            error_middleware,
            request_policy_middleware(
                allowed_hosts=settings.allowed_hosts,
                allowed_origins=settings.allowed_origins,
                signed_paths=frozenset({WEBHOOK_ROUTE}),
            ),
            api_key_middleware(settings.api_key),
        ],
    )
    services = Services.build(settings)
    app[SERVICES] = services

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await services.start()
        logger.bind(livekit=settings.livekit_url, agent=settings.agent_name).info(
            "token server started"
        )
        yield
        await services.stop()

    app.cleanup_ctx.append(lifecycle)
    setup_api_routes(app, settings)
    # Feature route modules register here, one line each, before the client's catch-all route.
    setup_voice_routes(app, settings)
    setup_records_routes(app, settings)
    setup_avatar_video_routes(app, settings)
    setup_client_routes(app, settings)
    return app
