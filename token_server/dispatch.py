"""Keeps an avatar in every room that has people, through LiveKit's agent dispatch API.

LiveKit dispatches the avatar once, when a person's token creates the room (the token's room
configuration). It does not dispatch again when that job fails (its process or its whole worker
host dies: the dispatch even goes on listing the job as running), nor when no worker was
registered at the moment the room was created. So the token server checks the rooms (every
AVATAR_ROOM_CHECK_S, and at once on LiveKit's participant webhooks): a room with a person in it,
without the avatar and without a dispatch young enough for its bot to be still on the way, gets
a new dispatch, which LiveKit gives to the least-loaded live worker.

A killed bot stays listed in its room until LiveKit times its connection out (~20 s); the new
one is dispatched then.
"""

from __future__ import annotations

import asyncio
import time

from livekit import api
from loguru import logger

from token_server.rooms import LiveKitUnavailable, RoomDirectory

# How long a dispatched bot may take to join before its dispatch is taken as lost: LiveKit waits
# up to ~5 s for a worker, then a job process may have to be started and prewarmed.
DISPATCH_JOIN_S = 20.0
NANOSECONDS = 1e9


def joining(dispatch: api.AgentDispatch, *, now: float) -> bool:
    """Whether the dispatch is young enough that its bot may still be joining."""
    return now - dispatch.state.created_at / NANOSECONDS < DISPATCH_JOIN_S


class BotKeeper:
    """Dispatches the avatar again to rooms that have people but lost their bot."""

    def __init__(self, *, rooms: RoomDirectory, agent_name: str, check_s: float) -> None:
        self._rooms = rooms
        self._agent_name = agent_name
        self._check_s = check_s
        # One check at a time, so a webhook and the periodic round never both re-dispatch a room.
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self.redispatched = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="bot-keeper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._check_s)
            try:
                for room in await self._rooms.room_names():
                    await self.check(room)
            except LiveKitUnavailable:
                pass  # already logged; the next round tries again

    async def check(self, room: str) -> bool:
        """Dispatch the avatar to `room` if it has people, no bot and no bot on its way; True if
        dispatched."""
        async with self._lock:
            participants = await self._rooms.participants(room)
            if not any(p.is_human for p in participants) or any(p.is_bot for p in participants):
                return False
            now = time.time()
            if any(joining(d, now=now) for d in await self._rooms.dispatches(room)
                   if d.agent_name == self._agent_name):
                return False
            await self._rooms.create_dispatch(room, self._agent_name)
        self.redispatched += 1
        logger.bind(room=room).warning("this room has people but no avatar; asked LiveKit for one")
        return True
