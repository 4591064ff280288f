"""The bot's Pipecat pipeline for one LiveKit room (ARCHITECTURE §3) and its room behaviour.

LiveKit in → speaker selection → Whisper STT → meeting addressing → user context (Silero VAD +
smart-turn v3, ended early by a clearly complete transcript) → Ollama LLM → reply guard →
embedded-voice TTS → face video → LiveKit out → assistant context (a bounded history).
RTVI (processor + observer) is added by the `PipelineWorker` itself and speaks over the LiveKit
data channel. Around the pipeline: greeting the first person, leaving when the room empties or
closes, and reporting per-turn latency (log + RTVI).
"""

from __future__ import annotations

import asyncio
import os

from livekit import rtc
from loguru import logger
from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.observers.user_bot_latency_observer import LatencyBreakdown, UserBotLatencyObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.services.ollama.llm import OLLamaLLMService
from pipecat.transports.livekit.transport import LiveKitParams, LiveKitTransport
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from bot.addressing import MeetingAddressing
from bot.reply_guard import LLMReplyGuard
from bot.settings import BotSettings
from bot.token import bot_token
from processors.face.video import FaceSettings, FaceVideoProcessor
from processors.speakers import SpeakerSelector
from processors.stt.whisper import DecodingWhisperSTTService
from processors.turns.transcript_turn_stop import TranscriptTurnStopStrategy
from processors.align.whisper_aligner import WhisperAligner, WhisperAlignerSettings
from processors.tts.embedded import EmbeddedTTSService, EmbeddedVoiceSettings
from processors.tts.gpt_sovits import ENV_URL as GPT_SOVITS_URL_ENV
from processors.tts.gpt_sovits import GPTSoVITSSettings, GPTSoVITSTTSService
from processors.tts.hibari_voice import HibariVoice
from processors.tts.timed import TimedTTSService

# RTVI server-message type carrying one turn's measured latency and its breakdown.
LATENCY_MESSAGE_TYPE = "bot-latency"
# Audio rates: Whisper and the VAD work at 16 kHz; the embedded voice speaks at 24 kHz.
AUDIO_IN_SAMPLE_RATE = 16000
AUDIO_OUT_SAMPLE_RATE = 24000
# Pipecat's non-live video loop sleeps a whole frame period after each draw, so it runs a few
# percent slower than asked (~23 of 25 fps here); drawing a little faster keeps every face frame
# on the track (the current picture is then sometimes sent twice).
VIDEO_DRAW_HEADROOM_FPS = 5
# Whisper tiny.en on 2 CPU cores: end of speech → transcript, p99 (s). Whisper's transcripts are
# final per segment, so this only bounds the turn detector's safety net.
WHISPER_TTFS_P99_SECS = 1.5
# Longest a turn waits for its transcript after the person stopped before it is dropped (s).
USER_TURN_STOP_TIMEOUT_SECS = 15.0


