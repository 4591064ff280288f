"""The avatar on LiveKit's agent dispatch: real livekit-server, two real `python -m bot worker`
hosts (the real pipeline: Whisper, embedded voice, builtin face; Ollama is not needed for what is
judged here: the greeting, the video, who is in the room), and the real token server.

A person's token carries the room's dispatch; LiveKit gives each room's job to one worker; the
token server's BotKeeper asks LiveKit for a new job when one fails. Judged from outside: what a
LiveKit participant (tests/support/human.py) receives, and what LiveKit lists.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from livekit import api

from bot.settings import DEFAULT_AGENT_NAME, DEFAULT_IDENTITY
from stack.services import free_port
from tests.support.human import HumanParticipant
from tests.support.probe import level_dbfs
from tests.support.worker import WorkerProcess
from token_server.app import create_app
from token_server.services import SERVICES
from token_server.settings import TokenServerSettings

BOT = DEFAULT_IDENTITY
API_KEY = "integration-api-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
# Generous bounds for a loaded 2-core machine; the measured figures are printed.
JOIN_TIMEOUT_S = 120.0
REPLACE_TIMEOUT_S = 90.0
SPEECH_DBFS = -40.0


@pytest.fixture(scope="module")
def worker_env(livekit, whisper_model) -> dict[str, str]:
    return {
        "LIVEKIT_URL": livekit.url, "LIVEKIT_API_KEY": livekit.api_key,
        "LIVEKIT_API_SECRET": livekit.api_secret, "WHISPER_MODEL": whisper_model,
        "OLLAMA_URL": f"http://127.0.0.1:{free_port()}", "BOT_EMPTY_ROOM_GRACE_SECS": "1",
        "BOT_WORKER_IDLE_PROCESSES": "1", "LOGURU_LEVEL": "INFO",
        # Two worker hosts: each passes a room that comes right after its last one to the other.
        "BOT_WORKER_SPREAD_S": "3",
    }


class Hosts:
    """Two worker hosts, started again by `ready()` when a test killed or drained one."""

    def __init__(self, env: dict[str, str], logs: Path):
        self._env, self._logs = env, logs
        self.workers: list[WorkerProcess] = []
        self._started = 0

    def _new(self) -> WorkerProcess:
        self._started += 1
        log_path = self._logs / f"worker-{self._started}.log"
        return WorkerProcess(env=self._env, log_path=log_path).start()

    def ready(self) -> list[WorkerProcess]:
        self.workers = [w if w.exit_code() is None else self._new() for w in self.workers]
        self.workers += [self._new() for _ in range(2 - len(self.workers))]
        for worker in self.workers:
            worker.wait_registered()
        return self.workers

    def hosting(self, room: str) -> WorkerProcess | None:
        return next((w for w in self.workers if room in w.jobs()), None)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


@pytest.fixture(scope="module")
def hosts(worker_env, tmp_path_factory):
    hosts = Hosts(worker_env, tmp_path_factory.mktemp("workers"))
    yield hosts
    hosts.stop()


@pytest.fixture
def workers(hosts) -> list[WorkerProcess]:
    return hosts.ready()


@pytest.fixture(scope="module")
async def client(livekit):
    """The token server LiveKit sends its webhooks to, checking rooms every second."""
    settings = TokenServerSettings(
        livekit_url=livekit.url, livekit_public_url=livekit.url, livekit_api_key=livekit.api_key,
        livekit_api_secret=livekit.api_secret, api_key=API_KEY, room_check_s=1.0,
        ollama_url=f"http://127.0.0.1:{free_port()}", ollama_model="unused",
        cache=Path("/nonexistent"), client_dist=Path("/nonexistent"))
    app = create_app(settings)
    async with TestClient(TestServer(app, host="127.0.0.1", port=livekit.webhook_port)) as client:
        client.keeper = app[SERVICES].keeper
        yield client


async def get_token(client, room: str, identity: str) -> dict:
    response = await client.post("/api/token", json={"room": room, "identity": identity},
                                 headers=AUTH)
    assert response.status == 200, await response.text()
    return await response.json()


async def bots_in(admin, room: str) -> list[api.ParticipantInfo]:
    try:
        listed = await admin.room.list_participants(api.ListParticipantsRequest(room=room))
    except api.TwirpError:
        return []
    return [p for p in listed.participants if p.identity == BOT]


async def job_workers(admin, room: str) -> set[str]:
    """IDs of the workers running the room's avatar jobs, as LiveKit lists them."""
    return {job.state.worker_id for d in await admin.agent_dispatch.list_dispatch(room)
            for job in d.state.jobs if job.state.status == api.JobStatus.JS_RUNNING}


async def eventually(check, timeout: float, what: str):  # noqa: ASYNC109 (poll deadline)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


async def bot_publishing(admin, room: str) -> str | None:
    """The sid of the room's bot once it publishes its video track (LiveKit's view), else None.

    Judged from LiveKit's participant list, not from frames received here: on a loaded machine
    this process decodes late, and a frame of a killed bot can arrive after its replacement."""
    for bot in await bots_in(admin, room):
        if any(t.type == api.TrackType.VIDEO for t in bot.tracks):
            return bot.sid
    return None


def bot_speech(human: HumanParticipant) -> list[float]:
    return [t for t, who, a, _ in human.audio if who == BOT and level_dbfs(a) > SPEECH_DBFS]


