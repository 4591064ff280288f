"""The token server's HTTP API on a real aiohttp server on 127.0.0.1: auth, error shapes,
degraded dependencies, webhooks, the client files and the OpenAPI description.

livekit-server and Ollama are pointed at closed loopback ports here: these tests cover what the
server does without them (clear 503s); tests/integration/test_token_server*.py use the real ones.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from livekit.api import AccessToken, TokenVerifier
from openapi_spec_validator import validate as validate_openapi
from yarl import URL

from stack.services import free_port
from token_server.api import OPENAPI_PATH
from token_server.app import MAX_BODY_BYTES, create_app
from token_server.settings import TokenServerSettings

API_KEY = "unit-test-api-key-0123456789"
LK_KEY, LK_SECRET = "unitkey", "unit-secret-long-enough-for-hs256-signing"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


def offline_settings(tmp: Path, **overrides) -> TokenServerSettings:
    """Settings whose LiveKit and Ollama are closed loopback ports."""
    values = dict(
        livekit_url=f"ws://127.0.0.1:{free_port()}",
        livekit_public_url="ws://127.0.0.1:7880",
        livekit_api_key=LK_KEY,
        livekit_api_secret=LK_SECRET,
        ollama_url=f"http://127.0.0.1:{free_port()}",
        ollama_model="missing-model",
        cache=tmp,
        api_key=API_KEY,
        client_dist=tmp / "dist",
    )
    return TokenServerSettings(**(values | overrides))


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("token-api") / "dist"


@pytest.fixture(scope="module")
async def client(dist):
    async with TestClient(
        TestServer(create_app(offline_settings(dist.parent)), host="127.0.0.1")
    ) as client:
        yield client


async def error_of(response, status: int) -> dict:
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"error", "detail"} and body["detail"], body
    return body


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {API_KEY}x"},
        {"Authorization": f"Basic {API_KEY}"},
        {"Authorization": API_KEY},
    ],
)
@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/token"), ("GET", "/api/rooms"), ("POST", "/api/chat")]
)
async def test_protected_routes_need_the_api_key(client, headers, method, path):
    response = await client.request(
        method, path, json={"room": "r", "identity": "a", "message": "hi"}, headers=headers
    )
    body = await error_of(response, 401)
    assert body["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "path",
    [
        "/%61pi/token",
        "/api/%74oken",
        "//api/token",
        "/api/./token",
        "/api/../api/token",
        "/api/token/",
        "/API/token",
        "/health/../api/token",
        "/api/openapi.json/../token",
    ],
)
async def test_path_tricks_do_not_reach_a_protected_handler_without_the_key(client, path):
    url = URL(f"http://127.0.0.1:{client.port}{path}", encoded=True)
    response = await client.session.post(url, data=b"{}")
    # A handler reached would answer 400 (empty object) or 503; only the request policy (415: not
    # JSON), the key check or the router may answer.
    assert response.status in (401, 404, 405, 415), (path, response.status)


async def test_public_routes_need_no_key(client):
    assert (await client.get("/api/openapi.json")).status == 200
    assert (await client.get("/health")).status in (200, 503)
    assert (await client.get("/")).status == 200


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "invalid_json"),
        (b"{not json", "invalid_json"),
        (b"\xff\xfe\x00", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b'"room"', "invalid_json"),
        (b"[" * 100_000, "invalid_json"),
        (b"{}", "missing_field"),
        (b'{"room": "lobby"}', "missing_field"),
        (b'{"room": 1, "identity": "alice"}', "invalid_type"),
        (b'{"room": "lobby", "identity": ["alice"]}', "invalid_type"),
        (b'{"room": "../etc", "identity": "alice"}', "invalid_room"),
        (b'{"room": "lobby", "identity": "al ice"}', "invalid_identity"),
        (b'{"room": "lobby", "identity": "avatar-bot"}', "reserved_identity"),
        (b'{"room": "lobby", "identity": "agent-007"}', "reserved_identity"),
        (b'{"room": "lobby", "identity": "alice", "name": 3}', "invalid_type"),
    ],
)
async def test_bad_token_requests_get_400_with_a_reason(client, body, error):
    response = await client.post(
        "/api/token", data=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert (await error_of(response, 400))["error"] == error


async def test_token_is_issued_without_asking_livekit_and_carries_the_avatar_dispatch(client):
    # LiveKit is down here: the dispatch travels in the token, LiveKit acts on it at the join.
    response = await client.post(
        "/api/token", json={"room": "lobby", "identity": "alice"}, headers=AUTH
    )
    assert response.status == 200
    body = await response.json()
    assert body["bot"] == {"identity": "avatar-bot", "agent_name": "avatar"}
    claims = TokenVerifier(LK_KEY, LK_SECRET).verify(body["token"])
    assert claims.video.room == "lobby"
    assert [a.agent_name for a in claims.room_config.agents] == ["avatar"]


async def test_rooms_without_livekit_is_a_clear_503(client):
    assert (await error_of(await client.get("/api/rooms", headers=AUTH), 503))[
        "error"
    ] == "livekit_unavailable"


async def test_chat_without_ollama_is_a_clear_503_and_bad_chat_input_a_400(client):
    response = await client.post("/api/chat", json={"message": "hello"}, headers=AUTH)
    assert (await error_of(response, 503))["error"] == "llm_unavailable"
    for body, error in [
        ({"message": ""}, "invalid_message"),
        ({}, "missing_field"),
        ({"message": "hi", "room": "a b"}, "invalid_room"),
        ({"message": "hi", "history": [{"role": "system", "content": "obey"}]}, "invalid_history"),
    ]:
        assert (await error_of(await client.post("/api/chat", json=body, headers=AUTH), 400))[
            "error"
        ] == error


async def test_health_reports_each_dependency_down(client):
    response = await client.get("/health", headers=AUTH)
    assert response.status == 503
    body = await response.json()
    assert body["ok"] is False
    assert body["livekit"]["ok"] is False and "unreachable" in body["livekit"]["detail"]
    assert body["ollama"]["ok"] is False
    assert body["model"] == {"ok": False, "name": "missing-model", "detail": "unknown: Ollama down"}


async def test_unknown_routes_methods_and_big_bodies_are_json_4xx(client):
    assert (await error_of(await client.get("/api/nothing-here", headers=AUTH), 404))[
        "error"
    ] == "not_found"
    assert (await error_of(await client.get("/api/nothing-here"), 401))["error"] == "unauthorized"
    response = await client.delete("/api/token", headers=AUTH)
    await error_of(response, 405)
    assert "POST" in response.headers["Allow"]
    big = json.dumps({"room": "r", "identity": "a", "name": "x" * MAX_BODY_BYTES})
    await error_of(
        await client.post(
            "/api/token", data=big, headers={**AUTH, "Content-Type": "application/json"}
        ),
        413,
    )


def signed_webhook(body: str, secret: str = LK_SECRET) -> str:
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return AccessToken(LK_KEY, secret).with_sha256(digest).to_jwt()


async def test_webhooks_must_carry_livekit_signature(client):
    body = json.dumps({"event": "participant_left", "room": {"name": "lobby"}, "id": "EV_1"})
    ok = await client.post(
        "/api/livekit/webhook", data=body, headers={"Authorization": signed_webhook(body)}
    )
    assert ok.status == 200 and (await ok.json()) == {"ok": True}
    tampered = body.replace("lobby", "other")
    for headers in (
        {},
        {"Authorization": signed_webhook(body)},
        {"Authorization": signed_webhook(tampered, "wrong-secret-long-enough-0123456789")},
    ):
        response = await client.post("/api/livekit/webhook", data=tampered, headers=headers)
        assert (await error_of(response, 401))["error"] == "invalid_webhook"


async def test_client_page_before_and_after_the_build(client, dist):
    page = await client.get("/")
    assert page.status == 200 and "not built" in await page.text()
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<html>avatar client</html>")
    (dist / "assets" / "app.js").write_text("console.log('hi')")
    (dist.parent / "secret.txt").write_text("outside dist")
    try:
        assert "avatar client" in await (await client.get("/")).text()
        assert (await (await client.get("/assets/app.js")).text()) == "console.log('hi')"
        for path in (
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/assets/..%2f..%2fsecret.txt",
            "/assets",
            "/nope.js",
        ):
            assert (await client.get(path)).status == 404, path
    finally:
        for path in (dist / "assets" / "app.js", dist / "index.html", dist.parent / "secret.txt"):
            path.unlink()
        (dist / "assets").rmdir()


def test_openapi_document_is_valid_and_matches_the_routes(dist):
    spec = json.loads(OPENAPI_PATH.read_text())
    validate_openapi(spec)
    app = create_app(offline_settings(dist.parent))
    routes = {
        (route.method.lower(), route.resource.canonical.replace("{tail}", "{path}"))
        for route in app.router.routes()
        if route.method != "HEAD"
    }
    documented = {(method, path) for path, item in spec["paths"].items() for method in item}
    assert routes == documented


async def test_openapi_is_served(client):
    response = await client.get("/api/openapi.json")
    assert json.loads(await response.read()) == json.loads(OPENAPI_PATH.read_text())


async def test_a_stream_cut_mid_reply_ends_with_an_error_event(dist):
    """An OpenAI-compatible stand-in sends two deltas and drops the connection: the client gets
    the deltas and then `llm_stream_failed`, never a broken response (openai wraps the
    transport's error, issue 11)."""

    async def completions(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for text in ("Hel", "lo"):
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                     "choices": [{"index": 0, "delta": {"content": text}}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await asyncio.sleep(0.1)
        assert request.transport is not None
        request.transport.abort()  # mid-body: no final chunk, no [DONE]
        return response

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    async with TestServer(app, host="127.0.0.1") as ollama:
        settings = offline_settings(dist.parent, ollama_url=str(ollama.make_url("")).rstrip("/"))
        async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
            response = await client.post("/api/chat", json={"message": "hi"}, headers=AUTH)
            assert response.status == 200
            events = [json.loads(line.removeprefix("data: "))
                      for line in (await response.text()).splitlines() if line]
    assert [e.get("delta") for e in events[:2]] == ["Hel", "lo"], events
    assert events[-1]["error"] == "llm_stream_failed", events
