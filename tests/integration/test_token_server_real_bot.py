"""The token server dispatching the real bot (`python -m bot`): a person gets a token, the avatar
joins, the person sees its video and hears it greet, and after the person leaves the bot is gone."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
from aiohttp.test_utils import TestClient, TestServer
from livekit import api

from stack.services import free_port
from tests.support.human import HumanParticipant, rms_dbfs
from token_server.app import create_app
from token_server.services import SERVICES
from token_server.settings import TokenServerSettings

API_KEY = "integration-api-key-0123456789"
BOT = "avatar-bot"
GRACE_S = 20.0
STARTUP_S = 90.0  # models load on 2 shared cores


async def test_real_bot_joins_greets_and_leaves(livekit, ollama, stack_settings):
    settings = TokenServerSettings(
        livekit_url=livekit.url,
        livekit_public_url=livekit.url,
        livekit_api_key=livekit.api_key,
        livekit_api_secret=livekit.api_secret,
        api_key=API_KEY,
        bot_identity=BOT,
        max_bots=1,
        bot_grace_s=GRACE_S,
        room_check_s=1.0,
        ollama_url=ollama.url,
        ollama_model=ollama.model,
        whisper_model=stack_settings.whisper_model,
        cache=stack_settings.cache,
        client_dist=Path("/nonexistent"),
    )
    app = create_app(settings)
    supervisor = app[SERVICES].supervisor
    async with TestClient(TestServer(app, host="127.0.0.1", port=free_port())) as client:
        response = await client.post(
            "/api/token", json={"room": "real", "identity": "lena"}, headers={"Authorization": f"Bearer {API_KEY}"}
        )
        assert response.status == 200, await response.text()
        token = await response.json()
        async with HumanParticipant.connect(token["url"], token["token"]) as lena:
            await lena.wait_for(lambda: any(i == BOT for _, i, _ in lena.video), STARTUP_S, what="the avatar's video")
            await lena.wait_for(
                lambda: any(i == BOT and rms_dbfs(a) > -40 for _, i, a, _ in lena.audio),
                STARTUP_S,
                what="the avatar's greeting",
            )
            frame = next(f for _, i, f in reversed(lena.video) if i == BOT)
            assert frame.shape[2] == 3 and float(np.std(frame)) > 5  # a picture, not a blank frame
        left_at = time.monotonic()
        async with api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret) as admin:
            while supervisor.bot("real") is not None:
                assert time.monotonic() - left_at < GRACE_S + 30, "bot still supervised long after the room emptied"
                await client.get("/health")  # the server keeps answering meanwhile
                await asyncio.sleep(0.5)
            listed = await admin.room.list_participants(api.ListParticipantsRequest(room="real"))
            assert BOT not in {p.identity for p in listed.participants}