@asynccontextmanager
async def person(client, room: str, identity: str):
    """A person in `room` who hears the bot (audio and data only: no video decoding here)."""
    token = await get_token(client, room, identity)
    async with HumanParticipant.connect(token["url"], token["token"], video=False) as human:
        yield human


async def test_racing_tokens_give_one_bot_per_room_spread_over_both_workers(workers, client, admin):
    rooms = ["race-a", "race-b", "race-c"]
    # Two people per room ask for tokens at once, all rooms together.
    tokens = await asyncio.gather(*(get_token(client, room, who)
                                    for room in rooms for who in ("p1", "p2")))
    assert all(t["bot"] == {"identity": BOT, "agent_name": DEFAULT_AGENT_NAME} for t in tokens)
    async with AsyncExitStack() as people:
        await asyncio.gather(*(people.enter_async_context(
            HumanParticipant.connect(t["url"], t["token"], video=False)) for t in tokens))
        for room in rooms:
            await eventually(lambda r=room: bot_publishing(admin, r), JOIN_TIMEOUT_S,
                             f"the bot publishing in {room}")
        await asyncio.sleep(3)  # a few keeper rounds later, still one each
        for room in rooms:
            assert len(await bots_in(admin, room)) == 1, room
            assert len(await job_workers(admin, room)) == 1, room
        placed = {room: next(iter(await job_workers(admin, room))) for room in rooms}
        print(f"rooms placed by LiveKit: {placed}; re-dispatched by the token server: "
              f"{client.keeper.redispatched}")
        assert len(set(placed.values())) == 2, f"all rooms on one worker: {placed}"
    # Three rooms in the same instant on two workers: each worker took one and passed the next
    # (BOT_WORKER_SPREAD_S); the room both passed on was dispatched again by the token server.
    assert client.keeper.redispatched <= 1


async def replaced(admin, room: str, old_sid: str, killed_at: float, what: str) -> float:
    """Seconds from the kill until another bot publishes in the room (one bot listed then)."""
    async def new_bot():
        sid = await bot_publishing(admin, room)
        return sid not in (None, old_sid)

    await eventually(new_bot, REPLACE_TIMEOUT_S, f"a new bot in {room}")
    seconds = time.monotonic() - killed_at
    print(f"{what} → a new bot publishing in the room: {seconds:.1f} s "
          f"(load average {os.getloadavg()[0]:.1f})")
    assert len(await bots_in(admin, room)) == 1
    return seconds


async def test_a_killed_job_gets_a_new_bot(workers, client, hosts, admin):
    async with person(client, "crash-job", "carol"):
        old_sid = await eventually(lambda: bot_publishing(admin, "crash-job"), JOIN_TIMEOUT_S,
                                   "the bot")
        os.kill(hosts.hosting("crash-job").jobs()["crash-job"], signal.SIGKILL)
        await replaced(admin, "crash-job", old_sid, time.monotonic(), "killed job process")
    assert client.keeper.redispatched >= 1


async def test_a_killed_worker_host_gets_its_rooms_new_bots(workers, client, hosts, admin):
    async with person(client, "crash-host", "dana"):
        old_sid = await eventually(lambda: bot_publishing(admin, "crash-host"), JOIN_TIMEOUT_S,
                                   "the bot")
        host = hosts.hosting("crash-host")
        other = next(w for w in workers if w is not host)
        host.kill_host()
        await replaced(admin, "crash-host", old_sid, time.monotonic(), "killed worker host")
        assert "crash-host" in other.jobs()


async def test_a_draining_worker_finishes_its_room_then_exits(workers, client, hosts, admin):
    async with person(client, "drain", "erin"):
        sid = await eventually(lambda: bot_publishing(admin, "drain"), JOIN_TIMEOUT_S, "the bot")
        host = hosts.hosting("drain")
        host.terminate()
        # While draining it keeps the room and takes no new one.
        await asyncio.sleep(4)
        assert host.exit_code() is None
        assert await bot_publishing(admin, "drain") == sid
        async with person(client, "drain-new", "finn"):
            await eventually(lambda: bot_publishing(admin, "drain-new"), JOIN_TIMEOUT_S, "a bot")
            assert "drain-new" not in host.jobs()
    # The room emptied: its bot leaves, then the worker exits cleanly.
    deadline = time.monotonic() + 60
    while host.exit_code() is None:
        assert time.monotonic() < deadline, "the drained worker did not exit"
        await asyncio.sleep(0.5)
    assert host.exit_code() == 0


async def test_greeting_comes_from_a_prewarmed_process(workers, client, hosts):
    asked_at = time.monotonic()
    async with person(client, "greet", "gus") as gus:
        await gus.wait_for(lambda: bot_speech(gus), JOIN_TIMEOUT_S, what="the greeting")
        # Printed, not asserted: the contract is ≤ 2 s on an unloaded 2-core machine, and this
        # one is shared (the load average is printed with it).
        greeting_s = bot_speech(gus)[0] - asked_at
        print(f"token → first bot audio at the participant: {greeting_s:.2f} s "
              f"(load average {os.getloadavg()[0]:.1f})")
        host = hosts.hosting("greet")
        pid = host.jobs()["greet"]
        log = host.log()
        # The process had loaded its models before the job came.
        assert log.index(f"job process {pid} prewarmed") < log.index(f"in process {pid}: avatar")
