"""Hears every participant: one voice-activity detector per person, one utterance at a time.

LiveKit delivers each remote participant's audio as its own stream of `UserAudioRawFrame`s
tagged with the participant's identity, interleaved in one input. A VAD and a segmented STT
need one voice, so this processor keeps a VAD analyzer per human participant, cuts each
person's audio into utterances, and emits every finished utterance to the STT on its own, as
Pipecat's segmented STT expects it:

    VADUserStartedSpeakingFrame, UserAudioRawFrame(user_id=who, audio=utterance),
    VADUserStoppedSpeakingFrame

so two people speaking in turn, or at the same time, are each transcribed and the transcript
carries the speaker's identity. Live audio does not pass on (the STT gets whole utterances).
Agents (the bot itself is not a remote participant; other bots and avatars are) are never
heard. When a person starts speaking, `on_speech_started` is told; when it answers that this
person may interrupt the bot, an interruption is broadcast at once, before the transcript.

With `pause_secs`, a person quiet that long inside an utterance (the VAD is waiting out its stop
time) gets a `SpeechPausedFrame` with the utterance so far, so the STT can transcribe it while
the VAD makes sure; a `SpeechResumedFrame` follows if they speak again before the end.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADState
from pipecat.frames.frames import (
    Frame,
    UserAudioRawFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from processors.frames import SpeechPausedFrame, SpeechResumedFrame

# Audio kept from before the VAD confirmed speech (its start_secs plus this), so the first
# syllable, often the bot's name, is not clipped, even when it began in the quiet that ended the
# person's last utterance.
PRE_ROLL_SECS = 0.3
# An utterance longer than this is cut and transcribed, so one talker cannot hold the STT.
MAX_UTTERANCE_SECS = 20.0


@dataclass
class _Voice:
    """One participant's detector and the audio of the utterance in progress."""

    vad: VADAnalyzer
    pre_roll: collections.deque = field(default_factory=collections.deque)
    pre_roll_bytes: int = 0
    utterance: bytearray = field(default_factory=bytearray)
    speaking: bool = False
    quiet_secs: float = 0.0  # of the utterance's current stretch the VAD heard as quiet
    paused: bool = False  # a SpeechPausedFrame is out for the utterance as it is now


