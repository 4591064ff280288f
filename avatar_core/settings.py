"""The one settings tree of every process (`.env.example` documents each variable).

`load_settings()` reads the environment once, at a process's entry point (`python -m bot`,
`python -m token_server`, `python -m stack`), into typed sections: stack, bot (with voice, face,
aligner, GPT-SoVITS and SadTalker), worker, token server (with voice training and avatar
videos) and records. The entry point turns sections into the plain options its parts take;
processors never read the environment.

One syntax for every variable: empty or unset means the default; on/off values accept
1/0, true/false, yes/no, on/off (any case); durations are plain seconds (`_S`, `_SECS`) or
milliseconds (`_MS`); lists are comma-separated. A bad value raises pydantic's
`ValidationError`, naming the variable. Except for the stack's, section fields are None
when not set: the defaults live in the options each part defines (`Section.given()`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_CACHE = "~/.cache/talking-avatar"
DEFAULT_OLLAMA_MODEL = "avatar-qwen2.5-coder:0.5b"
# LiveKit's documented development key pair (`livekit-server --dev`); override both in production.
DEV_API_KEY = "devkey"
DEV_API_SECRET = "secret"


def _blank_is_unset(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _names(value: Any) -> Any:
    """A comma-separated list; "" is the empty list."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


Unset = BeforeValidator(_blank_is_unset)
Expanded = AfterValidator(lambda p: p.expanduser() if p is not None else None)
Str = Annotated[str | None, Unset]
Int = Annotated[int | None, Unset]
Float = Annotated[float | None, Unset]
Flag = Annotated[bool | None, Unset]
UserPath = Annotated[Path | None, Unset, Expanded]
# A list where empty means "none" (BOT_NAME_ALIASES=) and one where empty means the default.
Names = Annotated[tuple[str, ...] | None, NoDecode, BeforeValidator(_names)]
NameList = Annotated[tuple[str, ...] | None, NoDecode, Unset, BeforeValidator(_names)]
# Numbers with a lower bound.
Count = Annotated[Annotated[int, Field(ge=1)] | None, Unset]
Seconds = Annotated[Annotated[float, Field(ge=1.0)] | None, Unset]
Megabytes = Annotated[Annotated[float, Field(ge=0.001)] | None, Unset]
Positive = Annotated[Annotated[int, Field(gt=0)] | None, Unset]
NonNegative = Annotated[Annotated[int, Field(ge=0)] | None, Unset]
NonNegativeSeconds = Annotated[Annotated[float, Field(ge=0.0)] | None, Unset]


def env(name: str) -> Any:
    """A field read from the variable `name` (instead of the section's prefix + field name)."""
    return Field(default=None, validation_alias=AliasChoices(name))


class SettingsError(ValueError):
    """A setting has a bad value; the message names each variable and what is wrong."""


