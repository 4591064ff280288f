"""ParticipantSpeechSegmenter: each person's speech, cut by their own (real Silero) VAD."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import (
    InterruptionFrame,
    TextFrame,
    UserAudioRawFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import run_test

from bot.pipeline import AUDIO_IN_FRAME_MS, AUDIO_IN_SAMPLE_RATE
from bot.settings import BotSettings
from processors.frames import SpeechPausedFrame, SpeechResumedFrame
from processors.participant_speech import ParticipantSpeechSegmenter
from tests.support.human import resample
from tests.support.voices import speak, voiced

RATE = AUDIO_IN_SAMPLE_RATE
CHUNK = RATE * AUDIO_IN_FRAME_MS // 1000  # the frames LiveKit delivers to the bot


def _speech(text: str, voice: str = "embedded", *, lead_s=0.3, tail_s=1.0) -> np.ndarray:
    audio, rate = speak(text, voice)
    audio = resample(audio, rate, RATE)
    return np.concatenate([np.zeros(int(lead_s * RATE), np.int16), audio,
                           np.zeros(int(tail_s * RATE), np.int16)])


def _frames(identity: str, samples: np.ndarray) -> list[UserAudioRawFrame]:
    return [UserAudioRawFrame(audio=samples[i : i + CHUNK].tobytes(), sample_rate=RATE,
                              num_channels=1, user_id=identity)
            for i in range(0, len(samples) - CHUNK + 1, CHUNK)]


def _interleave(*streams: list) -> list:
    """Frames of several people arriving together, as LiveKit delivers overlapping speech."""
    out = []
    for i in range(max(len(s) for s in streams)):
        out += [s[i] for s in streams if i < len(s)]
    return out


def _segmenter(**kwargs) -> ParticipantSpeechSegmenter:
    return ParticipantSpeechSegmenter(
        vad_factory=lambda: SileroVADAnalyzer(params=VADParams(stop_secs=0.5)),
        is_agent=lambda identity: identity.startswith("agent-"), **kwargs)


def _utterances(down) -> list[tuple[str, float]]:
    """(speaker, seconds) of each utterance, checking each is framed by VAD start/stop."""
    out = []
    for i, frame in enumerate(down):
        if isinstance(frame, UserAudioRawFrame):
            assert isinstance(down[i - 1], VADUserStartedSpeakingFrame)
            assert isinstance(down[i + 1], VADUserStoppedSpeakingFrame)
            out.append((frame.user_id, len(frame.audio) / 2 / RATE))
    return out


def test_each_frame_the_bot_receives_is_one_vad_window():
    vad = SileroVADAnalyzer()
    vad.set_sample_rate(RATE)
    assert vad.num_frames_required() == CHUNK


async def test_two_people_overlapping_are_each_heard_whole_and_attributed():
    alice = _speech("What is the capital of France?")
    bob = _speech("I think the meeting starts at noon tomorrow.", "espeak-m", lead_s=1.0)
    down, _ = await run_test(_segmenter(), frames_to_send=_interleave(
        _frames("alice", alice), _frames("bob", bob)))
    heard = _utterances(down)
    assert sorted(who for who, _ in heard) == ["alice", "bob"]
    lengths = dict(heard)
    # Whole utterances: each at least its speech (the VAD cut nothing off), not the other's.
    assert lengths["alice"] >= (len(alice) / RATE - 1.3) * 0.95
    assert lengths["bob"] >= (len(bob) / RATE - 2.0) * 0.95


async def test_people_in_turn_give_one_utterance_each_and_agents_are_never_heard():
    frames = (_frames("alice", _speech("Good morning everyone."))
              + _frames("agent-other", _speech("I am another bot speaking."))
              + _frames("bob", _speech("Morning, shall we start?", "piper")))
    down, _ = await run_test(_segmenter(), frames_to_send=frames)
    assert [who for who, _ in _utterances(down)] == ["alice", "bob"]


async def test_only_a_person_who_may_interrupt_interrupts_when_they_start_speaking():
    frames = _frames("bob", _speech("Just talking to Alice here.")) + _frames(
        "alice", _speech("Stop, please."))
    segmenter = _segmenter(on_speech_started=lambda identity: identity == "alice")
    down, up = await run_test(segmenter, frames_to_send=frames)
    interruptions = [i for i, f in enumerate(down) if isinstance(f, InterruptionFrame)]
    assert len(interruptions) == 1 and any(isinstance(f, InterruptionFrame) for f in up)
    first_bob = next(i for i, f in enumerate(down) if isinstance(f, UserAudioRawFrame))
    assert interruptions[0] > first_bob  # raised when alice began, after bob's utterance


async def test_other_frames_pass_untouched():
    down, _ = await run_test(_segmenter(), frames_to_send=[TextFrame("hi")],
                             expected_down_frames=[TextFrame])
    assert down[0].text == "hi"


def _paused_question(pause_s: float = 0.2) -> np.ndarray:
    """"What is the capital" — `pause_s` of silence — "of France?": one utterance, a pause in it."""
    first, rest = (_trimmed(_speech(text, lead_s=0, tail_s=0)) for text in
                   ("What is the capital", "of France?"))
    return np.concatenate([np.zeros(int(0.3 * RATE), np.int16), first,
                           np.zeros(int(pause_s * RATE), np.int16), rest,
                           np.zeros(RATE, np.int16)])


def _trimmed(samples: np.ndarray) -> np.ndarray:
    """The spoken part (the voice pads its sentences)."""
    return voiced(samples, RATE)


async def test_a_pause_inside_an_utterance_is_reported_and_withdrawn_when_speech_goes_on():
    down, _ = await run_test(_segmenter(pause_secs=0.1),
                             frames_to_send=_frames("alice", _paused_question()))
    kinds = [type(f) for f in down if isinstance(
        f, (SpeechPausedFrame, SpeechResumedFrame, UserAudioRawFrame))]
    # The pause between the words is reported and withdrawn; the end is reported, then the one
    # utterance follows.
    assert kinds == [SpeechPausedFrame, SpeechResumedFrame, SpeechPausedFrame,
                     UserAudioRawFrame], kinds
    paused = [f for f in down if isinstance(f, SpeechPausedFrame)]
    utterance = next(f for f in down if isinstance(f, UserAudioRawFrame))
    assert all(f.user_id == "alice" for f in paused)
    # The last report's audio is the utterance up to its final quiet: what follows is quiet.
    assert utterance.audio.startswith(paused[-1].audio)
    tail = np.frombuffer(utterance.audio[len(paused[-1].audio):], np.int16)
    assert 0.3 <= len(tail) / RATE <= 0.5 + AUDIO_IN_FRAME_MS / 1000, len(tail) / RATE
    assert np.abs(tail).max() < 0.05 * np.abs(np.frombuffer(utterance.audio, np.int16)).max()


async def test_without_a_pause_time_no_pause_is_reported():
    down, _ = await run_test(_segmenter(), frames_to_send=_frames("alice", _paused_question()))
    assert not [f for f in down if isinstance(f, (SpeechPausedFrame, SpeechResumedFrame))]
    assert [who for who, _ in _utterances(down)] == ["alice"]


PAUSE_S = 0.45


async def test_an_utterance_that_starts_as_the_last_one_ends_keeps_its_first_word():
    # People pause at a comma about as long as the bot's default stop time (0.3 s; Piper's
    # "Tell me, Ava, ..." pauses 0.30 s): the VAD may end the utterance after "Tell me," just as
    # "Ava" begins. The next utterance's pre-roll must reach back into the quiet before "Ava" (it
    # began in the audio that ended the first utterance).
    bot = {f.name: f.default for f in fields(BotSettings)}  # the VAD the bot runs by default
    params = VADParams(start_secs=bot["vad_start_secs"], stop_secs=bot["vad_stop_secs"],
                       min_volume=bot["vad_min_volume"])
    segmenter = ParticipantSpeechSegmenter(vad_factory=lambda: SileroVADAnalyzer(params=params),
                                           is_agent=lambda identity: False)
    first, rest = (_trimmed(_speech(text, "piper", lead_s=0, tail_s=0))
                   for text in ("Tell me,", "Ava, how many days are in a week?"))
    clip = np.concatenate([np.zeros(int(0.3 * RATE), np.int16), first,
                           np.zeros(int(PAUSE_S * RATE), np.int16), rest,
                           np.zeros(RATE, np.int16)])
    down, _ = await run_test(segmenter, frames_to_send=_frames("carol", clip))
    utterances = [np.frombuffer(f.audio, np.int16) for f in down
                  if isinstance(f, UserAudioRawFrame)]
    # Piper's pauses vary from run to run (its VITS noise is random), so the comma after "Ava" may
    # split off a third utterance; the case under test is the second one's start.
    assert len(utterances) >= 2, "the comma's pause no longer splits: this case is not tested"
    peak = np.abs(clip).max()
    lead = utterances[1][: int(0.2 * RATE)]
    assert np.abs(lead).max() < 0.05 * peak  # quiet before the first word: nothing clipped
