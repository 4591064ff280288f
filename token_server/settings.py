"""Settings of the token server, read from the environment (documented in .env.example)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.settings import (
    DEFAULT_AGENT_IDENTITY_PREFIXES,
    DEFAULT_AGENT_NAME,
    DEFAULT_IDENTITY,
    DEFAULT_SYSTEM_PROMPT,
)
from stack.settings import StackSettings

REPO_ROOT = Path(__file__).resolve().parent.parent


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _str(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, "").strip() or default


@dataclass(frozen=True, kw_only=True)
class TokenServerSettings:
    """Everything the token server needs: LiveKit, the avatar's agent name, the persona, HTTP."""

    host: str = "127.0.0.1"
    port: int = 8080
    livekit_url: str
    livekit_public_url: str
    livekit_api_key: str
    livekit_api_secret: str
    api_key: str | None = None
    token_ttl_s: int = 600
    bot_identity: str = DEFAULT_IDENTITY
    reserved_prefixes: tuple[str, ...] = DEFAULT_AGENT_IDENTITY_PREFIXES
    agent_name: str = DEFAULT_AGENT_NAME
    room_check_s: float = 2.0
    ollama_url: str
    ollama_model: str
    whisper_model: str = ""
    cache: Path
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    client_dist: Path = REPO_ROOT / "client" / "dist"
    log_level: str = "INFO"

    @classmethod
    def from_env(cls) -> TokenServerSettings:
        """Read settings from the environment; a bad value raises ValueError naming the variable."""
        env = os.environ
        # LiveKit, Ollama and Whisper locations and the port are the stack's, shared with the bot.
        stack = StackSettings.from_env()
        prefixes = env.get("BOT_AGENT_IDENTITY_PREFIXES")
        return cls(
            host=_str(env, "TOKEN_SERVER_HOST", cls.host),
            port=stack.token_server_port,
            livekit_url=stack.livekit_url,
            livekit_public_url=_str(env, "LIVEKIT_PUBLIC_URL", stack.livekit_url),
            livekit_api_key=stack.livekit_api_key,
            livekit_api_secret=stack.livekit_api_secret,
            api_key=env.get("AVATAR_API_KEY", "").strip() or None,
            token_ttl_s=_int(env, "AVATAR_TOKEN_TTL_S", cls.token_ttl_s, minimum=30),
            bot_identity=_str(env, "BOT_IDENTITY", DEFAULT_IDENTITY),
            reserved_prefixes=(
                tuple(p.strip().lower() for p in prefixes.split(",") if p.strip())
                if prefixes is not None
                else DEFAULT_AGENT_IDENTITY_PREFIXES
            ),
            agent_name=_str(env, "BOT_AGENT_NAME", DEFAULT_AGENT_NAME),
            room_check_s=_float(env, "AVATAR_ROOM_CHECK_S", cls.room_check_s, minimum=0.1),
            ollama_url=stack.ollama_url.rstrip("/"),
            ollama_model=stack.ollama_model,
            whisper_model=stack.whisper_model,
            cache=stack.cache,
            system_prompt=env.get("BOT_SYSTEM_PROMPT") or DEFAULT_SYSTEM_PROMPT,
            client_dist=Path(_str(env, "AVATAR_CLIENT_DIST", str(cls.client_dist))),
            log_level=_str(env, "AVATAR_LOG_LEVEL", cls.log_level).upper(),
        )
