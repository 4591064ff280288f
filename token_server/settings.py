"""Settings of the token server, taken from the one settings tree (`avatar_core.settings`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from avatar_core.identity import DEFAULT_AGENT_PREFIXES
from avatar_core.settings import (
    DEV_API_KEY,
    DEV_API_SECRET,
    AvatarSettings,
    AvatarVideosSection,
    TrainingSection,
    load_settings,
)
from bot.settings import (
    DEFAULT_AGENT_NAME,
    DEFAULT_IDENTITY,
    DEFAULT_NAME,
    DEFAULT_SYSTEM_PROMPT,
)
from processors.face.sadtalker import SadTalkerSettings
from processors.tts.embedded import EmbeddedVoiceSettings
from records.options import RecordsOptions

REPO_ROOT = Path(__file__).resolve().parent.parent


def host_name(host: str) -> str:
    """The name of a host or Host header value without its port ('[::1]:8080' -> '::1')."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


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
    reserved_prefixes: tuple[str, ...] = DEFAULT_AGENT_PREFIXES
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
    # Cloned voices (None: <cache>/voices), voice training and offline avatar videos (their
    # sections as the tree read them; by default nothing set: their options' defaults).
    voices_dir: Path | None = None
    training: TrainingSection = field(default_factory=TrainingSection.model_construct)
    avatar_videos: AvatarVideosSection = field(default_factory=AvatarVideosSection.model_construct)
    voice: EmbeddedVoiceSettings = field(default_factory=EmbeddedVoiceSettings)
    sadtalker: SadTalkerSettings = field(default_factory=SadTalkerSettings)

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
    def from_tree(cls, tree: AvatarSettings) -> TokenServerSettings:
        """The token server's settings from the tree: its own section, the stack's servers and
        models, and the bot's names and persona (people may not take them; /api/chat speaks
        with the same persona)."""
        stack, bot, section = tree.stack, tree.bot, tree.token_server
        options = section.given()
        public_url = options.pop("livekit_public_url", None)
        return cls(
            port=stack.token_server_port,
            livekit_url=stack.livekit_url,
            livekit_public_url=public_url or stack.livekit_url,
            livekit_api_key=stack.livekit_api_key,
            livekit_api_secret=stack.livekit_api_secret,
            bot_identity=bot.identity or DEFAULT_IDENTITY,
            bot_name=bot.name or DEFAULT_NAME,
            reserved_prefixes=(
                DEFAULT_AGENT_PREFIXES
                if bot.agent_identity_prefixes is None
                else bot.agent_identity_prefixes
            ),
            agent_name=tree.worker.agent_name or DEFAULT_AGENT_NAME,
            ollama_url=stack.ollama_url,
            ollama_model=stack.ollama_model,
            whisper_model=stack.whisper_model,
            cache=stack.cache,
            system_prompt=bot.system_prompt or DEFAULT_SYSTEM_PROMPT,
            records=RecordsOptions.from_settings(tree.records, cache=stack.cache),
            voices_dir=tree.voices_dir,
            training=section.training,
            avatar_videos=section.avatar_videos,
            voice=EmbeddedVoiceSettings(**bot.voice.given()),
            sadtalker=SadTalkerSettings(**bot.sadtalker.given()),
            **options,
        )

    @classmethod
    def from_env(cls) -> TokenServerSettings:
        """Read the environment into the tree and take the token server's part (tests)."""
        return cls.from_tree(load_settings())