class ParticipantSpeechSegmenter(FrameProcessor):
    """Cuts each human participant's audio into utterances with a VAD of their own."""

    def __init__(
        self,
        *,
        vad_factory: Callable[[], VADAnalyzer],
        is_agent: Callable[[str], bool],
        on_speech_started: Callable[[str], bool] = lambda _identity: False,
        on_speech_stopped: Callable[[str], None] = lambda _identity: None,
        pause_secs: float | None = None,
        **kwargs,
    ):
        """Create the segmenter.

        Args:
            vad_factory: Makes a fresh VAD analyzer (one per participant; they keep state).
            is_agent: Whether an identity is an agent, never listened to.
            on_speech_started: Called with each person who starts to speak; returns whether
                they interrupt the bot at once.
            on_speech_stopped: Called with each person whose utterance just ended (its audio
                goes to the STT now).
            pause_secs: Quiet inside an utterance after which a `SpeechPausedFrame` goes out
                (None: never). Shorter than the VAD's stop time to be of use.
        """
        super().__init__(**kwargs)
        self._vad_factory = vad_factory
        self._is_agent = is_agent
        self._on_speech_started = on_speech_started
        self._on_speech_stopped = on_speech_stopped
        self._pause_secs = pause_secs
        self._voices: dict[str, _Voice] = {}

    @property
    def participants(self) -> list[str]:
        """Identities that currently have a detector."""
        return list(self._voices)

    async def remove_participant(self, identity: str) -> None:
        """Forget a participant who left, releasing their detector."""
        voice = self._voices.pop(identity, None)
        if voice:
            await voice.vad.cleanup()

    async def cleanup(self):
        """Release every participant's detector."""
        await super().cleanup()
        for identity in list(self._voices):
            await self.remove_participant(identity)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Segment participants' audio; pass every other frame on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, UserAudioRawFrame) and frame.user_id:
            if not self._is_agent(frame.user_id):
                await self._hear(frame)
            return
        await self.push_frame(frame, direction)

    def _voice(self, identity: str, sample_rate: int) -> _Voice:
        voice = self._voices.get(identity)
        if voice is None:
            vad = self._vad_factory()
            vad.set_sample_rate(sample_rate)
            voice = self._voices[identity] = _Voice(vad=vad)
            logger.info(f"{self}: listening to {identity}")
        return voice

    async def _hear(self, frame: UserAudioRawFrame) -> None:
        voice = self._voice(frame.user_id, frame.sample_rate)
        state = await voice.vad.analyze_audio(frame.audio)
        bytes_per_sec = frame.sample_rate * 2 * frame.num_channels
        # The pre-roll is the person's latest audio whether or not it was in an utterance: when
        # one starts right after another ended (a pause at a comma just longer than the stop
        # time), its first word began in the audio that ended the last one.
        voice.pre_roll.append(frame.audio)
        voice.pre_roll_bytes += len(frame.audio)
        keep = (voice.vad.params.start_secs + PRE_ROLL_SECS) * bytes_per_sec
        while voice.pre_roll_bytes - len(voice.pre_roll[0]) >= keep:
            voice.pre_roll_bytes -= len(voice.pre_roll.popleft())
        if voice.speaking:
            voice.utterance += frame.audio
            ended = state == VADState.QUIET
            if ended or len(voice.utterance) >= MAX_UTTERANCE_SECS * bytes_per_sec:
                await self._emit(frame, voice, ended=ended)
            else:
                await self._follow_pause(frame, voice, state, len(frame.audio) / bytes_per_sec)
            return
        if state == VADState.SPEAKING:
            voice.speaking = True
            voice.utterance = bytearray(b"".join(voice.pre_roll))
            if self._on_speech_started(frame.user_id):
                logger.debug(f"{self}: {frame.user_id} speaks and may interrupt the bot")
                await self.broadcast_interruption()

    async def _follow_pause(self, frame: UserAudioRawFrame, voice: _Voice, state: VADState,
                            secs: float) -> None:
        """Tell the STT when the person pauses inside the utterance, and when they go on."""
        if self._pause_secs is None:
            return
        if state == VADState.STOPPING:
            voice.quiet_secs += secs
            if not voice.paused and voice.quiet_secs >= self._pause_secs - 1e-6:
                voice.paused = True
                await self.push_frame(SpeechPausedFrame(
                    user_id=frame.user_id, audio=bytes(voice.utterance),
                    sample_rate=frame.sample_rate))
            return
        voice.quiet_secs = 0.0
        await self._resume(frame.user_id, voice)

    async def _resume(self, identity: str, voice: _Voice) -> None:
        if voice.paused:
            voice.paused = False
            await self.push_frame(SpeechResumedFrame(user_id=identity))

    async def _emit(self, frame: UserAudioRawFrame, voice: _Voice, *, ended: bool) -> None:
        """Hand one finished utterance to the STT, start to end, attributed to its speaker."""
        if not ended:
            await self._resume(frame.user_id, voice)  # cut while speaking: not the paused audio
        voice.speaking, voice.paused, voice.quiet_secs = not ended, False, 0.0
        if ended:
            self._on_speech_stopped(frame.user_id)
        audio, voice.utterance = bytes(voice.utterance), bytearray()
        params = voice.vad.params
        await self.push_frame(VADUserStartedSpeakingFrame(start_secs=params.start_secs))
        await self.push_frame(
            UserAudioRawFrame(
                audio=audio,
                sample_rate=frame.sample_rate,
                num_channels=frame.num_channels,
                user_id=frame.user_id,
            )
        )
        await self.push_frame(
            VADUserStoppedSpeakingFrame(stop_secs=params.stop_secs if ended else 0.0,
                                        timestamp=time.time())
        )
