"""Settings of the token server, read from the environment (documented in .env.example)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from avatar_core.settings import DEV_API_KEY, DEV_API_SECRET, StackSettings
from bot.settings import (
    DEFAULT_AGENT_IDENTITY_PREFIXES,
    DEFAULT_AGENT_NAME,
    DEFAULT_IDENTITY,
    DEFAULT_NAME,
    DEFAULT_SYSTEM_PROMPT,
)
from records.options import RecordsOptions

REPO_ROOT = Path(__file__).resolve().parent.parent


def host_name(host: str) -> str:
    """The name of a host or Host header value without its port ('[::1]:8080' -> '::1')."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


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


def _list(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None:
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("0", "1", "true", "false", "yes", "no"):
        raise ValueError(f"{name} must be 0 or 1, got {raw!r}")
    return raw in ("1", "true", "yes")


# Host names a loopback-bound server answers to (DNS rebinding protection).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
# Megabytes of the upload limits (voices, training); "settings defaults from one tree".
DEFAULT_VOICE_MAX_UPLOAD_MB = 10.0
DEFAULT_TRAIN_MAX_UPLOAD_MB = 100.0


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
    bot_name: str = DEFAULT_NAME
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
    records: RecordsOptions | None = None
    # Request policy (token_server/policy.py): Host names served, cross-site origins allowed.
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    allowed_origins: tuple[str, ...] = ()
    # Start on a public address without an API key or with LiveKit's dev keys (warns loudly).
    allow_insecure_public: bool = False
    # Seconds a connection may take to send its request headers (slow-header connections).
    header_timeout_s: float = 10.0
    # Per-client limits of clients without the API key (token_server/limits.py), per window.
    client_window_s: float = 60.0
    client_tokens: int = 20
    client_new_rooms: int = 2
    client_chats: int = 6
    # Text chat: at most this many tokens and seconds per reply, this many replies at once.
    chat_max_tokens: int = 200
    chat_max_s: float = 30.0
    chat_concurrency: int = 1
    # Webhooks older than this (s) are refused as replays, like repeated event ids.
    webhook_max_age_s: float = 300.0
    voice_max_upload_mb: float = DEFAULT_VOICE_MAX_UPLOAD_MB
    train_max_upload_mb: float = DEFAULT_TRAIN_MAX_UPLOAD_MB

    @property
    def uses_dev_keys(self) -> bool:
        """Whether LiveKit's public development key or secret is in use (anyone can sign it)."""
        return self.livekit_api_key == DEV_API_KEY or self.livekit_api_secret == DEV_API_SECRET

    @property
    def public_bind(self) -> bool:
        """Whether the server listens on an address other machines can reach."""
        return host_name(self.host) not in LOOPBACK_HOSTS and not self.host.startswith("127.")

    def exposure_problems(self) -> list[str]:
        """What makes a public bind unsafe: no API key, LiveKit's dev keys, any Host accepted."""
        if not self.public_bind:
            return []
        problems = []
        if not self.api_key:
            problems.append(
                "no AVATAR_API_KEY: anyone who reaches it can mint tokens and start bots"
            )
        if self.uses_dev_keys:
            problems.append("LiveKit's public dev keys: anyone can sign tokens and webhooks")
        return problems

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
            bot_name=_str(env, "BOT_NAME", DEFAULT_NAME),
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
            records=RecordsOptions.from_env(env, cache=stack.cache),
            allowed_hosts=_list(env, "AVATAR_ALLOWED_HOSTS", cls.allowed_hosts),
            allowed_origins=_list(env, "AVATAR_ALLOWED_ORIGINS", cls.allowed_origins),
            allow_insecure_public=_flag(
                env, "AVATAR_ALLOW_INSECURE_PUBLIC", cls.allow_insecure_public
            ),
            header_timeout_s=_float(
                env, "AVATAR_HEADER_TIMEOUT_S", cls.header_timeout_s, minimum=1.0
            ),
            client_window_s=_float(env, "AVATAR_CLIENT_WINDOW_S", cls.client_window_s, minimum=1.0),
            client_tokens=_int(env, "AVATAR_CLIENT_TOKENS", cls.client_tokens, minimum=1),
            client_new_rooms=_int(env, "AVATAR_CLIENT_NEW_ROOMS", cls.client_new_rooms, minimum=1),
            client_chats=_int(env, "AVATAR_CLIENT_CHATS", cls.client_chats, minimum=1),
            chat_max_tokens=_int(env, "AVATAR_CHAT_MAX_TOKENS", cls.chat_max_tokens, minimum=1),
            chat_max_s=_float(env, "AVATAR_CHAT_MAX_S", cls.chat_max_s, minimum=1.0),
            chat_concurrency=_int(env, "AVATAR_CHAT_CONCURRENCY", cls.chat_concurrency, minimum=1),
            webhook_max_age_s=_float(
                env, "AVATAR_WEBHOOK_MAX_AGE_S", cls.webhook_max_age_s, minimum=1.0
            ),
            voice_max_upload_mb=_float(
                env, "AVATAR_VOICE_MAX_UPLOAD_MB", DEFAULT_VOICE_MAX_UPLOAD_MB, minimum=0.001
            ),
            train_max_upload_mb=_float(
                env, "AVATAR_TRAIN_MAX_UPLOAD_MB", DEFAULT_TRAIN_MAX_UPLOAD_MB, minimum=0.001
            ),
        )
