"""The REST API: tokens with the avatar's dispatch, rooms, health, text chat, LiveKit webhooks,
OpenAPI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import openai
from aiohttp import web
from loguru import logger

from token_server.chat import ChatUnavailable
from token_server.errors import ApiError, read_json_object
from token_server.limits import OPERATOR, RateLimited
from token_server.rooms import LiveKitUnavailable, ParticipantView
from token_server.services import SERVICES
from token_server.settings import TokenServerSettings
from token_server.validation import (
    validate_display_name,
    validate_history,
    validate_identity,
    validate_message,
    validate_room,
)
from token_server.webhook_guard import WebhookRefused

OPENAPI_PATH = Path(__file__).with_name("openapi.json")
CHAT_BUSY_RETRY_S = 5
SSE_CONTENT_TYPE = "text/event-stream"
# LiveKit webhook events that change who is in a room.
ROOM_EVENTS = ("participant_joined", "participant_left", "room_finished")

TOKEN_ROUTE = "/api/token"
ROOMS_ROUTE = "/api/rooms"
CHAT_ROUTE = "/api/chat"
HEALTH_ROUTE = "/health"
WEBHOOK_ROUTE = "/api/livekit/webhook"
OPENAPI_ROUTE = "/api/openapi.json"
# Routes that never need the API key: probes, the API description, and LiveKit's signed webhooks.
PUBLIC_ROUTES = frozenset({HEALTH_ROUTE, WEBHOOK_ROUTE, OPENAPI_ROUTE})


def _livekit_down(exc: LiveKitUnavailable) -> ApiError:
    return ApiError(503, "livekit_unavailable", str(exc), headers={"Retry-After": "5"})


def _rate_limited(exc: RateLimited) -> ApiError:
    return ApiError(429, "rate_limited", str(exc), headers={"Retry-After": str(exc.retry_after_s)})


async def create_token(request: web.Request) -> web.Response:
    """Mint a join token for a person; it asks LiveKit to dispatch the avatar to a new room."""
    services = request.app[SERVICES]
    settings = services.settings
    body = await read_json_object(request)
    room = validate_room(body.get("room"))
    identity = validate_identity(
        body.get("identity"),
        bot_identity=settings.bot_identity,
        reserved_prefixes=settings.reserved_prefixes,
        bot_name=settings.bot_name,
    )
    name = validate_display_name(
        body.get("name"), default=identity, reserved=(settings.bot_identity, settings.bot_name)
    )
    if not request[OPERATOR]:
        try:
            services.limits.admit_token(request.remote or "", room)
        except RateLimited as exc:
            raise _rate_limited(exc) from None
    token = services.minter.user_token(room=room, identity=identity, name=name)
    logger.bind(room=room, identity=identity).info("token issued")
    return web.json_response(
        {
            "token": token,
            "url": settings.livekit_public_url,
            "room": room,
            "identity": identity,
            "expires_in": settings.token_ttl_s,
            "bot": {"identity": settings.bot_identity, "agent_name": settings.agent_name},
        }
    )


def _room_entry(name: str, participants: list[ParticipantView]) -> dict:
    return {
        "name": name,
        "participants": [p.as_json() for p in participants],
        "humans": sum(p.is_human for p in participants),
        "bot": {"in_room": any(p.is_bot for p in participants)},
    }


async def list_rooms(request: web.Request) -> web.Response:
    """Rooms in LiveKit with their participants and whether the avatar is in each."""
    services = request.app[SERVICES]
    try:
        rooms = await services.rooms.rooms()
    except LiveKitUnavailable as exc:
        raise _livekit_down(exc) from None
    return web.json_response(
        {"rooms": [_room_entry(room.name, room.participants) for room in rooms]}
    )


async def health(request: web.Request) -> web.Response:
    """200 when livekit-server, Ollama and the model are usable, else 503. The details (versions,
    addresses, counts) go only to the operator (API key) or when no key is set; others get
    each component's ok."""
    services = request.app[SERVICES]
    healthy, details = await services.health.check()
    if services.settings.api_key and not request[OPERATOR]:
        details = {name: {"ok": part.get("ok", False)} for name, part in details.items()}
    return web.json_response({"ok": healthy, **details}, status=200 if healthy else 503)


def _sse(payload: dict) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