class Section(BaseSettings):
    """A part of the tree, read from the environment when the tree is built."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{self.env_name(str(error['loc'][0]))}={error['input']!r}: {error['msg']}"
                for error in exc.errors()
            )
            raise SettingsError(problems) from None

    @classmethod
    def env_name(cls, field: str) -> str:
        """The variable a field is read from."""
        info = cls.model_fields.get(field)
        if info is None:  # already a variable name (the field's alias)
            return field.upper()
        if isinstance(info.validation_alias, AliasChoices):
            return str(info.validation_alias.choices[0])
        return (cls.model_config.get("env_prefix", "") + field).upper()

    def given(self) -> dict[str, Any]:
        """The fields the environment set (not the nested sections): keyword arguments for the
        options of the part this section configures, whose own defaults fill the rest."""
        return {
            name: value
            for name in type(self).model_fields
            if (value := getattr(self, name)) is not None and not isinstance(value, Section)
        }


class StackSettings(Section):
    """Where the local servers listen and which models they serve (the stack owns these
    defaults; the bot and token server use the same values)."""

    model_config = SettingsConfigDict(env_ignore_empty=True)

    cache: Annotated[Path, Expanded] = Field(
        default=Path(DEFAULT_CACHE).expanduser(), validation_alias=AliasChoices("AVATAR_CACHE")
    )
    livekit_url: str = "ws://127.0.0.1:7880"
    livekit_api_key: str = DEV_API_KEY
    livekit_api_secret: str = DEV_API_SECRET
    livekit_rtc_tcp_port: int = 7881
    livekit_rtc_udp_port: int = 7882
    ollama_url: Annotated[str, AfterValidator(lambda url: url.rstrip("/"))] = (
        "http://127.0.0.1:11434"
    )
    ollama_model: str = DEFAULT_OLLAMA_MODEL
    whisper_model: str = ""
    token_server_port: int = 8080

    @classmethod
    def from_env(cls) -> StackSettings:
        """The stack section alone (installer and test helpers)."""
        return cls()

    @property
    def livekit_port(self) -> int:
        return urlparse(self.livekit_url).port or 7880

    @property
    def ollama_port(self) -> int:
        return urlparse(self.ollama_url).port or 11434


def cache_dir() -> Path:
    """The one folder outside the checkout that holds built binaries and models ($AVATAR_CACHE)."""
    return StackSettings().cache


class VoiceSection(Section):
    """The embedded voice (processors.tts.embedded.EmbeddedVoiceSettings)."""

    model_config = SettingsConfigDict(env_prefix="AVATAR_VOICE_")

    voice: Str = env("AVATAR_VOICE")
    speed: Float = None
    threads: Int = None


class FaceSection(Section):
    """The face video (processors.face.video.FaceSettings)."""

    model_config = SettingsConfigDict(env_prefix="FACE_")

    avatar_image_path: UserPath = env("FACE_AVATAR")
    fps: Positive = None
    width: Positive = None
    height: Positive = None
    engine: Str = None
    idle_fps: Positive = None


class SadTalkerSection(Section):
    """The SadTalker face engine (processors.face.sadtalker.SadTalkerSettings)."""

    model_config = SettingsConfigDict(env_prefix="SADTALKER_")

    checkpoints: UserPath = None
    config: UserPath = None
    code: UserPath = env("SADTALKER_DIR")
    size: Int = None
    device: Str = None
    batch: Int = None
    max_slowdown: Float = None
    idle_s: Float = None


class AlignerSection(Section):
    """The forced aligner (processors.align.whisper_aligner.WhisperAlignerSettings)."""

    model_config = SettingsConfigDict(env_prefix="AVATAR_ALIGN_")

    model: Str = env("AVATAR_ALIGN_WHISPER_MODEL")
    compute_type: Str = None
    threads: Int = None
    reference: Flag = None
    silences: Flag = None


class GPTSoVITSSection(Section):
    """The GPT-SoVITS voice (processors.tts.gpt_sovits.GPTSoVITSSettings): on when `url` is
    set; the voice is a stored one (`voice_id`, in `voices_dir`) or a reference clip."""

    model_config = SettingsConfigDict(env_prefix="GPT_SOVITS_")

    url: Str = None
    voice_id: Str = None
    ref_audio: Str = None
    prompt_text: Str = None
    prompt_lang: Str = None
    text_lang: Str = None
    speed_factor: Float = env("GPT_SOVITS_SPEED")
    streaming_mode: Int = None
    media_type: Str = None
    raw_sample_rate: Int = None
    connect_timeout_s: Float = None
    first_audio_timeout_s: Float = None
    chunk_timeout_s: Float = None
    retries: Int = None
    fallback: Flag = None
    hold_for_timings: Flag = None
    # Cloned voices (the voices API writes them, the bot reads them); default <cache>/voices.
    voices_dir: UserPath = env("AVATAR_VOICES_DIR")


class BotSection(Section):
    """How the bot behaves in a room (bot.settings.BotSettings), and its media parts."""

    model_config = SettingsConfigDict(env_prefix="BOT_")

    token: Str = None
    identity: Str = None
    name: Str = None
    name_aliases: Names = None
    follow_up_secs: Float = None
    disconnect_policy: Annotated[str | None, Unset, AfterValidator(
        lambda v: v.lower() if v else v)] = None
    agent_identity_prefixes: Names = None
    group_answer_only_when_addressed: Flag = env("BOT_GROUP_ONLY_WHEN_ADDRESSED")
    llm_temperature: Float = None
    llm_seed: Int = None
    llm_max_tokens: Int = None
    llm_history_messages: Int = None
    whisper_compute_type: Str = None
    stt_beam_size: Int = None
    stt_hotwords: Str = None
    stt_initial_prompt: Str = None
    stt_early_secs: Float = None
    system_prompt: Str = None
    language_reminder: Str = None
    call_reply: Str = None
    # Empty is a value here: no greeting.
    greeting: str | None = None
    llm_unreachable_notice: Str = None
    empty_reply_notice: Str = None
    off_track_notice: Str = None
    vad_start_secs: Float = None
    vad_min_volume: Float = None
    vad_stop_secs: Float = None
    turn_max_wait_secs: Float = None
    audio_out_queue_ms: Int = None
    video_max_bitrate: Int = None
    empty_room_grace_secs: Float = None
    llm_wait_notice: Str = None
    llm_wait_notice_s: Float = None
    llm_give_up_notice: Str = None
    llm_give_up_s: Float = None
    voice: VoiceSection = Field(default_factory=VoiceSection)
    face: FaceSection = Field(default_factory=FaceSection)
    aligner: AlignerSection = Field(default_factory=AlignerSection)
    gpt_sovits: GPTSoVITSSection = Field(default_factory=GPTSoVITSSection)
    sadtalker: SadTalkerSection = Field(default_factory=SadTalkerSection)


class WorkerSection(Section):
    """`python -m bot worker` (bot.settings.WorkerSettings)."""

    model_config = SettingsConfigDict(env_prefix="BOT_WORKER_")

    # Shared with the token server, whose tokens ask LiveKit to dispatch this agent.
    agent_name: Str = env("BOT_AGENT_NAME")
    max_rooms: Count = None
    load_threshold: Float = None
    idle_processes: NonNegative = None
    drain_timeout_s: Int = None
    spread_s: NonNegativeSeconds = None
    http_host: Str = None
    http_port: Int = None


class TrainingSection(Section):
    """Voice training behind POST /api/train-voice (voices.training.TrainingSettings)."""

    model_config = SettingsConfigDict(env_prefix="GPT_SOVITS_")

    datasets_dir: UserPath = env("AVATAR_DATASETS_DIR")
    gpt_sovits_dir: UserPath = env("GPT_SOVITS_DIR")
    gpt_sovits_python: Str = env("GPT_SOVITS_PYTHON")
    half: Flag = None
    sovits_epochs: Int = None
    gpt_epochs: Int = None


class AvatarVideosSection(Section):
    """Offline avatar videos behind POST /api/avatar-videos."""

    model_config = SettingsConfigDict(env_prefix="AVATAR_VIDEOS_")

    folder: UserPath = env("AVATAR_VIDEOS_DIR")
    retention_s: Annotated[Annotated[float, Field(gt=0)] | None, Unset] = env(
        "AVATAR_VIDEO_RETENTION_S"
    )


class TokenServerSection(Section):
    """The token server (token_server.settings.TokenServerSettings)."""

    model_config = SettingsConfigDict(env_prefix="AVATAR_")

    host: Str = env("TOKEN_SERVER_HOST")
    livekit_public_url: Str = env("LIVEKIT_PUBLIC_URL")
    api_key: Str = None
    token_ttl_s: Annotated[Annotated[int, Field(ge=30)] | None, Unset] = None
    room_check_s: Annotated[Annotated[float, Field(ge=0.1)] | None, Unset] = None
    client_dist: UserPath = None
    log_level: Annotated[str | None, Unset, AfterValidator(lambda v: v.upper() if v else v)] = None
    allowed_hosts: NameList = None
    allowed_origins: NameList = None
    allow_insecure_public: Flag = None
    header_timeout_s: Seconds = None
    client_window_s: Seconds = None
    client_tokens: Count = None
    client_new_rooms: Count = None
    client_chats: Count = None
    chat_max_tokens: Count = None
    chat_max_s: Seconds = None
    chat_concurrency: Count = None
    webhook_max_age_s: Seconds = None
    voice_max_upload_mb: Megabytes = None
    train_max_upload_mb: Megabytes = None
    training: TrainingSection = Field(default_factory=TrainingSection)
    avatar_videos: AvatarVideosSection = Field(default_factory=AvatarVideosSection)


class RecordsSection(Section):
    """Conversation records (records.options.RecordsOptions)."""

    model_config = SettingsConfigDict(env_prefix="RECORDS_")

    database_url: Str = env("DATABASE_URL")
    enabled: Flag = None
    retention_days: NonNegative = None


class AvatarSettings(BaseModel):
    """The whole tree; building it reads the environment."""

    model_config = {"frozen": True}

    stack: StackSettings = Field(default_factory=StackSettings)
    bot: BotSection = Field(default_factory=BotSection)
    worker: WorkerSection = Field(default_factory=WorkerSection)
    token_server: TokenServerSection = Field(default_factory=TokenServerSection)
    records: RecordsSection = Field(default_factory=RecordsSection)

    @property
    def voices_dir(self) -> Path:
        """Where cloned voices live (the voices API writes, the bot reads): AVATAR_VOICES_DIR,
        else <AVATAR_CACHE>/voices."""
        return self.bot.gpt_sovits.voices_dir or self.stack.cache / "voices"


def load_settings() -> AvatarSettings:
    """Read every setting from the environment (once per process, at its entry point)."""
    return AvatarSettings()
