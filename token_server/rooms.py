"""LiveKit rooms, their participants and their agent dispatches, through LiveKit's server APIs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
from livekit import api
from loguru import logger

from avatar_core.identity import is_agent_identity

NOT_FOUND = "not_found"
REQUEST_TIMEOUT_S = 5.0
T = TypeVar("T")


class LiveKitUnavailable(RuntimeError):
    """livekit-server could not be reached or refused the server's credentials."""


@dataclass(frozen=True, kw_only=True)
class ParticipantView:
    """One participant as the control plane sees it."""

    identity: str
    name: str
    kind: str
    is_bot: bool
    is_human: bool

    def as_json(self) -> dict:
        return {
            "identity": self.identity,
            "name": self.name,
            "kind": self.kind,
            "is_bot": self.is_bot,
        }


@dataclass(frozen=True, kw_only=True)
class RoomView:
    """One LiveKit room with its participants."""

    name: str
    participants: list[ParticipantView]


class RoomDirectory:
    """Asks livekit-server which rooms exist and who is in them (the truth across machines)."""

    def __init__(
        self,
        *,
        url: str,
        api_key: str,
        api_secret: str,
        bot_identity: str,
        reserved_prefixes: tuple[str, ...],
    ) -> None:
        self._url = url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
        self._api_key = api_key
        self._api_secret = api_secret
        self._bot_identity = bot_identity
        self._reserved_prefixes = reserved_prefixes
        self._api: api.LiveKitAPI | None = None

    async def start(self) -> None:
        """Open the HTTP session (needs a running event loop)."""
        self._api = api.LiveKitAPI(
            self._url,
            self._api_key,
            self._api_secret,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
        )

    async def aclose(self) -> None:
        if self._api is not None:
            await self._api.aclose()
            self._api = None

    def _view(self, info: api.ParticipantInfo) -> ParticipantView:
        is_agent = info.kind == api.ParticipantInfo.Kind.AGENT or is_agent_identity(
            info.identity, bot_identity=self._bot_identity, prefixes=self._reserved_prefixes
        )
        return ParticipantView(
            identity=info.identity,
            name=info.name,
            kind=api.ParticipantInfo.Kind.Name(info.kind).lower(),
            is_bot=info.identity == self._bot_identity,
            is_human=not is_agent,
        )

    async def _request(self, what: str, call: Awaitable[T]) -> T:
        """Await one RoomService call; a server unreachable or refusing: LiveKitUnavailable."""
        try:
            return await call
        except api.TwirpError as exc:
            if exc.code == NOT_FOUND:
                raise
            detail = f"livekit-server refused {what}: {exc.message}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            detail = f"livekit-server unreachable at {self._url} while {what}: {reason}"
        logger.warning(detail)
        raise LiveKitUnavailable(detail)

    async def participants(self, room: str) -> list[ParticipantView]:
        """Participants of `room`; empty when the room does not exist."""
        assert self._api is not None, "RoomDirectory.start() not called"
        request = api.ListParticipantsRequest(room=room)
        try:
            response = await self._request(
                "listing participants", self._api.room.list_participants(request)
            )
        except api.TwirpError:  # not_found: no such room (yet)
            return []
        return [self._view(p) for p in response.participants]

    async def room_names(self) -> list[str]:
        """Names of the active rooms (also the health probe: LiveKit up and our keys accepted)."""
        assert self._api is not None, "RoomDirectory.start() not called"
        try:
            response = await self._request(
                "listing rooms", self._api.room.list_rooms(api.ListRoomsRequest())
            )
        except api.TwirpError as exc:
            raise LiveKitUnavailable(f"livekit-server has no room list: {exc.message}") from exc
        return [r.name for r in response.rooms]

    async def rooms(self) -> list[RoomView]:
        """All active rooms with their participants."""
        names = await self.room_names()
        listed = await asyncio.gather(*(self.participants(name) for name in names))
        return [
            RoomView(name=name, participants=people)
            for name, people in zip(names, listed, strict=True)
        ]

    async def dispatches(self, room: str) -> list[api.AgentDispatch]:
        """The agent dispatches of `room` with their jobs' states."""
        assert self._api is not None, "RoomDirectory.start() not called"
        return await self._request(
            "listing dispatches", self._api.agent_dispatch.list_dispatch(room)
        )

    async def create_dispatch(self, room: str, agent_name: str, *, metadata: str = "") -> None:
        """Ask LiveKit to dispatch `agent_name` to `room` (to a registered worker, chosen by
        load); the job carries `metadata`."""
        assert self._api is not None, "RoomDirectory.start() not called"
        request = api.CreateAgentDispatchRequest(room=room, agent_name=agent_name,
                                                 metadata=metadata)
        await self._request(
            "creating a dispatch", self._api.agent_dispatch.create_dispatch(request)
        )