async def chat(request: web.Request) -> web.StreamResponse:
    """One text-only turn with the avatar's persona, streamed as server-sent events."""
    services = request.app[SERVICES]
    body = await read_json_object(request)
    room = validate_room(body["room"]) if body.get("room") is not None else None
    message = validate_message(body.get("message"))
    history = validate_history(body.get("history"))
    if services.chat_slots.locked():
        raise ApiError(
            429,
            "chat_busy",
            "the text chat is answering someone else; live rooms keep the "
            "rest of the language model",
            headers={"Retry-After": str(CHAT_BUSY_RETRY_S)},
        )
    if not request[OPERATOR]:
        try:
            services.limits.admit_chat(request.remote or "")
        except RateLimited as exc:
            raise _rate_limited(exc) from None
    async with services.chat_slots:
        return await _stream_chat(request, services, room=room, message=message, history=history)


async def _stream_chat(
    request: web.Request, services, *, room: str | None, message: str, history: list
) -> web.StreamResponse:
    """The chat turn as server-sent events, within one deadline of AVATAR_CHAT_MAX_S."""
    # One deadline for the whole turn, the wait for the model's first answer included.
    deadline = asyncio.get_running_loop().time() + services.settings.chat_max_s
    try:
        async with asyncio.timeout_at(deadline):
            deltas = await services.chat.reply(message=message, history=history, user=room)
    except ChatUnavailable as exc:
        raise ApiError(503, "llm_unavailable", str(exc), headers={"Retry-After": "5"}) from None
    except TimeoutError:
        raise ApiError(
            503,
            "llm_busy",
            "the language model did not start answering in time",
            headers={"Retry-After": "5"},
        ) from None
    response = web.StreamResponse(
        headers={"Content-Type": SSE_CONTENT_TYPE, "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    text = []
    try:
        try:
            async with asyncio.timeout_at(deadline):
                async for delta in deltas:
                    text.append(delta)
                    await response.write(_sse({"delta": delta}))
        # The status line is sent: report a failure in the stream. openai raises APIError for
        # everything mid-stream, transport errors (its httpx2 client's) as APIConnectionError
        # and APITimeoutError (openai._streaming.AsyncStream._iter_events).
        except openai.APIError as exc:
            logger.bind(room=room).warning("chat stream failed: {!r}", exc)
            await response.write(_sse({"error": "llm_stream_failed", "detail": str(exc)}))
        except TimeoutError:
            await response.write(
                _sse(
                    {
                        "error": "chat_time_limit",
                        "detail": "the reply took too long and was cut",
                        "text": "".join(text),
                    }
                )
            )
        else:
            await response.write(_sse({"done": True, "text": "".join(text)}))
        await response.write_eof()
    except ConnectionResetError:
        logger.bind(room=room).info("chat client went away")
    finally:
        await deltas.aclose()
    logger.bind(room=room, chars=sum(map(len, text))).info("chat turn streamed")
    return response


async def livekit_webhook(request: web.Request) -> web.Response:
    """LiveKit's signed room events: check the room's avatar now, not at the next periodic check."""
    services = request.app[SERVICES]
    auth = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    try:
        services.webhook_guard.check_sender(request.remote)
    except WebhookRefused as exc:
        raise ApiError(403, "webhook_refused", str(exc)) from None
    body = await request.read()  # past the body limit: 413 (before the signature)
    try:
        event = services.webhooks.receive(body.decode(), auth)
    except Exception as exc:  # WebhookReceiver raises bare Exception for a bad signature or hash
        raise ApiError(401, "invalid_webhook", f"webhook signature rejected: {exc}") from None
    try:
        services.webhook_guard.check_event(event.id, event.created_at)
    except WebhookRefused as exc:
        raise ApiError(409, "webhook_replayed", str(exc)) from None
    room = event.room.name
    if event.event in ROOM_EVENTS:
        try:
            await services.keeper.check(room)
        except LiveKitUnavailable:
            pass  # logged; the periodic check tries again
    logger.bind(room=room, webhook_event=event.event).debug("livekit webhook")
    return web.json_response({"ok": True})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=OPENAPI_PATH.read_bytes(), content_type="application/json")


def setup_api_routes(app: web.Application, settings: TokenServerSettings) -> None:
    """Register the API routes (settings kept for the common route-setup signature)."""
    app.router.add_post(TOKEN_ROUTE, create_token)
    app.router.add_get(ROOMS_ROUTE, list_rooms)
    app.router.add_post(CHAT_ROUTE, chat)
    app.router.add_get(HEALTH_ROUTE, health)
    app.router.add_post(WEBHOOK_ROUTE, livekit_webhook)
    app.router.add_get(OPENAPI_ROUTE, openapi)
