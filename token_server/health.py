"""Health of the pieces the avatar needs: livekit-server, Ollama and its model, the STT model."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from avatar_core.errors import StackError
from avatar_core.ollama import lists_model
from avatar_core.whisper import installed_whisper_model
from token_server.rooms import LiveKitUnavailable, RoomDirectory

OLLAMA_TAGS_PATH = "/api/tags"
CHECK_TIMEOUT_S = 3.0


def whisper_status(setting: str, cache: Path) -> dict:
    """The STT model: the packaged offline one, a complete local folder, or a named model that
    setup has downloaded into the cache."""
    try:
        return {"ok": True, "path": installed_whisper_model(setting, cache)}
    except StackError as exc:
        return {"ok": False, "detail": str(exc)}


class HealthChecker:
    """Checks each dependency; healthy only when all are usable."""

    def __init__(
        self,
        *,
        rooms: RoomDirectory,
        ollama_url: str,
        ollama_model: str,
        whisper_model: str,
        cache: Path,
    ) -> None:
        self._rooms = rooms
        self._whisper_model = whisper_model
        self._cache = cache
        self._ollama_url = ollama_url
        self._ollama_model = ollama_model

    async def _livekit(self) -> dict:
        try:
            rooms = await self._rooms.room_names()
        except LiveKitUnavailable as exc:
            return {"ok": False, "detail": str(exc)}
        return {"ok": True, "rooms": len(rooms)}

    async def _ollama(self) -> tuple[dict, dict]:
        model = {"ok": False, "name": self._ollama_model}
        try:
            async with (
                aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=CHECK_TIMEOUT_S)
                ) as session,
                session.get(self._ollama_url + OLLAMA_TAGS_PATH) as response,
            ):
                response.raise_for_status()
                tags = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            detail = f"Ollama unreachable at {self._ollama_url}: {str(exc) or type(exc).__name__}"
            return {"ok": False, "url": self._ollama_url, "detail": detail}, {
                **model,
                "detail": "unknown: Ollama down",
            }
        if lists_model(tags, model=self._ollama_model):
            return {"ok": True, "url": self._ollama_url}, {**model, "ok": True}
        return {"ok": True, "url": self._ollama_url}, {
            **model,
            "detail": f"model '{self._ollama_model}' is not pulled in Ollama",
        }

    async def check(self) -> tuple[bool, dict]:
        """(healthy, details by component)."""
        livekit = await self._livekit()
        ollama, model = await self._ollama()
        stt = whisper_status(self._whisper_model, self._cache)
        healthy = livekit["ok"] and ollama["ok"] and model["ok"] and stt["ok"]
        return healthy, {"livekit": livekit, "ollama": ollama, "model": model, "whisper": stt}
