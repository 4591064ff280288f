"""LiveKit join tokens for people and for the avatar bot, minted with livekit-api."""

from __future__ import annotations

import datetime

from livekit.api import AccessToken, VideoGrants

# Participant attribute carried in the bot's token: which token-server instance supervises it.
SUPERVISOR_ATTRIBUTE = "avatar.supervisor"
BOT_DISPLAY_NAME = "Avatar"
# The bot only needs a valid token to join; LiveKit refreshes it while connected.
BOT_TOKEN_TTL = datetime.timedelta(hours=1)


def room_grants(room: str) -> VideoGrants:
    """Join one room; publish, subscribe and send data. No admin, create, record or hidden rights."""
    return VideoGrants(
        room_join=True,
        room=room,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=True,
        can_update_own_metadata=False,
    )


class TokenMinter:
    """Signs room-scoped join tokens with the LiveKit API key and secret."""

    def __init__(self, *, api_key: str, api_secret: str, ttl_s: int, bot_identity: str) -> None:
        self._api_key = api_key
        self._api_secret = api_secret
        self._ttl = datetime.timedelta(seconds=ttl_s)
        self.bot_identity = bot_identity

    def user_token(self, *, room: str, identity: str, name: str) -> str:
        """A short-lived token for a person (standard participant) in `room`."""
        return (
            AccessToken(self._api_key, self._api_secret)
            .with_identity(identity)
            .with_name(name)
            .with_kind("standard")
            .with_ttl(self._ttl)
            .with_grants(room_grants(room))
            .to_jwt()
        )

    def bot_token(self, *, room: str, supervisor_id: str) -> str:
        """The bot's token: fixed identity (LiveKit lets one participant hold it per room), agent kind."""
        return (
            AccessToken(self._api_key, self._api_secret)
            .with_identity(self.bot_identity)
            .with_name(BOT_DISPLAY_NAME)
            .with_kind("agent")
            .with_attributes({SUPERVISOR_ATTRIBUTE: supervisor_id})
            .with_ttl(BOT_TOKEN_TTL)
            .with_grants(room_grants(room))
            .to_jwt()
        )
