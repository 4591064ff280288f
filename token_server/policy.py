"""Which requests the token server serves at all: Host, Origin and body content type.

- Host: only the names in `allowed_hosts` (loopback names by default), so a DNS-rebinding
  site whose name resolves to 127.0.0.1 is refused before any handler reads data for it.
- Origin: a browser request from another site is refused unless its origin is listed in
  `allowed_origins` (none by default); the bundled page is same-origin and always allowed.
  Listed origins get CORS headers and preflight answers.
- Content type: request bodies must be JSON (UTF-8), multipart/form-data, or LiveKit's
  webhook JSON; a `text/plain` form post from another page never reaches a handler.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from token_server.errors import error_response
from token_server.settings import host_name

ANY = "*"
JSON_TYPE = "application/json"
MULTIPART_TYPE = "multipart/form-data"
WEBHOOK_TYPE = "application/webhook+json"
BODY_TYPES = frozenset({JSON_TYPE, MULTIPART_TYPE, WEBHOOK_TYPE})
UTF8_CHARSETS = frozenset({None, "utf-8", "utf8"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CORS_METHODS = "GET, POST, DELETE"
CORS_HEADERS = "Authorization, Content-Type"


def request_policy_middleware(
    *,
    allowed_hosts: tuple[str, ...],
    allowed_origins: tuple[str, ...],
    signed_paths: frozenset[str],
):
    """The Host / Origin / content-type policy as an aiohttp middleware (see the module doc).
    `signed_paths` (LiveKit's webhooks: signed, never sent by browsers) skip the content type."""
    hosts = frozenset(h.lower() for h in allowed_hosts)
    origins = frozenset(o.rstrip("/").lower() for o in allowed_origins)

    @web.middleware
    async def request_policy(request: web.Request, handler) -> web.StreamResponse:
        if ANY not in hosts and host_name(request.host or "") not in hosts:
            return error_response(
                400,
                "host_not_allowed",
                "this server does not answer to that host name; add it to AVATAR_ALLOWED_HOSTS",
            )
        origin = request.headers.get("Origin")
        cross_site = (
            origin is not None and urlsplit(origin).netloc.lower() != (request.host or "").lower()
        )
        # origin is not None whenever cross_site is true
        if cross_site and ANY not in origins and origin.rstrip("/").lower() not in origins:  # type: ignore[union-attr]
            return error_response(
                403,
                "origin_not_allowed",
                "requests from other sites are refused; add the site to AVATAR_ALLOWED_ORIGINS",
            )
        if cross_site and request.method == "OPTIONS":
            # origin is not None whenever cross_site is true
            return web.Response(status=204, headers=_cors(origin))  # type: ignore[arg-type]
        if (
            request.method not in SAFE_METHODS
            and request.body_exists
            and request.path not in signed_paths
        ):
            if request.content_type not in BODY_TYPES:
                return error_response(
                    415,
                    "unsupported_media_type",
                    "send application/json (or multipart/form-data for uploads)",
                )
            if request.content_type != MULTIPART_TYPE and request.charset not in UTF8_CHARSETS:
                return error_response(415, "unsupported_charset", "JSON bodies must be UTF-8")
        response = await handler(request)
        if cross_site and not response.prepared:
            # origin is not None whenever cross_site is true
            response.headers.update(_cors(origin))  # type: ignore[arg-type]
        return response

    return request_policy


def _cors(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": CORS_METHODS,
        "Access-Control-Allow-Headers": CORS_HEADERS,
        "Vary": "Origin",
    }
