"""The bot's and the worker's settings, taken from the one settings tree
(`avatar_core.settings`) at the entry point, with their defaults.

The LiveKit, Ollama and Whisper locations are the stack's, so a bot started by `./avatar`, the
token server or a test talks to the same servers; everything else here is about how the bot
behaves in a room.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from avatar_core.identity import DEFAULT_AGENT_PREFIXES
from avatar_core.settings import AvatarSettings, GPTSoVITSSection, load_settings
from avatar_core.whisper import installed_whisper_model
from processors.align.whisper_aligner import WhisperAlignerSettings
from processors.face.sadtalker import SadTalkerSettings
from processors.face.video import FaceSettings
from processors.tts.embedded import EmbeddedVoiceSettings
from processors.tts.gpt_sovits import GPTSoVITSSettings, GPTSoVITSVoice

DEFAULT_IDENTITY = "avatar-bot"
DEFAULT_NAME = "Ava"
# Other ways people address the bot, or what a small recogniser hears for its name.
DEFAULT_NAME_ALIASES = ("Eva", "Ava's", "Hey Ava")
# Who may end the bot for everyone with RTVI `disconnect-bot`: the room's owner (its first
# person, and only while nobody else is in the room), anyone, or never.
DISCONNECT_POLICIES = ("owner", "anyone", "never")
# Longest A/V queue (BOT_AUDIO_OUT_QUEUE_MS): the face renders that far ahead of playout, work that
# a barge-in throws away.
MAX_AUDIO_OUT_QUEUE_MS = 1000
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
# Said, without asking the LLM, when someone in a meeting only calls the bot by name ("Ava?");
# {name} is the caller's name.
DEFAULT_CALL_REPLY = "Yes, {name}?"
DEFAULT_LLM_UNREACHABLE_NOTICE = "Sorry, my language model is not reachable right now."
DEFAULT_EMPTY_REPLY_NOTICE = "Sorry, I have no answer to that."
DEFAULT_LLM_WAIT_NOTICE = "One moment, please."
DEFAULT_LLM_GIVE_UP_NOTICE = (
    "Sorry, my language model is not answering right now. Please ask again."
)
DEFAULT_LLM_WAIT_NOTICE_S = 4.0
DEFAULT_LLM_GIVE_UP_S = 20.0
DEFAULT_OFF_TRACK_NOTICE = "Sorry, I lost my words. Could you ask me that again?"


@dataclass(frozen=True, slots=True)
class BotSettings:
    """Everything `python -m bot` needs besides the room name: the stack's servers, how the bot
    behaves in a room, and the options of its voice, face and aligner."""

    livekit_url: str
    livekit_api_key: str
    livekit_api_secret: str
    ollama_url: str
    ollama_model: str
    # The installed faster-whisper model folder (resolved at start-up, never downloaded).
    whisper_model: str
    token: str | None = None
    identity: str = DEFAULT_IDENTITY
    name: str = DEFAULT_NAME
    name_aliases: tuple[str, ...] = DEFAULT_NAME_ALIASES
    follow_up_secs: float = 8.0
    disconnect_policy: str = "owner"
    agent_identity_prefixes: tuple[str, ...] = DEFAULT_AGENT_PREFIXES
    group_answer_only_when_addressed: bool = True
    llm_temperature: float = 0.2
    llm_seed: int = 7
    llm_max_tokens: int = 80
    llm_history_messages: int = 8
    whisper_compute_type: str = "int8"
    stt_beam_size: int = 1
    stt_hotwords: str | None = None
    stt_initial_prompt: str | None = None
    # Quiet inside an utterance after which it is transcribed while the VAD waits out the rest of
    # vad_stop_secs (0 = only once the VAD has stopped).
    stt_early_secs: float = 0.1
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    language_reminder: str = DEFAULT_LANGUAGE_REMINDER
    call_reply: str = DEFAULT_CALL_REPLY
    greeting: str = DEFAULT_GREETING
    llm_unreachable_notice: str = DEFAULT_LLM_UNREACHABLE_NOTICE
    empty_reply_notice: str = DEFAULT_EMPTY_REPLY_NOTICE
    off_track_notice: str = DEFAULT_OFF_TRACK_NOTICE
    vad_start_secs: float = 0.1
    vad_min_volume: float = 0.3
    vad_stop_secs: float = 0.3
    turn_max_wait_secs: float = 1.5
    audio_out_queue_ms: int = 200
    video_max_bitrate: int = 1_200_000
    empty_room_grace_secs: float = 5.0
    # LLM watchdog (bot/llm_watchdog.py): silence before the wait notice, and before giving up.
    llm_wait_notice: str = DEFAULT_LLM_WAIT_NOTICE
    llm_wait_notice_s: float = DEFAULT_LLM_WAIT_NOTICE_S
    llm_give_up_notice: str = DEFAULT_LLM_GIVE_UP_NOTICE
    llm_give_up_s: float = DEFAULT_LLM_GIVE_UP_S
    voice: EmbeddedVoiceSettings = field(default_factory=EmbeddedVoiceSettings)
    face: FaceSettings = field(default_factory=FaceSettings)
    sadtalker: SadTalkerSettings = field(default_factory=SadTalkerSettings)
    # GPT-SoVITS speaks when set (GPT_SOVITS_URL), aligned by `aligner`; else the embedded voice.
    gpt_sovits: GPTSoVITSSettings | None = None
    aligner: WhisperAlignerSettings = field(default_factory=WhisperAlignerSettings)

    def __post_init__(self):
        if not 0 <= self.stt_early_secs < self.vad_stop_secs:
            raise ValueError(
                f"BOT_STT_EARLY_SECS={self.stt_early_secs} must be 0 (off) or less than "
                f"BOT_VAD_STOP_SECS={self.vad_stop_secs}"
            )
        try:
            self.call_reply.format(name="Dana")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"BOT_CALL_REPLY={self.call_reply!r} may use only {{name}} (the caller's name): "
                f"{exc!r}"
            ) from None
        if self.disconnect_policy not in DISCONNECT_POLICIES:
            raise ValueError(
                f"BOT_DISCONNECT_POLICY must be one of {', '.join(DISCONNECT_POLICIES)}"
                f", got {self.disconnect_policy!r}"
            )
        # The A/V queue (README "A/V sync on LiveKit"): LiveKit's audio source and the
        # synchronizer's video queue hold this much, and the face renders this far ahead; it
        # must hold two face frames (one shown, one waiting) and stay short for barge-in.
        frames = self.audio_out_queue_ms * self.face.fps / 1000
        if not 2 <= frames or self.audio_out_queue_ms > MAX_AUDIO_OUT_QUEUE_MS:
            raise ValueError(
                f"BOT_AUDIO_OUT_QUEUE_MS={self.audio_out_queue_ms} must hold at least two face "
                f"frames ({2000 / self.face.fps:.0f} ms at FACE_FPS={self.face.fps}) and at "
                f"most {MAX_AUDIO_OUT_QUEUE_MS} ms"
            )

    @classmethod
    def from_tree(cls, tree: AvatarSettings) -> BotSettings:
        """The bot's settings from the settings tree; resolves the installed Whisper models
        (the start-up step that fails with the fix when one is missing) and loads a stored
        GPT-SoVITS voice."""
        stack, bot = tree.stack, tree.bot
        gpt_sovits = None
        aligner = WhisperAlignerSettings(**bot.aligner.given())
        if bot.gpt_sovits.url:
            gpt_sovits = gpt_sovits_settings(bot.gpt_sovits, tree.voices_dir)
            model = installed_whisper_model(aligner.model or stack.whisper_model, stack.cache)
            aligner = replace(aligner, model=model)
        return cls(
            livekit_url=stack.livekit_url,
            livekit_api_key=stack.livekit_api_key,
            livekit_api_secret=stack.livekit_api_secret,
            ollama_url=stack.ollama_url,
            ollama_model=stack.ollama_model,
            whisper_model=installed_whisper_model(stack.whisper_model, stack.cache),
            voice=EmbeddedVoiceSettings(**bot.voice.given()),
            face=FaceSettings(**bot.face.given()),
            sadtalker=SadTalkerSettings(**bot.sadtalker.given()),
            gpt_sovits=gpt_sovits,
            aligner=aligner,
            **bot.given(),
        )

    @classmethod
    def from_env(cls) -> BotSettings:
        """Read the environment into the tree and take the bot's part (tests, benchmarks)."""
        return cls.from_tree(load_settings())

    @property
    def names(self) -> tuple[str, ...]:
        """Every name the bot answers to in a meeting: its name, then its aliases."""
        return (self.name, *self.name_aliases)

    @property
    def ollama_openai_url(self) -> str:
        """Ollama's OpenAI-compatible endpoint, which Pipecat's Ollama service speaks."""
        return f"{self.ollama_url}/v1"


