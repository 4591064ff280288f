"""The bot's Pipecat pipeline for one LiveKit room (ARCHITECTURE §3) and its room behaviour.

LiveKit in → per-participant Silero VAD (utterances) → Whisper STT → meeting addressing (opens
user turns) → user context → Ollama LLM → LLM watchdog → reply guard → TTS → face video →
LiveKit out → assistant context.
RTVI (a per-participant processor + observer, processors/rtvi_participants.py on top of the
RTVI 2.2 adapter processors/rtvi_adapter.py) is added by the `PipelineWorker` and speaks over
the LiveKit data channel. Around the pipeline: greeting the first person, telling the LLM who
joins and leaves, leaving when the room empties or closes, and reporting per-turn latency.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from faster_whisper import WhisperModel
from livekit import rtc
from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import LLMMessagesAppendFrame, TTSSpeakFrame
from pipecat.observers.base_observer import BaseObserver
from pipecat.observers.user_bot_latency_observer import LatencyBreakdown
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frameworks.rtvi import RTVIObserverParams
from pipecat.services.ollama.llm import OLLamaLLMService
from pipecat.transports.livekit.transport import LiveKitParams, LiveKitTransport
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from avatar_core.identity import is_agent_identity, safe_display_name
from bot.addressing import MeetingAddressing, NameMatcher
from bot.llm_warm_up import warm_up_llm
from bot.llm_watchdog import LLMWatchdog
from bot.recorder import ConversationRecorder, open_records
from bot.reply_guard import LLMReplyGuard
from bot.settings import BotSettings
from bot.token import bot_token
from processors.align.whisper_aligner import WhisperAligner
from processors.face.engines import SADTALKER, face_engine
from processors.face.video import FaceVideoProcessor, FrameMarker
from processors.livekit_transport_adapter import (
    PicturesInStep,
    keep_every_picture,
    receive_audio_as,
    room_of,
)
from processors.participant_speech import ParticipantSpeechSegmenter
from processors.rtvi_participants import ParticipantRTVIProcessor
from processors.stt.early_transcripts import EarlyTranscripts
from processors.stt.whisper import AvatarWhisperSTTService
from processors.tts.embedded import EmbeddedTTSService, EmbeddedVoice
from processors.tts.gpt_sovits import GPTSoVITSTTSService
from processors.tts.hibari_voice import HibariVoice
from processors.tts.timed import TimedTTSService
from processors.utterance_latency import UtteranceLatencyObserver
from records.options import RecordsOptions

# RTVI server-message type carrying one turn's measured latency and its breakdown.
LATENCY_MESSAGE_TYPE = "bot-latency"
# RTVI server-message type saying the chosen face engine (SadTalker) gave way to the builtin one.
FACE_FALLBACK_MESSAGE_TYPE = "face-engine-fallback"
# Audio rates: Whisper and the VAD work at 16 kHz; the embedded voice speaks at 24 kHz.
AUDIO_IN_SAMPLE_RATE = 16000
AUDIO_OUT_SAMPLE_RATE = 24000
# Participants' audio arrives in frames of one Silero VAD window (512 samples at 16 kHz), so each
# frame is analysed as it arrives and the event loop handles 31 frames a second per person, not 100.
AUDIO_IN_FRAME_MS = 32
# Whisper tiny.en on 2 CPU cores: end of speech → transcript, p99 (s). Whisper's transcripts are
# final per segment, so this only bounds the turn detector's safety net.
WHISPER_TTFS_P99_SECS = 1.5
# The greeting waits for an RTVI client's client-ready (so that bot-ready comes before anything
# about the greeting) at most this long; a participant without RTVI is greeted after it.
GREETING_CLIENT_READY_WAIT_SECS = 3.0
# Longest a turn waits for its transcript after the person stopped before it is dropped (s).
USER_TURN_STOP_TIMEOUT_SECS = 15.0


@dataclass(frozen=True, kw_only=True)
class BotModels:
    """Models loaded before the room is known (a worker's prewarmed job process)."""

    whisper: WhisperModel
    voice: HibariVoice


class AvatarBot:
    """One talking avatar in one LiveKit room: the pipeline plus its room behaviour.

    `token` is the join token (else one is minted from the settings); `models` are already
    loaded models to use instead of loading them here; `records` says where the conversation
    is recorded (None: not recorded); `face_marker` marks each face picture with its audio (the
    A/V probe of tests/support/probe_bot.py; None in service).
    """

    def __init__(self, *, settings: BotSettings, room: str, token: str | None = None,
                 models: BotModels | None = None, records: RecordsOptions | None = None,
                 face_marker: FrameMarker | None = None):
        self._settings = settings
        self._room = room
        self._greeted = False
        self._leave_task: asyncio.Task | None = None
        self._names: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._face_notices: list[str] = []  # face-engine fallbacks not yet sent to clients
        # The room's owner: its first person (RTVI disconnect-bot policy "owner").
        self._owner: str | None = None

        face_settings = settings.face
        self.transport = LiveKitTransport(
            url=settings.livekit_url,
            token=token or bot_token(settings, room),
            room_name=room,
            params=LiveKitParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                audio_out_sample_rate=AUDIO_OUT_SAMPLE_RATE,
                audio_out_queue_size_ms=settings.audio_out_queue_ms,
                video_out_enabled=True,
                video_out_width=face_settings.width,
                video_out_height=face_settings.height,
                video_out_framerate=face_settings.fps,
                video_out_is_live=FaceVideoProcessor.VIDEO_OUT_IS_LIVE,
                # With a bitrate the track is published at the face's frame rate; without one
                # LiveKit's encoding preset for this size caps it at 20 fps.
                video_out_max_bitrate=settings.video_max_bitrate,
            ),
        )
        # A face that drops frames under load looks broken; a softer one does not; one layer, so
        # that no viewer is switched between layers mid-turn (issue 12).
        keep_every_picture(self.transport)
        # One clock for sound and face: each picture is published once, paced with its audio by
        # LiveKit's AVSynchronizer (issue 12); a still face is not re-encoded (issue 14).
        PicturesInStep(self.transport, fps=face_settings.fps, queue_ms=settings.audio_out_queue_ms)
        # Listening to a person costs the event loop per frame: LiveKit resamples and frames it.
        receive_audio_as(self.transport, sample_rate=AUDIO_IN_SAMPLE_RATE,
                         frame_ms=AUDIO_IN_FRAME_MS)
        self.addressing = MeetingAddressing(
            matcher=NameMatcher(names=settings.names),
            humans=self.humans,
            display_name=self.display_name,
            follow_up_secs=settings.follow_up_secs,
            turn_max_wait_secs=settings.turn_max_wait_secs,
            answer_only_when_addressed=settings.group_answer_only_when_addressed,
            call_reply=settings.call_reply,
        )
        self.speech = ParticipantSpeechSegmenter(
            # Start time and volume floor set by bench/vad_onset_bench.py: they decide how soon
            # a person talking over the bot is heard (barge-in).
            vad_factory=lambda: SileroVADAnalyzer(params=VADParams(
                start_secs=settings.vad_start_secs, stop_secs=settings.vad_stop_secs,
                min_volume=settings.vad_min_volume)),
            is_agent=self.is_agent,
            on_speech_started=self.addressing.speech_started,
            on_speech_stopped=self.addressing.speech_stopped,
            # Whisper starts on an utterance while the VAD waits out its stop time (the STT
            # takes that run's result if the person said no more).
            pause_secs=settings.stt_early_secs or None,
        )
        # Transcripts keep their own segment's speaker (Pipecat stamps the latest one heard).
        self.stt = stt = AvatarWhisperSTTService(
            model=settings.whisper_model,
            loaded_model=models.whisper if models else None,
            compute_type=settings.whisper_compute_type,
            ttfs_p99_latency=WHISPER_TTFS_P99_SECS,
            beam_size=settings.stt_beam_size,
            hotwords=settings.stt_hotwords,
            # The one place the bot's name biases the recogniser. tiny.en heard "Ava" as
            # "But", "Um" or nothing in live meetings; a prompt that spells the name makes it
            # write it (hotwords alone made it drop a leading name: README, Meetings).
            initial_prompt=settings.stt_initial_prompt or recogniser_prompt(settings.name),
        )
        self.llm = OLLamaLLMService(
            base_url=settings.ollama_openai_url,
            settings=OLLamaLLMService.Settings(
                model=settings.ollama_model,
                system_instruction=settings.system_prompt,
                temperature=settings.llm_temperature,
                seed=settings.llm_seed,
                max_tokens=settings.llm_max_tokens,
            ),
        )
        # A bot replacing a killed one resumes the room's open session: its context, no greeting.
        opened = open_records(options=records, room=room, bot_identity=settings.identity)
        self._greeted = opened.resumed
        # plain dict messages in OpenAI's chat shape
        self.context = LLMContext(opened.history)  # type: ignore[arg-type]
        aggregators = LLMContextAggregatorPair(
            self.context,
            # Turns are opened and closed by MeetingAddressing, per utterance meant for the bot.
            user_params=LLMUserAggregatorParams(
                user_turn_strategies=ExternalUserTurnStrategies(),
                # Pipecat's 5 s safety net ends a turn without its transcript when Whisper is
                # slow (a busy CPU); the addressing stage ends turns long before this.
                user_turn_stop_timeout=USER_TURN_STOP_TIMEOUT_SECS,
            ),
        )
        self.guard = LLMReplyGuard(
            llm=self.llm,
            unreachable_notice=settings.llm_unreachable_notice,
            empty_notice=settings.empty_reply_notice,
            off_track_notice=settings.off_track_notice,
            reminder=settings.language_reminder,
            speaker_names=lambda: (*settings.names, *map(self.display_name, self.humans())),
        )
        # A bounded history: a small model keeps to the question at hand better with less of it.
        aggregators.assistant().add_event_handler("on_assistant_turn_stopped", self._trim_history)
        watchdog = LLMWatchdog(
            wait_notice=settings.llm_wait_notice,
            wait_notice_s=settings.llm_wait_notice_s,
            give_up_notice=settings.llm_give_up_notice,
            give_up_s=settings.llm_give_up_s,
        )
        tts = build_tts(settings, voice=models.voice if models else None)
        engine = face_engine(face_settings.engine, width=face_settings.width,
                             height=face_settings.height, fps=face_settings.fps,
                             sadtalker=(settings.sadtalker
                                        if face_settings.engine == SADTALKER else None),
                             notify=self._face_fell_back)
        face = FaceVideoProcessor.from_settings(face_settings, engine=engine,
                                                ahead_ms=settings.audio_out_queue_ms,
                                                marker=face_marker)

        pipeline = Pipeline(
            [
                self.transport.input(),
                self.speech,
                stt,
                self.addressing,
                aggregators.user(),
                self.llm,
                watchdog,
                self.guard,
                tts,
                face,
                self.transport.output(),
                aggregators.assistant(),
            ]
        )
        self.latency = UtteranceLatencyObserver()
        observers: list[BaseObserver] = [self.latency]
        if opened.recorder:
            observers.append(
                ConversationRecorder(
                    recorder=opened.recorder,
                    transport=self.transport,
                    is_agent=self.is_agent,
                    bot_identity=settings.identity,
                    bot_name=settings.name,
                    user_turns=aggregators.user(),
                    assistant_turns=aggregators.assistant(),
                    latency=self.latency,
                )
            )
        self.worker = PipelineWorker(
            pipeline,
            params=PipelineParams(
                audio_in_sample_rate=AUDIO_IN_SAMPLE_RATE,
                audio_out_sample_rate=AUDIO_OUT_SAMPLE_RATE,
                enable_metrics=True,
                enable_usage_metrics=True,
                # Zero-valued metrics at start would reach a joining client before bot-ready.
                send_initial_empty_metrics=False,
            ),
            observers=observers,
            # RTVI 2.2 as clients read it, bot-tts-timing released at playout, and replies to
            # one client sent to that participant only.
            rtvi_processor=ParticipantRTVIProcessor(may_disconnect_bot=self.may_disconnect_bot),
            # Transcripts reach clients as the STT wrote them (with the speaker's identity), not
            # a second time as the named turn text the addressing stage gives the LLM.
            rtvi_observer_params=RTVIObserverParams(ignored_sources=[self.addressing]),
            # The bot lives as long as people are in the room; emptiness ends it, not silence.
            idle_timeout_secs=None,
        )
        self._wire_events()

    def is_agent(self, identity: str) -> bool:
        """Whether a participant is an agent (never listened to): by identity (the bot's own or
        an agent prefix in any case, avatar_core.identity) or by LiveKit kind."""
        if is_agent_identity(identity, bot_identity=self._settings.identity,
                             prefixes=self._settings.agent_identity_prefixes):
            return True
        # Pipecat's LiveKit transport exposes no participant kind, so read it from its room.
        participant = room_of(self.transport).remote_participants.get(identity)
        return (
            participant is not None
            and participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
        )

    def humans(self) -> list[str]:
        """Identities of the people (not agents) in the room."""
        return [p for p in self.transport.get_participants() if not self.is_agent(p)]

    def display_name(self, identity: str) -> str:
        """The name a participant joined with (their identity when they gave none), cleaned of
        anything that could pass for the bot or a chat-template token in the LLM context."""
        return safe_display_name(self._names.get(identity) or identity)

    def may_disconnect_bot(self, identity: str | None) -> bool:
        """Whether RTVI `disconnect-bot` from `identity` ends the bot (BOT_DISCONNECT_POLICY)."""
        return disconnect_allowed(
            self._settings.disconnect_policy,
            sender=identity,
            owner=self._owner,
            humans=self.humans(),
        )

    def _wire_events(self) -> None:
        transport, latency = self.transport, self.latency
        transport.add_event_handler("on_participant_connected", self._on_participant_connected)
        transport.add_event_handler(
            "on_participant_disconnected", self._on_participant_disconnected
        )
        transport.add_event_handler("on_disconnected", self._on_disconnected)
        latency.add_event_handler("on_latency_measured", self._on_latency_measured)
        latency.add_event_handler("on_latency_breakdown", self._on_latency_breakdown)

    async def _on_participant_connected(self, _transport, identity: str):
        if self.is_agent(identity):
            logger.info(f"agent {identity} joined; its audio is ignored")
            return
        metadata = await self.transport.get_participant_metadata(identity)
        self._names[identity] = metadata.get("name", "")
        self._owner = self._owner or identity
        if len(self.humans()) > 1:
            await self._note(f"{self.display_name(identity)} joined the call.")
        if self._leave_task:
            self._leave_task.cancel()
            self._leave_task = None
        await self._send_face_notices()
        if not self._greeted and self._settings.greeting:
            self._greeted = True
            # (Pipecat runs each event handler in a task of its own, so waiting here is fine.)
            # the worker's RTVI processor is our ParticipantRTVIProcessor
            await self.worker.rtvi.wait_bot_ready(GREETING_CLIENT_READY_WAIT_SECS)  # type: ignore[attr-defined]
            await self.worker.queue_frame(TTSSpeakFrame(self._settings.greeting))

    async def _on_participant_disconnected(self, _transport, identity: str):
        await self.speech.remove_participant(identity)
        if not self.is_agent(identity) and self.humans():
            await self._note(f"{self.display_name(identity)} left the call.")
        if not self.humans() and (self._leave_task is None or self._leave_task.done()):
            logger.info(
                f"room {self._room} has no people left; leaving in "
                f"{self._settings.empty_room_grace_secs:.0f} s unless someone joins"
            )
            self._leave_task = asyncio.create_task(self._leave_when_still_empty())

    async def _leave_when_still_empty(self):
        await asyncio.sleep(self._settings.empty_room_grace_secs)
        if not self.humans():
            logger.info(f"leaving empty room {self._room}")
            await self.worker.end(reason="room empty")

    async def _note(self, text: str) -> None:
        """Tell the LLM who joins and leaves a meeting, without asking for an answer."""
        await self.worker.queue_frame(
            LLMMessagesAppendFrame(messages=[{"role": "system", "content": text}], run_llm=False)
        )

    async def _on_disconnected(self, _transport):
        logger.info(f"disconnected from room {self._room}; stopping")
        await self.worker.cancel(reason="room closed")

    async def _trim_history(self, *_):
        """Keep the context's history bounded (`trimmed_history`), and have Ollama read what is
        kept now, while the answer is spoken, rather than when the next question comes."""
        messages = self.context.get_messages()
        kept = trimmed_history(messages, self._settings.llm_history_messages)
        if len(kept) < len(messages):
            self.context.set_messages(kept)
            if all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in kept):
                logger.info(f"history trimmed to {len(kept)} messages; the LLM reads them now")
                threading.Thread(target=warm_up_llm, args=(self._settings, kept),
                                 name="llm-history-warm-up", daemon=True).start()

    async def _on_latency_measured(self, _observer, seconds: float):
        logger.info(f"turn latency (user stopped → bot speaking): {seconds * 1000:.0f} ms")

    async def _on_latency_breakdown(self, _observer, breakdown: LatencyBreakdown):
        for line in breakdown.turn_contribution_lines():
            logger.info(f"  {line}")
        await self.worker.rtvi.send_server_message(
            {
                "type": LATENCY_MESSAGE_TYPE,
                "measured_from": breakdown.measured_from,
                "total_ms": round(breakdown.total_secs * 1000),
                "user_turn_ms": _ms(breakdown.user_turn_secs),
                "ttfb_ms": {t.processor: _ms(t.duration_secs) for t in breakdown.ttfb},
                "contributions": [
                    {"key": c.key, "owner": c.owner, "ms": _ms(c.duration_secs)}
                    for c in breakdown.contributions
                ],
                # How often the reply guard held back a reply, asked again or spoke a notice.
                "reply_guard": dict(self.guard.counts),
                # How often a transcript came from an early run, and how many were wasted.
                "early_transcripts": _early_counts(self.stt.early_transcripts),
            }
        )

    def _face_fell_back(self, reason: str) -> None:
        """The face engine handed over to the builtin face (called from any thread): tell the
        people in the room now, or whoever joins first."""
        self._face_notices.append(reason)
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(lambda: loop.create_task(self._send_face_notices()))

    async def _send_face_notices(self) -> None:
        while self._face_notices:
            reason = self._face_notices.pop(0)
            await self.worker.rtvi.send_server_message(
                {"type": FACE_FALLBACK_MESSAGE_TYPE, "engine": "builtin", "reason": reason}
            )

    async def run(self, *, handle_signals: bool = True) -> None:
        """Join the room and run until the room empties or closes (or SIGINT/SIGTERM when
        `handle_signals`; a LiveKit job is stopped by its worker instead)."""
        self._loop = asyncio.get_running_loop()
        runner = WorkerRunner(handle_sigint=handle_signals, handle_sigterm=handle_signals)
        await runner.add_workers(self.worker)
        await runner.run()


