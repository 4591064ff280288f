"""LiveKit join tokens for people (avatar_core.tokens); each carries the room's avatar dispatch."""

from __future__ import annotations

import datetime

from livekit.api import RoomAgentDispatch, RoomConfiguration

from avatar_core.tokens import STANDARD_KIND, join_token


class TokenMinter:
    """Signs room-scoped join tokens with the LiveKit API key and secret.

    The token's room configuration asks LiveKit to dispatch the avatar agent (`agent_name`) when
    the room is created by the first join: LiveKit sends one job for the room to a registered
    worker (`python -m bot worker`), so one bot per room is LiveKit's guarantee.
    """

    def __init__(self, *, api_key: str, api_secret: str, ttl_s: int, agent_name: str) -> None:
        self._api_key = api_key
        self._api_secret = api_secret
        self._ttl = datetime.timedelta(seconds=ttl_s)
        self._room_config = RoomConfiguration(agents=[RoomAgentDispatch(agent_name=agent_name)])

    def user_token(self, *, room: str, identity: str, name: str) -> str:
        """A short-lived token for a person (standard participant) in `room`."""
        return join_token(
            api_key=self._api_key,
            api_secret=self._api_secret,
            room=room,
            identity=identity,
            name=name,
            kind=STANDARD_KIND,
            ttl=self._ttl,
            room_config=self._room_config,
        )
