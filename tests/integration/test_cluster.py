"""The avatar on a LiveKit cluster on one machine: Redis (Debian's redis-server), two real
livekit-server nodes sharing it, two real `python -m bot worker` hosts (one registered with each
node) and the real token server (webhooks from both nodes).

Rooms spread over both workers, whichever node hosts them; killing one worker host puts a new
bot in each of its rooms. Judged from outside, as in test_workers: LiveKit's participant and
dispatch lists, asked of either node.
"""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from livekit import api

from stack import binaries, services
from stack.settings import DEV_API_KEY, DEV_API_SECRET
from tests.integration.test_workers import (
    API_KEY,
    JOIN_TIMEOUT_S,
    REPLACE_TIMEOUT_S,
    bot_publishing,
    bots_in,
    eventually,
    get_token,
    job_workers,
)
from tests.support.human import HumanParticipant
from tests.support.redis import redis_binary, redis_server
from tests.support.worker import WorkerProcess
from token_server.app import create_app
from token_server.services import SERVICES
from token_server.settings import TokenServerSettings

ROOMS = ("cluster-a", "cluster-b", "cluster-c")


@dataclass(frozen=True)
class Node:
    url: str
    http_url: str
    server: services.ManagedServer


@pytest.fixture(scope="module")
def redis(logs_dir):
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server is not installed and apt-get could not install it "
                    "(`python -m stack setup --browser` installs it)")
    server, address = redis_server(binary, log_path=logs_dir / "redis.log")
    yield address
    server.stop()


@pytest.fixture(scope="module")
def webhook_port() -> int:
    return services.free_port()


@pytest.fixture(scope="module")
def nodes(redis, stack_settings, logs_dir, webhook_port):
    """Two livekit-server nodes of one cluster (shared Redis), each with its own ports."""
    binary = binaries.livekit_server(stack_settings.cache)
    started: list[Node] = []
    try:
        for name in ("node-1", "node-2"):
            port = services.free_port()
            server = services.livekit_server(
                binary, port=port, tcp_port=services.free_port(),
                udp_port=services.free_udp_port(), api_key=DEV_API_KEY,
                api_secret=DEV_API_SECRET, log_path=logs_dir / f"livekit-{name}.log",
                webhook_urls=[f"http://127.0.0.1:{webhook_port}/api/livekit/webhook"],
                redis_address=redis).start()
            started.append(Node(url=f"ws://127.0.0.1:{port}", http_url=f"http://127.0.0.1:{port}",
                                server=server))
        yield started
    finally:
        for node in started:
            node.server.stop()


@pytest.fixture(scope="module")
def workers(nodes, whisper_model, tmp_path_factory):
    """One worker host registered with each node; passes rooms on as the README's cluster
    section says to set it (BOT_WORKER_SPREAD_S)."""
    logs = tmp_path_factory.mktemp("cluster-workers")
    started = []
    try:
        for i, node in enumerate(nodes, start=1):
            env = {
                "LIVEKIT_URL": node.url, "LIVEKIT_API_KEY": DEV_API_KEY,
                "LIVEKIT_API_SECRET": DEV_API_SECRET, "WHISPER_MODEL": whisper_model,
                "OLLAMA_URL": f"http://127.0.0.1:{services.free_port()}",
                "BOT_EMPTY_ROOM_GRACE_SECS": "1", "BOT_WORKER_SPREAD_S": "3",
                "LOGURU_LEVEL": "INFO",
            }
            started.append(WorkerProcess(env=env, log_path=logs / f"worker-{i}.log").start())
        for worker in started:
            worker.wait_registered()
        yield started
    finally:
        for worker in started:
            worker.stop()


@pytest.fixture(scope="module")
async def admins(nodes):
    """A LiveKit API client per node: a cluster answers for every room on either."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(
            api.LiveKitAPI(n.http_url, DEV_API_KEY, DEV_API_SECRET)) for n in nodes]


@pytest.fixture(scope="module")
async def client(nodes, webhook_port):
    """One token server, talking to the first node; both nodes send it their webhooks."""
    settings = TokenServerSettings(
        livekit_url=nodes[0].url, livekit_public_url=nodes[0].url, livekit_api_key=DEV_API_KEY,
        livekit_api_secret=DEV_API_SECRET, api_key=API_KEY, room_check_s=1.0,
        ollama_url=f"http://127.0.0.1:{services.free_port()}", ollama_model="unused",
        cache=Path("/nonexistent"), client_dist=Path("/nonexistent"))
    app = create_app(settings)
    async with TestClient(TestServer(app, host="127.0.0.1", port=webhook_port)) as client:
        client.keeper = app[SERVICES].keeper
        yield client


def host_of(workers: list[WorkerProcess], room: str) -> WorkerProcess | None:
    return next((w for w in workers if room in w.jobs()), None)


async def test_rooms_spread_over_both_workers_and_a_killed_worker_is_replaced(
        nodes, workers, admins, client):
    admin, other_admin = admins
    async with AsyncExitStack() as people:
        # A person per room, joining one node or the other in turn: the cluster places each room
        # on a node and routes the other node's signalling there.
        for i, room in enumerate(ROOMS):
            token = await get_token(client, room, f"person-{i}")
            url = nodes[i % 2].url
            await people.enter_async_context(
                HumanParticipant.connect(url, token["token"], video=False))
        for room in ROOMS:
            await eventually(lambda r=room: bot_publishing(admin, r), JOIN_TIMEOUT_S,
                             f"the bot publishing in {room}")
        placed = {room: next(iter(await job_workers(admin, room))) for room in ROOMS}
        for room in ROOMS:
            # Either node lists the same single bot: one cluster.
            assert len(await bots_in(admin, room)) == 1, room
            assert len(await bots_in(other_admin, room)) == 1, room
        print(f"rooms placed by LiveKit over the cluster: {placed}; re-dispatched by the token "
              f"server: {client.keeper.redispatched}")
        assert len(set(placed.values())) == 2, f"all rooms on one worker: {placed}"

        # One worker host dies (SIGKILL to its whole process group).
        victim = max(workers, key=lambda w: len([r for r in ROOMS if host_of([w], r)]))
        survivor = next(w for w in workers if w is not victim)
        orphans = [room for room in ROOMS if host_of([victim], room)]
        old = {room: await bot_publishing(admin, room) for room in orphans}
        killed_at = time.monotonic()
        victim.kill_host()

        async def replaced(room: str) -> float:
            async def new_bot():
                sid = await bot_publishing(admin, room)
                return sid not in (None, old[room])

            await eventually(new_bot, REPLACE_TIMEOUT_S, f"a new bot in {room}")
            return time.monotonic() - killed_at

        seconds = await asyncio.gather(*(replaced(room) for room in orphans))
        print(f"killed worker host with {len(orphans)} room(s) → a new bot publishing in each: "
              + ", ".join(f"{s:.1f} s" for s in seconds)
              + f" (load average {os.getloadavg()[0]:.1f})")
        for room in orphans:
            assert len(await bots_in(admin, room)) == 1, room
            assert room in survivor.jobs(), room
