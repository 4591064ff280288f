"""Keeps an avatar in every room that has people, through LiveKit's agent dispatch API.

LiveKit dispatches the avatar once, when a person's token creates the room (the token's room
configuration). It does not dispatch again when that job fails (its process or its whole worker
host dies: the dispatch even goes on listing the job as running), nor when no worker was
registered at the moment the room was created. So the token server checks the rooms (every
AVATAR_ROOM_CHECK_S, and at once on LiveKit's participant webhooks): a room with a person in it
gets a new dispatch, which LiveKit gives to the least-loaded live worker, when its bot was there
and is gone, or when its dispatch found no worker, or when its job never brought a bot.

A killed bot stays listed in its room until LiveKit times its connection out (~20 s); the new
one is dispatched then.
"""

from __future__ import annotations

import asyncio
import time

from livekit import api
from loguru import logger

from bot.settings import REDISPATCH_METADATA
from token_server.rooms import LiveKitUnavailable, RoomDirectory

# How long after a dispatch its bot may still join: without a job, LiveKit is looking for a
# worker (it waits ~5 s); with one, the worker may first start and prewarm a job process, which
# takes long on a busy machine.
UNASSIGNED_JOIN_S = 15.0
ASSIGNED_JOIN_S = 120.0
NANOSECONDS = 1e9


def joining(dispatch: api.AgentDispatch, *, now: float) -> bool:
    """Whether the dispatch is young enough that its bot may still be joining."""
    limit = ASSIGNED_JOIN_S if dispatch.state.jobs else UNASSIGNED_JOIN_S
    return now - dispatch.state.created_at / NANOSECONDS < limit


class BotKeeper:
    """Dispatches the avatar again to rooms that have people but lost their bot."""

    def __init__(self, *, rooms: RoomDirectory, agent_name: str, check_s: float) -> None:
        self._rooms = rooms
        self._agent_name = agent_name
        self._check_s = check_s
        # One check at a time, so a webhook and the periodic round never both re-dispatch a room.
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._had_bot: set[str] = set()  # rooms whose current dispatch's bot has been seen
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
                rooms = await self._rooms.room_names()
                self._had_bot &= set(rooms)
                for room in rooms:
                    await self.check(room)
            except LiveKitUnavailable:
                pass  # already logged; the next round tries again

    async def check(self, room: str) -> bool:
        """Dispatch the avatar to `room` if it has people and lost its bot, or its bot never
        came; True if dispatched."""
        async with self._lock:
            participants = await self._rooms.participants(room)
            if any(p.is_bot for p in participants):
                self._had_bot.add(room)
                return False
            if not any(p.is_human for p in participants):
                return False
            if room not in self._had_bot:
                now = time.time()
                if any(joining(d, now=now) for d in await self._rooms.dispatches(room)
                       if d.agent_name == self._agent_name):
                    return False
            # Marked, so the worker LiveKit offers it to takes it (see bot.worker.JobOffers).
            await self._rooms.create_dispatch(room, self._agent_name,
                                              metadata=REDISPATCH_METADATA)
            self._had_bot.discard(room)
        self.redispatched += 1
        logger.bind(room=room).warning("this room has people but no avatar; asked LiveKit for one")
        return True
