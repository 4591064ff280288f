"""The bot's LiveKit join token: the one given in BOT_TOKEN, or one from avatar_core.tokens."""

from __future__ import annotations

from datetime import timedelta

from avatar_core.tokens import AGENT_KIND, join_token
from bot.settings import BotSettings

# The bot stays in its room for a whole conversation: its token outlives any one join.
TOKEN_TTL = timedelta(hours=6)


def bot_token(settings: BotSettings, room: str) -> str:
    """A join token for `room` as the bot's identity, marked as an agent participant and shown
    under the name it answers to (`settings.name`), as a dispatched bot is (bot.worker)."""
    if settings.token:
        return settings.token
    return join_token(
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret,
        room=room,
        identity=settings.identity,
        name=settings.name,
        kind=AGENT_KIND,
        ttl=TOKEN_TTL,
    )
