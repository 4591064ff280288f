"""LiveKit join tokens: the one minter of the bot's and people's tokens, so both carry the same
minimum grants (the token server's for people, `bot.token` for a bot started on its own)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from livekit.api import AccessToken, RoomConfiguration, VideoGrants

# LiveKit participant kinds: a person, or an agent (clients and other bots can tell it apart).
Kind = Literal["standard", "agent"]
AGENT_KIND: Kind = "agent"
STANDARD_KIND: Kind = "standard"


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


def join_token(
    *,
    api_key: str,
    api_secret: str,
    room: str,
    identity: str,
    name: str,
    kind: Kind,
    ttl: timedelta,
    grants: VideoGrants | None = None,
    room_config: RoomConfiguration | None = None,
) -> str:
    """A signed token to join `room` as `identity` shown as `name`; `grants` default to
    `room_grants(room)`, `room_config` (e.g. an agent dispatch) is added when given."""
    token = (
        AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_name(name)
        .with_kind(kind)
        .with_ttl(ttl)
        .with_grants(grants or room_grants(room))
    )
    if room_config is not None:
        token = token.with_room_config(room_config)
    return token.to_jwt()