def gpt_sovits_settings(section: GPTSoVITSSection, voices: Path) -> GPTSoVITSSettings:
    """GPT-SoVITS options: the voice is a stored one (GPT_SOVITS_VOICE_ID, read from `voices`)
    or a reference clip (GPT_SOVITS_REF_AUDIO + _PROMPT_TEXT + _PROMPT_LANG)."""
    options = section.given()
    voice_id, ref_audio = options.pop("voice_id", None), options.pop("ref_audio", None)
    prompt_text, prompt_lang = options.pop("prompt_text", ""), options.pop("prompt_lang", "en")
    options.pop("voices_dir", None)
    voice = None
    if voice_id:
        voice = GPTSoVITSVoice.load(voice_id, voices)
    elif ref_audio:
        voice = GPTSoVITSVoice(ref_audio_path=ref_audio, prompt_text=prompt_text,
                               prompt_lang=prompt_lang)
    return GPTSoVITSSettings(voice=voice, voices_dir=voices, **options)


DEFAULT_AGENT_NAME = "avatar"
# Metadata of the dispatches the token server's BotKeeper asks for (a room that lost its bot, or
# whose first dispatch every worker passed on): a worker takes such a job without passing it on.
REDISPATCH_METADATA = "avatar.redispatch"
# What livekit-agents logs once livekit-server has registered a worker (its readiness).
WORKER_REGISTERED_LOG = "registered worker"


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How `python -m bot worker` registers with LiveKit and how many rooms it takes."""

    agent_name: str = DEFAULT_AGENT_NAME
    max_rooms: int = 3
    load_threshold: float = 1.0
    idle_processes: int = 1
    drain_timeout_s: int = 3600
    spread_s: float = 0.0
    http_host: str = "127.0.0.1"
    http_port: int = 0

    @classmethod
    def from_tree(cls, tree: AvatarSettings) -> WorkerSettings:
        """The worker's part of the settings tree (`.env.example`, section "worker")."""
        return cls(**tree.worker.given())

    @classmethod
    def from_env(cls) -> WorkerSettings:
        """Read the environment into the tree and take the worker's part (tests)."""
        return cls.from_tree(load_settings())
