"""Typed settings of the bot process, read once from the environment.

The LiveKit, Ollama and Whisper locations are the stack's (`stack.settings.StackSettings`), so a
bot started by `./avatar`, the token server or a test talks to the same servers; everything
else here is about how the bot behaves in a room.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from stack.models import whisper_model
from stack.settings import StackSettings

DEFAULT_IDENTITY = "avatar-bot"
DEFAULT_NAME = "Ava"
# Other ways people address the bot, or what a small recogniser hears for its name.
DEFAULT_NAME_ALIASES = ("Eva", "Ava's", "Hey Ava")
# Who may end the bot for everyone with RTVI `disconnect-bot`: the room's owner (its first
# person, and only while nobody else is in the room), anyone, or never.
DISCONNECT_POLICIES = ("owner", "anyone", "never")
DEFAULT_SYSTEM_PROMPT = (
    "You are Ava, a friendly assistant who talks with people in a video call. "
    "Always reply in English. Answer the question you were just asked directly, in one or two "
    "short spoken sentences. Never use lists, markdown, code or emoji."
)
# Added to the context when a reply drifted into another language or a list and is asked again.
DEFAULT_LANGUAGE_REMINDER = (
    "Reply again to the last message, in English only, in one or two short spoken sentences "
    "without lists."
)
DEFAULT_GREETING = "Hello! I am Ava. How can I help you?"
DEFAULT_LLM_UNREACHABLE_NOTICE = "Sorry, my language model is not reachable right now."
DEFAULT_EMPTY_REPLY_NOTICE = "Sorry, I have no answer to that."
DEFAULT_LLM_WAIT_NOTICE = "One moment, please."
DEFAULT_LLM_GIVE_UP_NOTICE = (
    "Sorry, my language model is not answering right now. Please ask again."
)
DEFAULT_LLM_WAIT_NOTICE_S = 4.0
DEFAULT_LLM_GIVE_UP_S = 20.0
DEFAULT_OFF_TRACK_NOTICE = "Sorry, I lost my words. Could you ask me that again?"
# Identity prefixes of participants that are agents even when their token carries no agent kind.
DEFAULT_AGENT_IDENTITY_PREFIXES = ("agent-", "bot-", "avatar-")


def _env_number(name: str, default: float, kind: type) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return kind(value)
    except ValueError:
        raise ValueError(
            f"{name} must be {'an integer' if kind is int else 'a number'}, got {value!r}"
        ) from None


def _env_float(name: str, default: float) -> float:
    return _env_number(name, default, float)


def _env_int(name: str, default: int) -> int:
    return int(_env_number(name, default, int))


def _env_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True, slots=True)
class BotSettings:
    """Everything `python -m bot` needs besides the room name."""

    livekit_url: str
    livekit_api_key: str
    livekit_api_secret: str
    token: str | None
    identity: str
    name: str
    name_aliases: tuple[str, ...]
    follow_up_secs: float
    disconnect_policy: str
    agent_identity_prefixes: tuple[str, ...]
    group_answer_only_when_addressed: bool
    ollama_url: str
    ollama_model: str
    llm_temperature: float
    llm_seed: int
    llm_max_tokens: int
    llm_history_messages: int
    whisper_model: str
    whisper_compute_type: str
    stt_beam_size: int
    stt_hotwords: str | None
    stt_initial_prompt: str | None
    system_prompt: str
    language_reminder: str
    greeting: str
    llm_unreachable_notice: str
    empty_reply_notice: str
    off_track_notice: str
    vad_start_secs: float
    vad_min_volume: float
    vad_stop_secs: float
    turn_max_wait_secs: float
    audio_out_queue_ms: int
    video_max_bitrate: int
    empty_room_grace_secs: float
    # LLM watchdog (bot/llm_watchdog.py): silence before the wait notice, and before giving up.
    llm_wait_notice: str = DEFAULT_LLM_WAIT_NOTICE
    llm_wait_notice_s: float = DEFAULT_LLM_WAIT_NOTICE_S
    llm_give_up_notice: str = DEFAULT_LLM_GIVE_UP_NOTICE
    llm_give_up_s: float = DEFAULT_LLM_GIVE_UP_S

    @classmethod
    def from_env(cls) -> BotSettings:
        """Read the settings from the environment (`.env.example`, section "bot")."""
        stack = StackSettings.from_env()
        env = os.environ.get
        prefixes = env("BOT_AGENT_IDENTITY_PREFIXES")
        aliases = env("BOT_NAME_ALIASES")
        disconnect_policy = env("BOT_DISCONNECT_POLICY", "owner").strip().lower()
        if disconnect_policy not in DISCONNECT_POLICIES:
            raise ValueError(
                f"BOT_DISCONNECT_POLICY must be one of {', '.join(DISCONNECT_POLICIES)}"
                f", got {disconnect_policy!r}"
            )
        return cls(
            livekit_url=stack.livekit_url,
            livekit_api_key=stack.livekit_api_key,
            livekit_api_secret=stack.livekit_api_secret,
            token=env("BOT_TOKEN") or None,
            identity=env("BOT_IDENTITY", DEFAULT_IDENTITY),
            name=env("BOT_NAME", DEFAULT_NAME),
            name_aliases=_env_list(aliases) if aliases is not None else DEFAULT_NAME_ALIASES,
            follow_up_secs=_env_float("BOT_FOLLOW_UP_SECS", 8.0),
            disconnect_policy=disconnect_policy,
            agent_identity_prefixes=(
                _env_list(prefixes) if prefixes is not None else DEFAULT_AGENT_IDENTITY_PREFIXES
            ),
            group_answer_only_when_addressed=env("BOT_GROUP_ONLY_WHEN_ADDRESSED", "1").lower()
            not in ("0", "false", "no"),
            ollama_url=stack.ollama_url.rstrip("/"),
            ollama_model=stack.ollama_model,
            llm_temperature=_env_float("BOT_LLM_TEMPERATURE", 0.2),
            llm_seed=_env_int("BOT_LLM_SEED", 7),
            llm_max_tokens=_env_int("BOT_LLM_MAX_TOKENS", 80),
            llm_history_messages=_env_int("BOT_LLM_HISTORY_MESSAGES", 8),
            whisper_model=whisper_model(stack.whisper_model, stack.cache),
            whisper_compute_type=env("BOT_WHISPER_COMPUTE_TYPE", "int8"),
            stt_beam_size=_env_int("BOT_STT_BEAM_SIZE", 1),
            stt_hotwords=env("BOT_STT_HOTWORDS") or None,
            stt_initial_prompt=env("BOT_STT_INITIAL_PROMPT") or None,
            system_prompt=env("BOT_SYSTEM_PROMPT", DEFAULT_SYSTEM_PROMPT),
            language_reminder=env("BOT_LANGUAGE_REMINDER", DEFAULT_LANGUAGE_REMINDER),
            greeting=env("BOT_GREETING", DEFAULT_GREETING),
            llm_unreachable_notice=env(
                "BOT_LLM_UNREACHABLE_NOTICE", DEFAULT_LLM_UNREACHABLE_NOTICE
            ),
            empty_reply_notice=env("BOT_EMPTY_REPLY_NOTICE", DEFAULT_EMPTY_REPLY_NOTICE),
            off_track_notice=env("BOT_OFF_TRACK_NOTICE", DEFAULT_OFF_TRACK_NOTICE),
            vad_start_secs=_env_float("BOT_VAD_START_SECS", 0.1),
            vad_min_volume=_env_float("BOT_VAD_MIN_VOLUME", 0.3),
            vad_stop_secs=_env_float("BOT_VAD_STOP_SECS", 0.3),
            turn_max_wait_secs=_env_float("BOT_TURN_MAX_WAIT_SECS", 1.5),
            audio_out_queue_ms=_env_int("BOT_AUDIO_OUT_QUEUE_MS", 200),
            video_max_bitrate=_env_int("BOT_VIDEO_MAX_BITRATE", 1_200_000),
            empty_room_grace_secs=_env_float("BOT_EMPTY_ROOM_GRACE_SECS", 5.0),
            llm_wait_notice=env("BOT_LLM_WAIT_NOTICE", DEFAULT_LLM_WAIT_NOTICE),
            llm_wait_notice_s=_env_float("BOT_LLM_WAIT_NOTICE_S", DEFAULT_LLM_WAIT_NOTICE_S),
            llm_give_up_notice=env("BOT_LLM_GIVE_UP_NOTICE", DEFAULT_LLM_GIVE_UP_NOTICE),
            llm_give_up_s=_env_float("BOT_LLM_GIVE_UP_S", DEFAULT_LLM_GIVE_UP_S),
        )

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the bot answers to in a meeting: its name, then its aliases."""
        return (self.name, *self.name_aliases)

    @property
    def ollama_openai_url(self) -> str:
        """Ollama's OpenAI-compatible endpoint, which Pipecat's Ollama service speaks."""
        return f"{self.ollama_url}/v1"


