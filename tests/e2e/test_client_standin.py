"""The browser page against a real livekit-server and a STAND-IN bot (tests/e2e/standin_bot.py).

Headless Chromium joins with a fake microphone; the stand-in hears it, answers with the embedded
voice, a mouth-synced video track and the bot's RTVI messages. Checks the page's own side:
transport, transcript with word progress, video frame rate, audible bot audio, its latency and
A/V offset measurements, and the TalkingHead 3D mode driven by `bot-tts-timing`.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import numpy as np
import pytest
from faster_whisper import WhisperModel
from loguru import logger
from PIL import Image

from processors.tts.hibari_voice import HibariVoice
from tests.e2e.browser import page_results, run_browser, write_fake_mic_wav
from tests.e2e.standin_bot import StandInBot
from tests.support.human import HumanParticipant, resample
from tests.support.probe import words_of
from tests.support.speech import speak

QUESTION = "Hello avatar, how are you today?"
WHISPER_RATE = 16000
REPLY = "Hello there, I am the stand-in avatar. I can hear you clearly. Let us talk for a while."
STATS = "JSON.parse(JSON.stringify(window.avatarStats))"
# 3-D mode: the mouth against the heard audio, median over the reply's sentences.
LIPS_TOLERANCE_MS = 60
# Barge-in: the 3-D mouth stops within this long of the heard audio.
MOUTH_STOP_TOLERANCE_MS = 100
# Page levels: bot audio RMS that is speech (client/src/metrics/turns.js), an open mouth.
SPEECH_RMS = 0.01
OPEN_MOUTH = 0.05


@pytest.fixture(scope="module")
def voice():
    return HibariVoice()


@pytest.fixture(scope="module")
def transcribe(whisper_model):
    """Real faster-whisper for the stand-in: the page's transcript shows what it really heard."""
    model = WhisperModel(whisper_model, device="cpu", compute_type="int8", cpu_threads=1)

    def run(samples: np.ndarray, rate: int) -> str:
        audio = resample(samples, rate, WHISPER_RATE).astype(np.float32) / 32768
        segments, _ = model.transcribe(audio, language="en", beam_size=1)
        return " ".join(seg.text.strip() for seg in segments)

    return run


@pytest.fixture(scope="module")
def fake_mic(tmp_path_factory):
    samples, rate = speak(QUESTION)
    return write_fake_mic_wav(
        tmp_path_factory.mktemp("mic") / "hello.wav", samples, rate, lead_s=1.0, tail_s=20.0
    )


async def _talk(
    site,
    livekit,
    make_token,
    voice,
    fake_mic,
    transcribe,
    *,
    mode: str,
    steps: list[dict],
    cut_after_s: float | None = None,
):
    room = f"standin-{uuid.uuid4().hex[:6]}"
    bot_token = make_token(room, "standin-bot", name="Stand-in avatar", agent=True)
    async with HumanParticipant.connect(livekit.url, bot_token) as participant:
        bot = StandInBot(participant=participant, voice=voice, reply=REPLY,
                         transcribe=transcribe, cut_after_s=cut_after_s)
        bot_task = asyncio.create_task(bot.run(timeout=60))
        url = f"{site.url}/?room={room}&name=Tester&autojoin=1" + (
            "&mode=3d" if mode == "3d" else ""
        )
        report = await run_browser(
            {
                "url": url,
                "wav": str(fake_mic),
                "viewport": [1100, 800],
                "steps": steps,
                "diagnose": STATS,
            },
            timeout_s=180,
        )
        sent_fps = bot.sent_fps()
        bot_task.cancel()
        await asyncio.gather(bot_task, return_exceptions=True)
    return page_results(report), sent_fps


async def test_page_talks_to_standin_bot(
    standin_site, livekit, make_token, voice, fake_mic, transcribe, tmp_path
):
    shot = tmp_path / "page.png"
    steps = [
        {"waitFor": "window.avatarStats?.botReady", "timeout_s": 45},
        {
            "waitFor": "avatarStats.transcript.user.length >= 1 && avatarStats.transcript.user",
            "timeout_s": 45,
        },
        {
            "waitFor": "avatarStats.transcript.bot.length >= 3 && avatarStats.transcript.bot",
            "timeout_s": 45,
        },
        {"waitFor": "avatarStats.video.framesDecoded > 100", "timeout_s": 30},
        {"waitFor": "avatarStats.botAudioPeak > 0.02 && avatarStats.botAudioPeak", "timeout_s": 30},
        {
            "waitFor": "document.querySelectorAll('#transcript .word.said').length >= 10",
            "timeout_s": 30,
        },
        {
            "waitFor": "avatarStats.turns.length >= 1 && avatarStats.avOffsets.length >= 1",
            "timeout_s": 30,
        },
        {"screenshot": str(shot)},
        {"eval": STATS},
    ]
    results, sent_fps = await _talk(
        standin_site, livekit, make_token, voice, fake_mic, transcribe, mode="video", steps=steps
    )
    stats = results[-1]
    logger.info(
        "page stats: "
        + json.dumps({k: stats[k] for k in ("turns", "avOffsets", "fps", "video", "audio")})
    )
    print(f"\nvideo stats {stats['video']}")
    print(
        f"\nstand-in sent {sent_fps:.1f} fps; page: voice-to-voice {stats['turns']} ms, "
        f"A/V offset {stats['avOffsets']} ms, {stats['fps']} fps decoded now, "
        f"{stats['fpsPeak']} peak, {stats['presentedFps']} presented, "
        f"bot audio peak {stats['botAudioPeak']:.3f}"
    )
    # What the page's fake microphone said, as the stand-in's Whisper heard it through LiveKit.
    heard = words_of(" ".join(stats["transcript"]["user"]))
    assert len(stats["transcript"]["user"]) == 1 and {"how", "are", "you", "today"} <= set(heard), (
        stats["transcript"]["user"]
    )
    assert "I can hear you clearly." in stats["transcript"]["bot"]
    assert stats["transcript"]["wordEvents"] >= 10
    assert stats["audio"]["totalAudioEnergy"] > 0  # WebRTC saw energy on the unmuted element
    # The page presents what the bot sends: >= 20 fps when the bot manages 25 (a busy host may not).
    assert stats["fpsPeak"] >= min(20, 0.8 * sent_fps), (stats["fpsPeak"], sent_fps)
    assert Image.open(shot).size == (1100, 800)


