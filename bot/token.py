"""The bot's LiveKit join token: the one given in BOT_TOKEN, or one minted with livekit-api."""

from __future__ import annotations

from datetime import timedelta

from livekit import api

from bot.settings import BotSettings

# LiveKit participant kind of the bot, so clients and other bots can tell it is an agent.
AGENT_KIND = "agent"
TOKEN_TTL = timedelta(hours=6)


def bot_token(settings: BotSettings, room: str) -> str:
    """A join token for `room` as the bot's identity, marked as an agent participant."""
    if settings.token:
        return settings.token
    return (
        api.AccessToken(settings.livekit_api_key, settings.livekit_api_secret)
        .with_identity(settings.identity)
        .with_name(settings.name)
        # AGENT_KIND is LiveKit's 'agent' kind as a plain str
        .with_kind(AGENT_KIND)  # type: ignore[arg-type]
        .with_ttl(TOKEN_TTL)
        .with_grants(
            api.VideoGrants(
                room_join=True,
                room=room,
                can_publish=True,
                can_subscribe=True,
                can_publish_data=True,
            )
        )
        .to_jwt()
    )
