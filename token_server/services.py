"""The token server's long-lived services, built once per app and shared by its route handlers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web
from livekit.api import TokenVerifier, WebhookReceiver

from token_server.chat import PersonaChat
from token_server.dispatch import BotKeeper
from token_server.health import HealthChecker
from token_server.limits import ClientLimits
from token_server.rooms import RoomDirectory
from token_server.settings import TokenServerSettings
from token_server.tokens import TokenMinter
from token_server.webhook_guard import WebhookGuard


@dataclass(frozen=True, kw_only=True)
class Services:
    """Everything a handler needs, reachable as `request.app[SERVICES]`."""

    settings: TokenServerSettings
    minter: TokenMinter
    rooms: RoomDirectory
    keeper: BotKeeper
    chat: PersonaChat
    health: HealthChecker
    webhooks: WebhookReceiver
    webhook_guard: WebhookGuard
    limits: ClientLimits
    # Chat turns that may run at once: live rooms keep the rest of the LLM's capacity.
    chat_slots: asyncio.Semaphore

    @classmethod
    def build(cls, settings: TokenServerSettings) -> Services:
        minter = TokenMinter(
            api_key=settings.livekit_api_key,
            api_secret=settings.livekit_api_secret,
            ttl_s=settings.token_ttl_s,
            agent_name=settings.agent_name,
        )
        rooms = RoomDirectory(
            url=settings.livekit_url,
            api_key=settings.livekit_api_key,
            api_secret=settings.livekit_api_secret,
            bot_identity=settings.bot_identity,
            reserved_prefixes=settings.reserved_prefixes,
        )
        keeper = BotKeeper(
            rooms=rooms, agent_name=settings.agent_name, check_s=settings.room_check_s
        )
        return cls(
            settings=settings,
            minter=minter,
            rooms=rooms,
            keeper=keeper,
            chat=PersonaChat(
                ollama_url=settings.ollama_url,
                model=settings.ollama_model,
                system_prompt=settings.system_prompt,
                max_tokens=settings.chat_max_tokens,
            ),
            health=HealthChecker(
                rooms=rooms,
                ollama_url=settings.ollama_url,
                ollama_model=settings.ollama_model,
                whisper_model=settings.whisper_model,
                cache=settings.cache,
            ),
            webhooks=WebhookReceiver(
                TokenVerifier(settings.livekit_api_key, settings.livekit_api_secret)
            ),
            webhook_guard=WebhookGuard(
                dev_keys=settings.uses_dev_keys, max_age_s=settings.webhook_max_age_s
            ),
            limits=ClientLimits(
                window_s=settings.client_window_s,
                tokens=settings.client_tokens,
                new_rooms=settings.client_new_rooms,
                chats=settings.client_chats,
            ),
            chat_slots=asyncio.Semaphore(settings.chat_concurrency),
        )

    async def start(self) -> None:
        await self.rooms.start()
        self.keeper.start()

    async def stop(self) -> None:
        await self.keeper.stop()
        await self.rooms.aclose()
        await self.chat.aclose()


SERVICES = web.AppKey("services", Services)