@pytest.mark.xfail(strict=False, reason=(
    "known defect (issue 12, open): on a quiet 2-core machine the 3-D lips lagged the heard audio "
    "by medians of 7-308 ms over seven runs with the stand-in bot (aim: within 60 ms); the head "
    "is drawn at 10-13 fps here, each sentence's first opening is 0-60 ms after its sound, the "
    "openness envelope lags the loudness (README, TalkingHead 3D mode)"))
async def test_talkinghead_mode_follows_timing(
    standin_site, livekit, make_token, voice, fake_mic, transcribe, tmp_path
):
    idle = tmp_path / "idle.png"
    steps = [
        {"waitFor": "window.avatarStats?.head3dReady", "timeout_s": 60},
        {"waitFor": "avatarStats.botReady", "timeout_s": 45},
        {"screenshot": str(idle), "selector": "#stage"},
        {
            "waitFor": "avatarStats.timingMessages >= 3 && avatarStats.sentences.length >= 3",
            "timeout_s": 60,
        },
        {"waitFor": "avatarStats.mouthPeak > 0.3 && avatarStats.mouthPeak", "timeout_s": 30},
        {
            "waitFor": "avatarStats.lipOffsets.length >= 3 && avatarStats.lipOffsets",
            "timeout_s": 30,
        },
        {"eval": STATS},
    ]
    results, _ = await _talk(
        standin_site, livekit, make_token, voice, fake_mic, transcribe, mode="3d", steps=steps
    )
    stats = results[-1]
    print(f"\nstand-in 3D: lips − audio {stats['lipOffsets']} ms, sentences {stats['sentences']}, "
          f"head drawn at {stats['head3dFps']} fps")
    assert abs(np.median(stats["lipOffsets"])) <= LIPS_TOLERANCE_MS, stats["lipOffsets"]
    pixels = np.asarray(Image.open(idle).convert("L"), dtype=np.float64)
    assert pixels.std() > 10, "the 3D canvas looks blank"


@pytest.mark.xfail(strict=False, reason=(
    "known limit (issue 12, open): the 3-D mouth now closes on bot-interrupted (+0, -190, "
    "-30 ms from the heard audio in three runs; it was +1.56 s while TalkingHead eased the last "
    "viseme back), but the message can outrun the audio still in the jitter buffer by more "
    "than the 100 ms aim, and waiting out the measured playout delay overshot (+156..+483 ms)"))
async def test_talkinghead_mouth_stops_with_the_audio_on_barge_in(
    standin_site, livekit, make_token, voice, fake_mic, transcribe
):
    quiet_after_cut = (
        "(() => { const a = avatarSeries.audio.filter((s) => s.v >= %s);"  # noqa: UP031 (JS braces)
        " return avatarStats.mouthPeak > 0.3 && a.length > 0"
        " && performance.now() - a.at(-1).t > 1500;"
        " })()" % SPEECH_RMS
    )
    steps = [
        {"waitFor": "window.avatarStats?.head3dReady", "timeout_s": 60},
        {"waitFor": "avatarStats.botReady", "timeout_s": 45},
        {"waitFor": quiet_after_cut, "timeout_s": 60},
        {"eval": "JSON.parse(JSON.stringify(window.avatarSeries))"},
    ]
    results, _ = await _talk(
        standin_site, livekit, make_token, voice, fake_mic, transcribe, mode="3d", steps=steps,
        cut_after_s=3.5,
    )
    series = results[-1]
    audio_stop = max(s["t"] for s in series["audio"] if s["v"] >= SPEECH_RMS)
    mouth_stop = max(s["t"] for s in series["mouth"] if s["v"] > OPEN_MOUTH)
    print(f"\nbarge-in: 3-D mouth stopped {mouth_stop - audio_stop:+.0f} ms after the heard audio")
    assert abs(mouth_stop - audio_stop) <= MOUTH_STOP_TOLERANCE_MS
