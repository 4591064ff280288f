"""Typed settings of the local stack, parsed once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_CACHE = "~/.cache/talking-avatar"
DEFAULT_OLLAMA_MODEL = "avatar-qwen2.5-coder:0.5b"
# LiveKit's documented development key pair (`livekit-server --dev`); override both in production.
DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"


def cache_dir() -> Path:
    """The one folder outside the checkout that holds built binaries and models ($AVATAR_CACHE)."""
    return Path(os.environ.get("AVATAR_CACHE") or DEFAULT_CACHE).expanduser()


@dataclass(frozen=True, slots=True)
class StackSettings:
    """Where the local servers listen and which models they serve."""

    cache: Path
    livekit_url: str
    livekit_api_key: str
    livekit_api_secret: str
    livekit_rtc_tcp_port: int
    livekit_rtc_udp_port: int
    ollama_url: str
    ollama_model: str
    whisper_model: str
    token_server_port: int

    @classmethod
    def from_env(cls) -> StackSettings:
        env = os.environ.get
        return cls(
            cache=cache_dir(),
            livekit_url=env("LIVEKIT_URL", "ws://127.0.0.1:7880"),
            livekit_api_key=env("LIVEKIT_API_KEY", DEV_API_KEY),
            livekit_api_secret=env("LIVEKIT_API_SECRET", DEV_API_SECRET),
            livekit_rtc_tcp_port=int(env("LIVEKIT_RTC_TCP_PORT", "7881")),
            livekit_rtc_udp_port=int(env("LIVEKIT_RTC_UDP_PORT", "7882")),
            ollama_url=env("OLLAMA_URL", "http://127.0.0.1:11434"),
            ollama_model=env("OLLAMA_MODEL", DEFAULT_OLLAMA_MODEL),
            whisper_model=env("WHISPER_MODEL", ""),
            token_server_port=int(env("TOKEN_SERVER_PORT", "8080")),
        )

    @property
    def livekit_port(self) -> int:
        return urlparse(self.livekit_url).port or 7880

    @property
    def ollama_port(self) -> int:
        return urlparse(self.ollama_url).port or 11434