def trimmed_history(messages: list, limit: int) -> list:
    """The history to keep: past `limit` messages, the newer half. Ollama reuses its cache of an
    unchanged prompt prefix, so a trim every few turns costs one full prompt read instead of one
    per turn."""
    return messages[-(limit // 2) :] if len(messages) > limit else messages


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _early_counts(early: EarlyTranscripts | None) -> dict[str, int]:
    return {"used": early.used, "dropped": early.dropped} if early else {}


def disconnect_allowed(
    policy: str, *, sender: str | None, owner: str | None, humans: list[str]
) -> bool:
    """The disconnect-bot policy: "anyone"; "owner" = the room's first person while alone with
    the bot (never in a group); "never"."""
    if policy == "anyone":
        return True
    return policy == "owner" and sender is not None and sender == owner and humans == [sender]


def recogniser_prompt(name: str) -> str:
    """Whisper's initial prompt: the bot's name alone, "Ava." On 48 utterances of three test
    voices captured through LiveKit (Opus), tiny.en wrote the name in 17 of 18 that said it and
    in none of 30 that did not; with "Hey Ava." 15 of 18, and it wrote "Hey Ava." for "Hey,
    everyone."; with hotwords added, 17 of 18 but 3 of 30 false. A list of names made it write
    "Ava, Ava, Ava…" for noise; this prompt wrote nothing for noise, hum or clicks."""
    return f"{name}."


def build_tts(settings: BotSettings, *, voice: HibariVoice | None = None) -> TimedTTSService:
    """The embedded voice, or GPT-SoVITS when GPT_SOVITS_URL is set (the embedded voice is then
    its fallback while the server is down). `voice` is an already loaded embedded voice."""
    embedded = EmbeddedVoice(hibari=voice or settings.voice.load())
    if settings.gpt_sovits is None:
        return EmbeddedTTSService(voice=embedded)
    return GPTSoVITSTTSService(
        options=settings.gpt_sovits,
        aligner=WhisperAligner.from_settings(settings.aligner),
        fallback=embedded,
    )