DEFAULT_AGENT_NAME = "avatar"
# Metadata of the dispatches the token server's BotKeeper asks for (a room that lost its bot, or
# whose first dispatch every worker passed on): a worker takes such a job without passing it on.
REDISPATCH_METADATA = "avatar.redispatch"
# What livekit-agents logs once livekit-server has registered a worker (its readiness).
WORKER_REGISTERED_LOG = "registered worker"


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How `python -m bot worker` registers with LiveKit and how many rooms it takes."""

    agent_name: str
    max_rooms: int
    load_threshold: float
    idle_processes: int
    drain_timeout_s: int
    spread_s: float
    http_host: str
    http_port: int

    @classmethod
    def from_env(cls) -> WorkerSettings:
        """Read the worker settings (`.env.example`, section "worker")."""
        env = os.environ.get
        settings = cls(
            agent_name=env("BOT_AGENT_NAME") or DEFAULT_AGENT_NAME,
            max_rooms=_env_int("BOT_WORKER_MAX_ROOMS", 3),
            load_threshold=_env_float("BOT_WORKER_LOAD_THRESHOLD", 1.0),
            idle_processes=_env_int("BOT_WORKER_IDLE_PROCESSES", 1),
            drain_timeout_s=_env_int("BOT_WORKER_DRAIN_TIMEOUT_S", 3600),
            spread_s=_env_float("BOT_WORKER_SPREAD_S", 0.0),
            http_host=env("BOT_WORKER_HTTP_HOST", "127.0.0.1"),
            http_port=_env_int("BOT_WORKER_HTTP_PORT", 0),
        )
        if settings.max_rooms < 1:
            raise ValueError(f"BOT_WORKER_MAX_ROOMS must be >= 1, got {settings.max_rooms}")
        if settings.spread_s < 0:
            raise ValueError(f"BOT_WORKER_SPREAD_S must be >= 0, got {settings.spread_s}")
        if settings.idle_processes < 0:
            raise ValueError(
                f"BOT_WORKER_IDLE_PROCESSES must be >= 0, got {settings.idle_processes}"
            )
        return settings