class AvatarBot:
    """One talking avatar in one LiveKit room: the pipeline plus its room behaviour."""

    def __init__(self, *, settings: BotSettings, room: str):
        self._settings = settings
        self._room = room
        self._greeted = False
        self._leave_task: asyncio.Task | None = None
        self._names: dict[str, str] = {}

        face_settings = FaceSettings.from_env()
        self.transport = LiveKitTransport(
            url=settings.livekit_url,
            token=bot_token(settings, room),
            room_name=room,
            params=LiveKitParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                audio_out_sample_rate=AUDIO_OUT_SAMPLE_RATE,
                audio_out_queue_size_ms=settings.audio_out_queue_ms,
                video_out_enabled=True,
                video_out_width=face_settings.width,
                video_out_height=face_settings.height,
                video_out_framerate=face_settings.fps + VIDEO_DRAW_HEADROOM_FPS,
                video_out_is_live=FaceVideoProcessor.VIDEO_OUT_IS_LIVE,
                # With a bitrate the track is published at the face's frame rate; without one
                # LiveKit's encoding preset for this size caps it at 20 fps.
                video_out_max_bitrate=settings.video_max_bitrate,
            ),
        )
        self.speakers = SpeakerSelector(is_agent=self.is_agent)
        stt = DecodingWhisperSTTService(
            model=settings.whisper_model,
            compute_type=settings.whisper_compute_type,
            beam_size=settings.stt_beam_size,
            hotwords=settings.stt_hotwords,
            initial_prompt=settings.stt_initial_prompt,
            ttfs_p99_latency=WHISPER_TTFS_P99_SECS,
        )
        addressing = MeetingAddressing(
            bot_name=settings.name,
            humans=self.humans,
            display_name=lambda identity: self._names.get(identity) or identity,
            answer_only_when_addressed=settings.group_answer_only_when_addressed,
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
        self.context = LLMContext()
        aggregators = LLMContextAggregatorPair(
            self.context,
            user_params=LLMUserAggregatorParams(
                # Start time and volume floor set by bench/vad_onset_bench.py: they decide
                # how soon a person talking over the bot is heard (barge-in).
                vad_analyzer=SileroVADAnalyzer(params=VADParams(
                    start_secs=settings.vad_start_secs, stop_secs=settings.vad_stop_secs,
                    min_volume=settings.vad_min_volume)),
                # Pipecat's 5 s safety net ends a turn without its transcript when Whisper is
                # slow (a busy CPU); the turn strategies end turns long before this.
                user_turn_stop_timeout=USER_TURN_STOP_TIMEOUT_SECS,
                user_turn_strategies=UserTurnStrategies(stop=[TranscriptTurnStopStrategy(
                    max_wait_secs=settings.turn_max_wait_secs,
                    turn_analyzer=LocalSmartTurnAnalyzerV3(
                        params=SmartTurnParams(stop_secs=settings.turn_max_wait_secs)),
                )]),
            ),
        )
        self.guard = LLMReplyGuard(
            llm=self.llm,
            unreachable_notice=settings.llm_unreachable_notice,
            empty_notice=settings.empty_reply_notice,
            off_track_notice=settings.off_track_notice,
            reminder=settings.language_reminder,
        )
        # A bounded history: a small model keeps to the question at hand better with less of it.
        aggregators.assistant().add_event_handler("on_assistant_turn_stopped", self._trim_history)
        tts = build_tts()
        face = FaceVideoProcessor.from_settings(face_settings)

        pipeline = Pipeline(
            [
                self.transport.input(),
                self.speakers,
                stt,
                addressing,
                aggregators.user(),
                self.llm,
                self.guard,
                tts,
                face,
                self.transport.output(),
                aggregators.assistant(),
            ]
        )
        self.latency = UserBotLatencyObserver()
        self.worker = PipelineWorker(
            pipeline,
            params=PipelineParams(
                audio_in_sample_rate=AUDIO_IN_SAMPLE_RATE,
                audio_out_sample_rate=AUDIO_OUT_SAMPLE_RATE,
                enable_metrics=True,
                enable_usage_metrics=True,
            ),
            observers=[self.latency],
            # The bot lives as long as people are in the room; emptiness ends it, not silence.
            idle_timeout_secs=None,
        )
        self._wire_events()

    def is_agent(self, identity: str) -> bool:
        """Whether a participant is an agent (never listened to): by LiveKit kind or identity."""
        if identity == self._settings.identity or identity.startswith(
            self._settings.agent_identity_prefixes
        ):
            return True
        # Pipecat's LiveKit transport exposes no participant kind, so read it from its room.
        participant = self.transport._client.room.remote_participants.get(identity)
        return participant is not None and participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT

    def humans(self) -> list[str]:
        """Identities of the people (not agents) in the room."""
        return [p for p in self.transport.get_participants() if not self.is_agent(p)]

    def _wire_events(self) -> None:
        transport, latency = self.transport, self.latency
        transport.add_event_handler("on_participant_connected", self._on_participant_connected)
        transport.add_event_handler("on_participant_disconnected", self._on_participant_disconnected)
        transport.add_event_handler("on_active_speaker_changed", self._on_active_speaker_changed)
        transport.add_event_handler("on_disconnected", self._on_disconnected)
        latency.add_event_handler("on_latency_measured", self._on_latency_measured)
        latency.add_event_handler("on_latency_breakdown", self._on_latency_breakdown)

    async def _on_participant_connected(self, _transport, identity: str):
        if self.is_agent(identity):
            logger.info(f"agent {identity} joined; its audio is ignored")
            return
        metadata = await self.transport.get_participant_metadata(identity)
        self._names[identity] = metadata.get("name", "")
        if self._leave_task:
            self._leave_task.cancel()
            self._leave_task = None
        if not self._greeted and self._settings.greeting:
            self._greeted = True
            await self.worker.queue_frame(TTSSpeakFrame(self._settings.greeting))

    async def _on_participant_disconnected(self, _transport, identity: str):
        self.speakers.remove_participant(identity)
        if not self.humans() and (self._leave_task is None or self._leave_task.done()):
            logger.info(f"room {self._room} has no people left; leaving in "
                        f"{self._settings.empty_room_grace_secs:.0f} s unless someone joins")
            self._leave_task = asyncio.create_task(self._leave_when_still_empty())

    async def _leave_when_still_empty(self):
        await asyncio.sleep(self._settings.empty_room_grace_secs)
        if not self.humans():
            logger.info(f"leaving empty room {self._room}")
            await self.worker.end(reason="room empty")

    async def _on_active_speaker_changed(self, _transport, speaker: dict):
        self.speakers.set_active_speaker(speaker["id"])

    async def _on_disconnected(self, _transport):
        logger.info(f"disconnected from room {self._room}; stopping")
        await self.worker.cancel(reason="room closed")

    async def _trim_history(self, *_):
        """Past the limit, keep the newer half: Ollama reuses its cache of an unchanged prompt
        prefix, so a trim every few turns costs one full prompt read instead of one per turn."""
        messages = self.context.get_messages()
        limit = self._settings.llm_history_messages
        if len(messages) > limit:
            self.context.set_messages(messages[-(limit // 2):])

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
            }
        )

    async def run(self) -> None:
        """Join the room and run until the room empties or closes (or SIGINT/SIGTERM)."""
        runner = WorkerRunner(handle_sigint=True, handle_sigterm=True)
        await runner.add_workers(self.worker)
        await runner.run()


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def build_tts() -> TimedTTSService:
    """The embedded voice, or GPT-SoVITS when GPT_SOVITS_URL is set (the embedded voice is then
    its fallback while the server is down)."""
    voice = EmbeddedVoiceSettings.from_env()
    if not os.environ.get(GPT_SOVITS_URL_ENV):
        return EmbeddedTTSService(settings=voice)
    return GPTSoVITSTTSService(
        settings=GPTSoVITSSettings.from_env(),
        aligner=WhisperAligner.from_settings(WhisperAlignerSettings.from_env()),
        fallback=HibariVoice(voice=voice.voice, speed=voice.speed, threads=voice.threads),
    )
