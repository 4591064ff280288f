"""A stock Pipecat voice bot for the conversation benchmark's baseline (not part of the product).

Same parts as the avatar where they make the conversation: the same Whisper model and decoding,
the same VAD and turn detection, the same Ollama model, system prompt and sampling, the same
embedded voice; but none of the avatar's own processors (speaker selection, meeting addressing,
reply guard, face video, history bound). Audio only. The benchmark times both bots on the same
questions, so the ratio of their voice-to-voice latencies is the avatar's cost.

    python bench/baseline_bot.py --room NAME   (settings from the environment, as `python -m bot`)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avatar_core.settings import load_settings  # noqa: E402
from bot.pipeline import (  # noqa: E402
    AUDIO_IN_SAMPLE_RATE,
    AUDIO_OUT_SAMPLE_RATE,
    USER_TURN_STOP_TIMEOUT_SECS,
    WHISPER_TTFS_P99_SECS,
)
from bot.settings import BotSettings  # noqa: E402
from bot.token import bot_token  # noqa: E402
from processors.stt.whisper import DecodingWhisperSTTService  # noqa: E402
from processors.tts.embedded import EmbeddedTTSService, EmbeddedVoice  # noqa: E402
from processors.tts.hibari_voice import HibariVoice  # noqa: E402
from processors.turns.transcript_turn_stop import TranscriptTurnStopStrategy  # noqa: E402


def build(settings: BotSettings, room: str) -> PipelineWorker:
    """The baseline's pipeline: LiveKit in → STT → user context → LLM → TTS → LiveKit out."""
    transport = LiveKitTransport(
        url=settings.livekit_url,
        token=bot_token(settings, room),
        room_name=room,
        params=LiveKitParams(audio_in_enabled=True, audio_out_enabled=True,
                             audio_out_sample_rate=AUDIO_OUT_SAMPLE_RATE,
                             audio_out_queue_size_ms=settings.audio_out_queue_ms),
    )
    stt = DecodingWhisperSTTService(
        model=settings.whisper_model,
        compute_type=settings.whisper_compute_type,
        beam_size=settings.stt_beam_size,
        hotwords=settings.stt_hotwords,
        initial_prompt=settings.stt_initial_prompt,
        ttfs_p99_latency=WHISPER_TTFS_P99_SECS,
    )
    llm = OLLamaLLMService(
        base_url=settings.ollama_openai_url,
        settings=OLLamaLLMService.Settings(
            model=settings.ollama_model,
            system_instruction=settings.system_prompt,
            temperature=settings.llm_temperature,
            seed=settings.llm_seed,
            max_tokens=settings.llm_max_tokens,
        ),
    )
    aggregators = LLMContextAggregatorPair(
        LLMContext(),
        user_params=LLMUserAggregatorParams(
            vad_analyzer=SileroVADAnalyzer(
                params=VADParams(
                    start_secs=settings.vad_start_secs,
                    stop_secs=settings.vad_stop_secs,
                    min_volume=settings.vad_min_volume,
                )
            ),
            user_turn_stop_timeout=USER_TURN_STOP_TIMEOUT_SECS,
            user_turn_strategies=UserTurnStrategies(
                stop=[
                    TranscriptTurnStopStrategy(
                        max_wait_secs=settings.turn_max_wait_secs,
                        turn_analyzer=LocalSmartTurnAnalyzerV3(
                            params=SmartTurnParams(stop_secs=settings.turn_max_wait_secs)
                        ),
                    )
                ]
            ),
        ),
    )
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            aggregators.user(),
            llm,
            EmbeddedTTSService(voice=EmbeddedVoice(
                hibari=HibariVoice(**load_settings().bot.voice.given()))),
            transport.output(),
            aggregators.assistant(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=AUDIO_IN_SAMPLE_RATE, audio_out_sample_rate=AUDIO_OUT_SAMPLE_RATE
        ),
        idle_timeout_secs=None,
    )

    @transport.event_handler("on_participant_disconnected")
    async def _left(_transport, _identity):
        if not transport.get_participants():
            await worker.end(reason="room empty")

    return worker


async def run(room: str) -> None:
    runner = WorkerRunner(handle_sigint=True, handle_sigterm=True)
    await runner.add_workers(build(BotSettings.from_env(), room))
    await runner.run()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--room", required=True)
    asyncio.run(run(parser.parse_args().room))
