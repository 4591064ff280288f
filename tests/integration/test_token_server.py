"""Token server on the real livekit-server: one bot per room, release after the grace period,
restart after a kill, the per-machine cap, several instances, and what a user token cannot do.

The bot here is the STAND-IN participant (token_server_standin_bot.py: joins with the token the
supervisor hands it and publishes a small audio and video track), run through AVATAR_BOT_COMMAND
exactly as `python -m bot` would be. LiveKit is real and sends its webhooks to the first instance.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from livekit import api, rtc

from stack.services import free_port
from tests.support.human import HumanParticipant
from token_server.app import create_app
from token_server.services import SERVICES
from token_server.settings import TokenServerSettings

STANDIN = Path(__file__).with_name("token_server_standin_bot.py")
API_KEY = "integration-api-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
BOT = "avatar-bot"
GRACE_S = 6.0
# Slack on top of a deadline for a loaded 2-core machine (process start, LiveKit propagation).
SLACK_S = 15.0


@pytest.fixture(scope="module")
def standin_pids(tmp_path_factory):
    pids = tmp_path_factory.mktemp("standin-pids")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STANDIN_PID_DIR", str(pids))
        yield pids


@pytest.fixture(scope="module")
async def admin(livekit):
    async with api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret) as lkapi:
        yield lkapi


@asynccontextmanager
async def token_server(livekit, *, port: int | None = None, **overrides):
    settings = TokenServerSettings(
        **(
            {
                "livekit_url": livekit.url,
                "livekit_public_url": livekit.url,
                "livekit_api_key": livekit.api_key,
                "livekit_api_secret": livekit.api_secret,
                "api_key": API_KEY,
                "bot_identity": BOT,
                "bot_command": (sys.executable, str(STANDIN)),
                "max_bots": 3,
                "bot_grace_s": GRACE_S,
                "bot_backoff_s": 0.3,
                "bot_backoff_max_s": 2.0,
                "room_check_s": 0.5,
                "ollama_url": f"http://127.0.0.1:{free_port()}",
                "ollama_model": "unused",
                "cache": Path("/nonexistent"),
            }
            | overrides
        )
    )
    app = create_app(settings)
    async with TestClient(TestServer(app, host="127.0.0.1", port=port or free_port())) as client:
        yield client, app[SERVICES].supervisor


@pytest.fixture(scope="module")
async def main_server(livekit, standin_pids):
    """The instance LiveKit sends webhooks to; its periodic check is slow, so release is webhook-driven."""
    async with token_server(livekit, port=livekit.webhook_port, room_check_s=120.0) as served:
        yield served


async def get_token(client, room: str, identity: str) -> dict:
    response = await client.post(
        "/api/token", json={"room": room, "identity": identity, "name": identity.title()}, headers=AUTH
    )
    assert response.status == 200, await response.text()
    return await response.json()


async def bots_in(admin, room: str) -> list[api.ParticipantInfo]:
    try:
        listed = await admin.room.list_participants(api.ListParticipantsRequest(room=room))
    except api.TwirpError:
        return []
    return [p for p in listed.participants if p.identity == BOT]


async def eventually(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


def standin_processes(pids: Path, room: str) -> list[int]:
    return [int(p.name.rsplit(".", 1)[1]) for p in pids.glob(f"{room}.*") if p.suffix != ".exits"]


def standin_exit_reason(pids: Path, room: str, pid: int) -> str | None:
    exits = pids / f"{room}.exits"
    lines = exits.read_text().splitlines() if exits.exists() else []
    return next((why for p, why in (line.split(" ", 1) for line in lines) if int(p) == pid), None)


def sees_bot(human: HumanParticipant) -> bool:
    return any(i == BOT for _, i, _, _ in human.audio) and any(i == BOT for _, i, _ in human.video)


async def test_two_people_get_one_bot_which_leaves_after_the_grace_period(main_server, admin, livekit, standin_pids):
    client, supervisor = main_server
    first = await get_token(client, "duo", "alice")
    second = await get_token(client, "duo", "bob")
    assert first["bot"]["dispatch"] == "started" and second["bot"]["dispatch"] == "local"
    assert first["url"] == livekit.url
    async with (
        HumanParticipant.connect(first["url"], first["token"]) as alice,
        HumanParticipant.connect(second["url"], second["token"]) as bob,
    ):
        await alice.wait_for(lambda: sees_bot(alice), 30, what="alice hears and sees the bot")
        await bob.wait_for(lambda: sees_bot(bob), 30, what="bob hears and sees the bot")
        # What a person publishes arrives under their own identity, never the bot's.
        await bob.wait_for(lambda: any(i == "alice" for _, i, _, _ in bob.audio), 30, what="alice's microphone")
        assert len(await bots_in(admin, "duo")) == 1
        assert len(standin_processes(standin_pids, "duo")) == 1
        rooms = await (await client.get("/api/rooms", headers=AUTH)).json()
        duo = next(r for r in rooms["rooms"] if r["name"] == "duo")
        assert duo["humans"] == 2 and duo["bot"]["in_room"] and duo["bot"]["state"] == "running"
        pid = supervisor.bot("duo").pid
        # People present past the grace period: the bot stays (the grace timer found them and stopped).
        await asyncio.sleep(GRACE_S + 1)
        assert supervisor.bot("duo").pid == pid and len(await bots_in(admin, "duo")) == 1
    await eventually(lambda: _gone(supervisor, admin, "duo"), GRACE_S + SLACK_S, "bot released after both left")
    # The supervisor stopped it (SIGTERM), not LiveKit closing the emptied room; only the
    # participant_left webhooks can have started that: no grace timer was pending and the
    # periodic check (every 120 s) had not run.
    assert standin_exit_reason(standin_pids, "duo", pid) == "sigterm"
    assert standin_processes(standin_pids, "duo") == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def _changed(info, identity: str) -> bool:
    current = await info(identity)
    return current.name == "Avatar" and current.attributes.get("avatar.supervisor") == "forged"


async def _gone(supervisor, admin, room) -> bool:
    return supervisor.bot(room) is None and not await bots_in(admin, room)


async def test_a_killed_bot_is_back_within_seconds(main_server, admin):
    client, supervisor = main_server
    token = await get_token(client, "crash", "carol")
    async with HumanParticipant.connect(token["url"], token["token"]) as carol:
        await carol.wait_for(lambda: sees_bot(carol), 30, what="carol sees the bot")
        old_pid = supervisor.bot("crash").pid
        os.kill(old_pid, signal.SIGKILL)
        killed_at = time.monotonic()

        async def back() -> bool:
            bot = supervisor.bot("crash")
            return bot is not None and bot.pid not in (None, old_pid) and len(await bots_in(admin, "crash")) == 1

        await eventually(back, SLACK_S, "a new bot process in the room")
        await carol.wait_for(
            lambda: any(t > killed_at and i == BOT for t, i, _ in carol.video),
            SLACK_S,
            what="video from the restarted bot",
        )
        assert supervisor.bot("crash").restarts == 1


async def test_cap_gives_503_with_retry_after_and_nothing_else_breaks(livekit, admin, standin_pids):
    async with token_server(livekit, max_bots=1) as (client, supervisor):
        first = await get_token(client, "cap-a", "dave")
        full = await client.post("/api/token", json={"room": "cap-b", "identity": "erin"}, headers=AUTH)
        assert full.status == 503
        assert (await full.json())["error"] == "at_capacity"
        assert int(full.headers["Retry-After"]) >= 1
        assert supervisor.bot("cap-b") is None
        again = await get_token(client, "cap-a", "frank")  # the full machine still serves its room
        assert again["bot"]["dispatch"] == "local"
        async with HumanParticipant.connect(first["url"], first["token"]) as dave:
            await dave.wait_for(lambda: sees_bot(dave), 30, what="the capped room's bot")
        health = await (await client.get("/health")).json()
        assert health["bots"] == {"ok": True, "running": 1, "max": 1}


async def test_several_instances_keep_one_bot_per_room(livekit, admin, standin_pids):
    async with token_server(livekit) as (one, sup_one), token_server(livekit) as (two, sup_two):
        first = await get_token(one, "shared", "gina")
        async with HumanParticipant.connect(first["url"], first["token"]) as gina:
            await gina.wait_for(lambda: sees_bot(gina), 30, what="the bot of instance one")
            second = await get_token(two, "shared", "hank")
            assert second["bot"]["dispatch"] == "remote"
            assert sup_two.bot("shared") is None
            [bot] = await bots_in(admin, "shared")
            assert bot.attributes["avatar.supervisor"] == sup_one.instance_id

        # A race: both instances dispatch before either bot has joined.
        tokens = await asyncio.gather(get_token(one, "race", "ivy"), get_token(two, "race", "jack"))
        assert [t["bot"]["dispatch"] for t in tokens] == ["started", "started"]
        async with HumanParticipant.connect(tokens[0]["url"], tokens[0]["token"]):

            async def settled() -> bool:
                local = [s for s in (sup_one, sup_two) if s.bot("race") is not None]
                return len(local) == 1 and len(await bots_in(admin, "race")) == 1

            await eventually(settled, 30, "one supervisor and one bot left for the raced room")
            await asyncio.sleep(3 * 0.5)  # a few periodic checks later it is still one
            assert await settled()
            [winner] = [s for s in (sup_one, sup_two) if s.bot("race") is not None]
            [bot] = await bots_in(admin, "race")
            assert bot.attributes["avatar.supervisor"] == winner.instance_id


async def test_room_token_cannot_enter_another_room_or_act_as_admin(main_server, admin, livekit, make_token):
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
            [header, base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode(), signature]
        )
        with pytest.raises(rtc.ConnectError):
            await rtc.Room().connect(livekit.url, forged)

        # The user's own token against the RoomService: every admin call is refused.
        async with api.LiveKitAPI.with_token(token["token"], livekit.http_url) as as_kim:
            calls = {
                "list_rooms": as_kim.room.list_rooms(api.ListRoomsRequest()),
                "list_participants": as_kim.room.list_participants(api.ListParticipantsRequest(room="sec-a")),
                "remove_bot": as_kim.room.remove_participant(api.RoomParticipantIdentity(room="sec-a", identity=BOT)),
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

        # Nor can it rename itself or set the supervisor attribute to pass as the bot. LiveKit does not
        # answer such a request with an error, so a control participant whose token does allow it
        # makes the same change: once the control's change shows, the user's must still be absent.
        control_token = make_token("sec-a", "control", can_update_own_metadata=True)
        async with HumanParticipant.connect(livekit.url, control_token) as control:
            for participant in (kim.room.local_participant, control.room.local_participant):
                await participant.set_attributes({"avatar.supervisor": "forged"})
                await participant.set_name("Avatar")

            async def info(identity: str) -> api.ParticipantInfo:
                return await admin.room.get_participant(api.RoomParticipantIdentity(room="sec-a", identity=identity))

            await eventually(lambda: _changed(info, "control"), SLACK_S, "the control participant's own update")
            kim_info = await info("kim")
            assert kim_info.name == "Kim" and "avatar.supervisor" not in kim_info.attributes

    for identity in (BOT, "agent-helper", "bot-2"):
        response = await client.post("/api/token", json={"room": "sec-a", "identity": identity}, headers=AUTH)
        assert response.status == 400 and (await response.json())["error"] == "reserved_identity"
    assert (await client.post("/api/token", json={"room": "sec-a", "identity": "kim"})).status == 401
    wrong = {"Authorization": "Bearer not-the-key"}
    assert (await client.post("/api/token", json={"room": "sec-a", "identity": "kim"}, headers=wrong)).status == 401
