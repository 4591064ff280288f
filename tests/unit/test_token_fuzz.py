"""Fuzzing every token-server endpoint with hypothesis on a real aiohttp server on 127.0.0.1.

Generated bodies (bytes, JSON of any shape, near-valid field objects), headers and paths must
never produce a 5xx other than a 503 for a dependency that is down (LiveKit and Ollama are closed
ports here), and a 503 must only follow input that passes validation. The server answers normally
afterwards.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from livekit.api import TokenVerifier
from yarl import URL

from bot.settings import DEFAULT_AGENT_NAME
from stack.services import free_port
from token_server.app import create_app
from token_server.settings import TokenServerSettings
from token_server.validation import (
    InvalidInput,
    validate_display_name,
    validate_history,
    validate_identity,
    validate_message,
    validate_room,
)

API_KEY = "fuzz-api-key-0123456789"
AUTH = f"Bearer {API_KEY}"
LIVEKIT_KEY, LIVEKIT_SECRET = "fuzzkey", "fuzz-secret-long-enough-for-hs256-signing"
DEPENDENCY_ERRORS = {"livekit_unavailable", "llm_unavailable", "at_capacity"}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
async def client(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("token-fuzz")
    server_settings = TokenServerSettings(
        livekit_url=f"ws://127.0.0.1:{free_port()}",
        livekit_public_url="ws://127.0.0.1:7880",
        livekit_api_key=LIVEKIT_KEY,
        livekit_api_secret=LIVEKIT_SECRET,
        ollama_url=f"http://127.0.0.1:{free_port()}",
        ollama_model="missing-model",
        cache=tmp,
        api_key=API_KEY,
        client_dist=tmp / "dist",
    )
    async with TestClient(TestServer(create_app(server_settings), host="127.0.0.1")) as client:
        yield client


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
slugish = st.text(alphabet="abcAZ09_-. /\\\x00é\n", min_size=0, max_size=70)
slugs = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,70}", fullmatch=True)
field_value = (
    json_values
    | slugish
    | slugs
    | st.sampled_from(["avatar-bot", "agent-x", "bot-1", "lobby", "alice"])
)
turns = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "role": st.sampled_from(["user", "assistant", "system", 1]),
            "content": field_value,
        },
    ),
    max_size=3,
)
field_objects = st.fixed_dictionaries(
    {},
    optional={
        "room": field_value,
        "identity": field_value,
        "name": field_value,
        "message": field_value,
        "history": turns | json_values,
        "event": field_value,
    },
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    field_objects.map(lambda v: json.dumps(v).encode()),
)
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
auth_headers = st.one_of(
    st.just(AUTH), st.just(None), header_text, header_text.map(lambda t: "Bearer " + t)
)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "text/plain",
        "application/json; charset=utf-16",
        "application/json; charset=no-such-codec",
        "multipart/form-data; boundary=x",
    ]
)


def headers_of(auth, content_type) -> dict[str, str]:
    headers = {}
    if auth is not None:
        headers["Authorization"] = auth
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


def valid_token_request(body: bytes) -> bool:
    try:
        fields = json.loads(body)
        validate_room(fields.get("room"))
        validate_identity(
            fields.get("identity"),
            bot_identity="avatar-bot",
            reserved_prefixes=("agent-", "bot-", "avatar-"),
        )
        validate_display_name(fields.get("name"), default="x")
    except (ValueError, AttributeError, InvalidInput):
        return False
    return True


def valid_chat_request(body: bytes) -> bool:
    try:
        fields = json.loads(body)
        if fields.get("room") is not None:
            validate_room(fields["room"])
        validate_message(fields.get("message"))
        validate_history(fields.get("history"))
    except (ValueError, AttributeError, InvalidInput):
        return False
    return True


async def check(response, *, valid=None) -> None:
    """No 5xx except a dependency 503 after valid input; every error is JSON {error, detail}."""
    status = response.status
    event(f"status {status}")
    if status >= 400:
        body = await response.json()
        assert set(body) == {"error", "detail"}, body
    if status >= 500:
        assert status == 503 and body["error"] in DEPENDENCY_ERRORS, (status, body)
        assert valid is not None and valid(), "a 503 after input that fails validation"


@FUZZ
@given(body=bodies, auth=auth_headers, content_type=content_types)
async def test_fuzz_token(client, body, auth, content_type):
    response = await client.post("/api/token", data=body, headers=headers_of(auth, content_type))
    await check(response, valid=lambda: valid_token_request(body))
    if response.status == 200:
        # Issued without asking LiveKit: the token itself carries the avatar's dispatch.
        assert valid_token_request(body)
        claims = TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET).verify((await response.json())["token"])
        assert [a.agent_name for a in claims.room_config.agents] == [DEFAULT_AGENT_NAME]


@FUZZ
@given(body=bodies, auth=auth_headers, content_type=content_types)
async def test_fuzz_chat(client, body, auth, content_type):
    response = await client.post("/api/chat", data=body, headers=headers_of(auth, content_type))
    await check(response, valid=lambda: valid_chat_request(body))


@FUZZ
@given(body=bodies, auth=auth_headers, content_type=content_types)
async def test_fuzz_webhook(client, body, auth, content_type):
    response = await client.post(
        "/api/livekit/webhook", data=body, headers=headers_of(auth, content_type)
    )
    await check(response)
    assert response.status == 401  # nothing generated here carries LiveKit's signature


@FUZZ
@given(auth=auth_headers, query=st.dictionaries(header_text, header_text, max_size=3))
async def test_fuzz_rooms_and_health(client, auth, query):
    rooms = await client.get("/api/rooms", headers=headers_of(auth, None), params=query)
    await check(rooms, valid=lambda: auth == AUTH)
    health = await client.get("/health", headers=headers_of(auth, None), params=query)
    assert (
        health.status == 503 and (await health.json())["ok"] is False
    )  # its dependencies are down here


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    segments=st.lists(st.text(max_size=12), min_size=1, max_size=4),
    prefix=st.sampled_from(["", "api/", "api/token/", "assets/", "../", "%2e%2e/"]),
    auth=auth_headers,
)
async def test_fuzz_paths_and_methods(client, method, segments, prefix, auth):
    path = "/" + prefix + "/".join(quote(s, safe="") for s in segments)
    url = URL(f"http://127.0.0.1:{client.port}{path}", encoded=True)
    response = await client.session.request(method, url, headers=headers_of(auth, None), data=b"{}")
    assert response.status < 500, (method, path, response.status)


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(min_size=1, max_size=200))
async def test_fuzz_raw_http(client, raw):
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(raw + b"\r\n\r\n")
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
    except (ConnectionError, TimeoutError):
        status_line = b""
    finally:
        writer.close()
    if status_line.startswith(b"HTTP/"):
        assert not status_line.split()[1].startswith(b"5"), status_line


async def test_server_is_healthy_after_fuzzing(client):
    assert (await client.get("/api/openapi.json")).status == 200
    response = await client.post(
        "/api/token", json={"room": "lobby", "identity": "agent-x"}, headers={"Authorization": AUTH}
    )
    assert response.status == 400 and (await response.json())["error"] == "reserved_identity"
    health = await (await client.get("/health", headers={"Authorization": AUTH})).json()
    assert health["ok"] is False and health["livekit"]["ok"] is False
