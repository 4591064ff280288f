"""Token server on the real livekit-server: what a person's token can and cannot do.

(The avatar's dispatch, one bot per room and its repair are tested with real workers in
test_workers.py.)
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from livekit import api, rtc

from stack.services import free_port
from tests.support.human import HumanParticipant
from token_server.app import create_app
from token_server.settings import TokenServerSettings

API_KEY = "integration-api-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
BOT = "avatar-bot"
# Slack on top of a deadline for a loaded 2-core machine (LiveKit propagation).
SLACK_S = 15.0


@pytest.fixture(scope="module")
async def main_server(livekit):
    settings = TokenServerSettings(
        livekit_url=livekit.url, livekit_public_url=livekit.url, livekit_api_key=livekit.api_key,
        livekit_api_secret=livekit.api_secret, api_key=API_KEY, bot_identity=BOT,
        ollama_url=f"http://127.0.0.1:{free_port()}", ollama_model="unused",
        cache=Path("/nonexistent"))
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        yield client, None


async def get_token(client, room: str, identity: str) -> dict:
    response = await client.post(
        "/api/token",
        json={"room": room, "identity": identity, "name": identity.title()},
        headers=AUTH,
    )
    assert response.status == 200, await response.text()
    return await response.json()


async def eventually(check, timeout: float, what: str):  # noqa: ASYNC109 (poll deadline)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


async def _changed(info, identity: str) -> bool:
    current = await info(identity)
    return current.name == "Avatar" and current.attributes.get("avatar.role") == "forged"


async def test_room_token_cannot_enter_another_room_or_act_as_admin(
    main_server, admin, livekit, make_token
):
    client, _ = main_server
    token = await get_token(client, "sec-a", "kim")
    async with HumanParticipant.connect(token["url"], token["token"]) as kim:
        assert kim.room.name == "sec-a"
        other = await admin.room.list_participants(api.ListParticipantsRequest(room="sec-a"))
        assert "kim" in {p.identity for p in other.participants}

        # Rewriting the room claim breaks the signature: LiveKit refuses the join.
        header, payload, signature = token["token"].split(".")
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["video"]["room"] = "sec-b"
        forged = ".".join(
            [
                header,
                base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode(),
                signature,
            ]
        )
        with pytest.raises(rtc.ConnectError):
            await rtc.Room().connect(livekit.url, forged)

        # The user's own token against the RoomService: every admin call is refused.
        async with api.LiveKitAPI.with_token(token["token"], livekit.http_url) as as_kim:
            calls = {
                "list_rooms": as_kim.room.list_rooms(api.ListRoomsRequest()),
                "list_participants": as_kim.room.list_participants(
                    api.ListParticipantsRequest(room="sec-a")
                ),
                "remove_bot": as_kim.room.remove_participant(
                    api.RoomParticipantIdentity(room="sec-a", identity=BOT)
                ),
                "rename_self_as_bot": as_kim.room.update_participant(
                    api.UpdateParticipantRequest(room="sec-a", identity="kim", name="Avatar")
                ),
                "create_room": as_kim.room.create_room(api.CreateRoomRequest(name="sec-b")),
                "delete_room": as_kim.room.delete_room(api.DeleteRoomRequest(room="sec-a")),
            }
            for name, call in calls.items():
                with pytest.raises(api.TwirpError) as refused:
                    await call
                assert refused.value.status in (401, 403), name

        # Nor can it rename itself or set attributes to pass as the bot. LiveKit does not
        # answer such a request with an error, so a control participant whose token does allow it
        # makes the same change: once the control's change shows, the user's must still be absent.
        control_token = make_token("sec-a", "control", can_update_own_metadata=True)
        async with HumanParticipant.connect(livekit.url, control_token) as control:
            for participant in (kim.room.local_participant, control.room.local_participant):
                await participant.set_attributes({"avatar.role": "forged"})
                await participant.set_name("Avatar")

            async def info(identity: str) -> api.ParticipantInfo:
                return await admin.room.get_participant(
                    api.RoomParticipantIdentity(room="sec-a", identity=identity)
                )

            await eventually(
                lambda: _changed(info, "control"), SLACK_S, "the control participant's own update"
            )
            kim_info = await info("kim")
            assert kim_info.name == "Kim" and "avatar.role" not in kim_info.attributes

    for identity in (BOT, "agent-helper", "bot-2"):
        response = await client.post(
            "/api/token", json={"room": "sec-a", "identity": identity}, headers=AUTH
        )
        assert response.status == 400 and (await response.json())["error"] == "reserved_identity"
    assert (
        await client.post("/api/token", json={"room": "sec-a", "identity": "kim"})
    ).status == 401
    wrong = {"Authorization": "Bearer not-the-key"}
    assert (
        await client.post("/api/token", json={"room": "sec-a", "identity": "kim"}, headers=wrong)
    ).status == 401
