"""A GPT-SoVITS voice in a real LiveKit room with the face in sync.

The GPT-SoVITS STAND-IN server (tests/support/gpt_sovits_standin.py; no GPT-SoVITS weights can
run here) speaks with the Piper test voice, so the aligner works on a voice that is not its own
reference. Each sentence it returns starts with one probe click (a video frame of 1 kHz) before
the speech, which is kept quieter than the click. The real GPTSoVITSTTSService (streaming,
Whisper alignment) feeds the FaceVideoProcessor in probe mode, which flashes its marker in the
frames whose audio holds the click; a HumanParticipant on the real livekit-server records both
tracks and each click is paired with its flash (offset = flash - click, as in test_av_sync.py).
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from faster_whisper import WhisperModel
from loguru import logger
from pipecat.frames.frames import TTSSpeakFrame

from processors.align.whisper_aligner import WhisperAligner
from processors.timing import TimedSpeech, WordTiming
from processors.tts.gpt_sovits import GPTSoVITSSettings, GPTSoVITSTTSService, GPTSoVITSVoice
from processors.tts.hibari_voice import HibariVoice
from tests.support.av_marker import PROBE_TONE_HZ
from tests.support.av_probe import (
    FAIL_BEYOND_S,
    FPS,
    MIN_PAIRED,
    SR,
    av_offsets,
    probe_face_bot,
    wait_for_tracks,
)
from tests.support.gpt_sovits_standin import GPTSoVITSStandIn
from tests.support.human import HumanParticipant
from tests.support.voices import PiperTestVoice

# Sentences whose words Piper's phonemizer keeps one to one (tests/support/voices.py).
SENTENCES = ("The quick brown fox jumps over the lazy dog.",
             "I think we should meet again next week, maybe on Tuesday.",
             "Please remember to bring your notebook and a pen.",
             "Well, that depends on what you mean by simple.",
             "She sells sea shells by the sea shore.",
             "How are you today?")
# Speech peak and click level (shares of full scale): the face's probe marks frames above 0.25,
# the receiver's click detector hears above 0.15, so speech stays below both.
SPEECH_PEAK, CLICK_LEVEL = 0.1, 0.6
LEAD_S = 0.3  # silence before and after the click


class ClickedPiper(PiperTestVoice):
    """The Piper test voice with one probe click in silence before each sentence."""

    def synthesize(self, text: str) -> TimedSpeech:
        speech = super().synthesize(text)
        rate = speech.sample_rate
        click_n = rate // FPS
        t = np.arange(click_n) / rate
        click = CLICK_LEVEL * 32767 * np.sin(2 * np.pi * PROBE_TONE_HZ * t)
        gap = np.zeros(int(LEAD_S * rate))
        voice = speech.audio.astype(np.float64)
        voice *= SPEECH_PEAK * 32767 / max(1.0, np.abs(voice).max())
        audio = np.concatenate([gap, click, gap, voice]).astype(np.int16)
        shift = (2 * len(gap) + click_n) / rate
        words = [WordTiming(w.word, w.start + shift, w.duration) for w in speech.words]
        return TimedSpeech(text=text, audio=audio, sample_rate=rate, words=words)


@pytest.mark.timeout(1500)  # six sentences through Whisper alignment on a loaded 2-core machine
async def test_gpt_sovits_voice_in_a_room_with_the_face_in_sync(livekit, make_token,
                                                                 whisper_model, tmp_path):
    reference = tmp_path / "ref.wav"
    reference.write_bytes(b"RIFF")  # the stand-in only checks that the server can read it
    aligner = WhisperAligner(model=WhisperModel(whisper_model, device="cpu", compute_type="int8",
                                                cpu_threads=1), reference=HibariVoice(seed=5))
    room, bot_identity = "gpt-sovits-face", "voice-bot"
    voice = ClickedPiper()
    await asyncio.to_thread(voice.synthesize, SENTENCES[0])  # loads the Piper model first
    async with GPTSoVITSStandIn(voice=voice, realtime=2.0) as server:
        tts = GPTSoVITSTTSService(
            options=GPTSoVITSSettings(url=server.url, voice=GPTSoVITSVoice(
                ref_audio_path=str(reference), prompt_text="Hello, this is my voice."),
                first_audio_timeout_s=90.0, chunk_timeout_s=90.0),
            aligner=aligner, sample_rate=SR)
        async with HumanParticipant.connect(livekit.url, make_token(room, "viewer")) as viewer, \
                probe_face_bot(livekit.url, make_token(room, bot_identity, agent=True), room,
                               before_face=[tts]) as bot:
            await wait_for_tracks(viewer, bot_identity, 30)
            await bot.queue_frames([TTSSpeakFrame(text) for text in SENTENCES])
            await viewer.wait_for(lambda: server.completed == len(SENTENCES), 900,
                                  what="every sentence from the GPT-SoVITS stand-in")
            await asyncio.sleep(sum(s.duration for s in server.spoken) + 3.0)

    heard, offsets = av_offsets(viewer, bot_identity)
    ms = np.array(offsets) * 1000
    logger.info(f"GPT-SoVITS stand-in (Piper voice) A/V offset over {len(ms)}/{len(SENTENCES)} "
                f"clicks: median {np.median(ms):+.0f} ms, min {ms.min():+.0f}, max {ms.max():+.0f}")
    assert len(heard) >= len(SENTENCES), f"only {len(heard)} of {len(SENTENCES)} clicks heard"
    assert len(offsets) >= MIN_PAIRED * len(SENTENCES), f"only {len(offsets)} clicks paired"
    assert abs(np.median(ms)) <= FAIL_BEYOND_S * 1000, f"A/V offset {np.median(ms):+.0f} ms"
