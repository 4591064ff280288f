"""Keeps an avatar in every room that has people, through LiveKit's agent dispatch API.

LiveKit dispatches the avatar once, when a person's token creates the room (the token's room
configuration). It does not dispatch again when that job fails (the job process or its whole
worker dies), nor when no worker was registered at that moment. So the token server checks the
rooms (every AVATAR_ROOM_CHECK_S, and at once on LiveKit's participant webhooks): a room with a
person in it and no dispatch job pending or running for the avatar gets a new dispatch, which
LiveKit gives to the least-loaded worker. The new bot joins under the same identity, so LiveKit
replaces a stale one still listed in the room.
"""

from __future__ import annotations

import asyncio
import time

from livekit import api
from loguru import logger

from token_server.rooms import LiveKitUnavailable, RoomDirectory

# Job states in which a dispatch still has (or is getting) its bot.
LIVE_JOB_STATES = (api.JobStatus.JS_PENDING, api.JobStatus.JS_RUNNING)
# A dispatch without any job yet is LiveKit still looking for a worker (it waits a few seconds
# for one); only after this long is it taken as lost.
UNASSIGNED_GRACE_S = 10.0


def has_live_job(dispatch: api.AgentDispatch, *, now: float) -> bool:
    """Whether `dispatch` has a pending or running job, or may still get its first one."""
    jobs = dispatch.state.jobs
    if not jobs:
        # created_at is in nanoseconds since the epoch.
        return now - dispatch.state.created_at / 1e9 < UNASSIGNED_GRACE_S
    return any(job.state.status in LIVE_JOB_STATES for job in jobs)


class BotKeeper:
    """Re-dispatches the avatar to rooms with people whose dispatch has no live job."""

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
        """Dispatch the avatar to `room` if it has people and no live job; True if dispatched."""
        async with self._lock:
            participants = await self._rooms.participants(room)
            if not any(p.is_human for p in participants):
                return False
            dispatches = [d for d in await self._rooms.dispatches(room)
                          if d.agent_name == self._agent_name]
            now = time.time()
            if any(has_live_job(d, now=now) for d in dispatches):
                return False
            for stale in dispatches:
                await self._rooms.delete_dispatch(room, stale.id)
            await self._rooms.create_dispatch(room, self._agent_name)
        self.redispatched += 1
        logger.bind(room=room).warning("the avatar's job in this room ended while people are in it;"
                                       " asked LiveKit for a new one")
        return True
