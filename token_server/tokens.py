"""LiveKit join tokens for people (livekit-api); each carries the room's avatar dispatch."""

from __future__ import annotations

import datetime

from livekit.api import AccessToken, RoomAgentDispatch, RoomConfiguration, VideoGrants


def room_grants(room: str) -> VideoGrants:
    """Join one room; publish, subscribe and send data. No admin, create, record, hidden rights."""
    return VideoGrants(
        room_join=True,
        room=room,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=True,
        can_update_own_metadata=False,
    )


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
        return (
            AccessToken(self._api_key, self._api_secret)
            .with_identity(identity)
            .with_name(name)
            .with_kind("standard")
            .with_ttl(self._ttl)
            .with_grants(room_grants(room))
            .with_room_config(self._room_config)
            .to_jwt()
        )
