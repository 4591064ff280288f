"""A live room with FACE_ENGINE=sadtalker keeps audio and video in step while SadTalker renders
slower than real time (issue 15, acceptance).

The bot with the A/V probe (`python -m tests.support.probe_bot --room`, i.e. `python -m bot --room`
with its face pictures marked; real livekit-server, Ollama, Whisper) runs the SadTalker engine on
STAND-IN checkpoints (tests/support/sadtalker_standin.py: SadTalker's own models with random
weights, since no registry ships the real ones) on the CPU, where it is far slower than real time.
Its voice is the GPT-SoVITS STAND-IN server (no GPT-SoVITS weights run here) speaking probe audio:
each sentence of the greeting is one-frame 1 kHz clicks on video-frame boundaries
(tests.support.av_marker.probe_signal), so the face flashes its probe marker in exactly the frames
whose audio holds a click. A HumanParticipant (real LiveKit SDK) receives both tracks and each
click is paired with its flash as in test_av_sync.py (offset = flash - click; positive: the picture
lags the sound). How far SadTalker was behind is read at the receiver too: the face's RTVI
`face-held` metrics (seconds it held a sentence's audio and pictures back), next to the bot log's
compute seconds per second of video.

The fallback threshold (SADTALKER_MAX_SLOWDOWN) is raised here, or the builtin face would take
over from an engine this slow; SADTALKER_IDLE_S is short so that the idle loop renders in seconds.
"""

from __future__ import annotations

import asyncio
import os
import re
import time

import numpy as np
import pytest
from loguru import logger

from bot.settings import DEFAULT_IDENTITY
from processors.face.video import HELD_METRIC_SUFFIX
from processors.timing import TimedSpeech
from tests.support.av_marker import probe_signal
from tests.support.av_probe import (
    FAIL_BEYOND_S,
    FPS,
    MIN_PAIRED,
    SR,
    audio_onsets,
    pair_offsets,
    video_onsets,
)
from tests.support.bot_process import BotProcess
from tests.support.gpt_sovits_standin import GPTSoVITSStandIn
from tests.support.human import HumanParticipant
from tests.support.probe import rtvi_messages, server_messages

pytest.importorskip("torch", reason="the SadTalker engine needs `uv sync --group sadtalker`")
# Opt-in: on a CPU the stand-in renders about 870 s of compute per second of video (measured on
# 2 cores), so this one test takes 15-40 minutes, more than the whole CI tier it would sit in.
ROOM_TEST_ENV = "AVATAR_SADTALKER_ROOM_TEST"
pytestmark = pytest.mark.skipif(
    os.environ.get(ROOM_TEST_ENV) != "1",
    reason=f"takes 15-40 min on a CPU (the SadTalker stand-in renders ~870 s of compute per "
           f"second of video on 2 cores); set {ROOM_TEST_ENV}=1 to run it",
)

# One sentence of probe audio with three clicks (at 0.2, 0.52 and 0.84 s, each after more than
# the receiver's QUIET_S of silence): 0.9 s of video, which the stand-in renders in minutes on 2
# shared CPU cores.
GREETING = "Hello there."
SENTENCES = 1
PROBE_S = 0.9
CLICK_EVERY_S = 0.32
# Far above what the stand-in needs on a CPU, so that the builtin face does not take over.
MAX_SLOWDOWN = 100000
IDLE_S = 0.2  # a 5-frame idle loop (SadTalker smooths motion over more frames than one)
WITHIN_S = 0.040  # the acceptance: the median offset; single clicks may stray to FAIL_BEYOND_S
BOT_READY_TIMEOUT_S = 900.0  # the bot loads SadTalker and renders its idle frame first
RENDER_TIMEOUT_S = 900.0
FALLBACK_MESSAGE = "face-engine-fallback"  # bot.pipeline.FACE_FALLBACK_MESSAGE_TYPE
FALLBACK_LOGS = ("the builtin face takes over", "GPT-SoVITS unavailable")
SLOWDOWN_LOG = re.compile(r"SadTalker: idle loop of \d+ frames rendered, ([\d.]+) s of compute")


class ProbeVoice:
    """STAND-IN voice for the GPT-SoVITS stand-in server: every sentence is PROBE_S of probe
    clicks (no speech), so that each click's flash can be found at the receiver."""

    def synthesize(self, text: str) -> TimedSpeech:
        audio, _ = probe_signal(PROBE_S, SR, FPS, period_s=CLICK_EVERY_S)
        return TimedSpeech(text=text, audio=audio, sample_rate=SR, words=[])


def held_metrics(viewer: HumanParticipant) -> list[float]:
    """Seconds the face held each sentence back, from the RTVI metrics the viewer received."""
    return [entry["value"] for _, m in rtvi_messages(viewer.messages, "metrics")
            for entry in m["data"].get("processing", [])
            if entry.get("processor", "").endswith(HELD_METRIC_SUFFIX)]


@pytest.mark.timeout(2400)  # SadTalker on stand-in weights, on a loaded 2-core machine
async def test_sadtalker_room_keeps_audio_and_video_in_step_while_slower_than_real_time(
        livekit, stack_env, make_token, tmp_path):
    from tests.support.sadtalker_standin import cached_standin

    checkpoints, config = await asyncio.to_thread(cached_standin)
    reference = tmp_path / "ref.wav"
    reference.write_bytes(b"RIFF")  # the stand-in server only checks that it can read it
    room = "sadtalker-room"
    async with GPTSoVITSStandIn(voice=ProbeVoice()) as server:
        bot = BotProcess(room=room, module="tests.support.probe_bot",
                         log_path=tmp_path / "bot.log", env={
            **stack_env,
            "BOT_GREETING": GREETING,
            "BOT_EMPTY_ROOM_GRACE_SECS": "1",
            "GPT_SOVITS_URL": server.url,
            "GPT_SOVITS_REF_AUDIO": str(reference),
            "GPT_SOVITS_PROMPT_TEXT": "Hello, this is my voice.",
            "FACE_ENGINE": "sadtalker",
            "SADTALKER_CHECKPOINTS": str(checkpoints),
            "SADTALKER_CONFIG": str(config),
            "SADTALKER_DEVICE": os.environ.get("SADTALKER_DEVICE", "cpu"),  # cuda on a GPU host
            "SADTALKER_SIZE": "256",
            "SADTALKER_MAX_SLOWDOWN": str(MAX_SLOWDOWN),
            "SADTALKER_IDLE_S": str(IDLE_S),
        }).start()
        started = time.monotonic()
        try:
            async with HumanParticipant.connect(livekit.url, make_token(room, "viewer")) as viewer:
                await wait_until(lambda: server.completed >= SENTENCES, BOT_READY_TIMEOUT_S,
                                 "the greeting from the GPT-SoVITS stand-in", bot)
                # Each sentence sends its held metric once its last picture is out.
                await wait_until(lambda: len(held_metrics(viewer)) >= SENTENCES,
                                 RENDER_TIMEOUT_S, "every sentence rendered by SadTalker", bot)
                await asyncio.sleep(1.5)  # the last flash and click in flight
                held = held_metrics(viewer)
                fallbacks = server_messages(viewer.messages, FALLBACK_MESSAGE)
        finally:
            bot.stop()
    log = bot.log()

    _, clicks = probe_signal(PROBE_S, SR, FPS, period_s=CLICK_EVERY_S)
    expected = SENTENCES * len(clicks)
    heard = audio_onsets(viewer.audio, DEFAULT_IDENTITY)
    offsets = pair_offsets(heard, video_onsets(viewer.video, DEFAULT_IDENTITY))
    ms = np.array(offsets) * 1000
    speech_s = SENTENCES * PROBE_S
    slowdown = [float(x) for x in SLOWDOWN_LOG.findall(log)]
    offsets_text = (f"median {np.median(ms):+.0f} ms, p95 |offset| "
                    f"{np.percentile(np.abs(ms), 95):.0f} ms, min {ms.min():+.0f}, "
                    f"max {ms.max():+.0f} (all: {', '.join(f'{x:+.0f}' for x in ms)})"
                    if len(ms) else "none")
    figures = (
        f"SadTalker stand-in (CPU, 256) room: A/V offset over {len(ms)}/{expected} clicks "
        f"(heard {len(heard)}): {offsets_text}; audio held {sum(held):.1f} s for "
        f"{speech_s:.1f} s of speech (per sentence {', '.join(f'{h:.1f}' for h in held)} s: "
        f"{(speech_s + sum(held)) / speech_s:.0f}x real time), idle-loop render "
        f"{slowdown[0] if slowdown else float('nan'):.1f} s per second of video; "
        f"run {time.monotonic() - started:.0f} s")
    logger.info(figures)
    print(figures)
    assert not fallbacks, f"the builtin face took over: {fallbacks}"
    assert not [line for line in FALLBACK_LOGS if line in log], log[-3000:]
    # Slower than real time (here more than twice): the face held the audio back for longer
    # than the speech lasts.
    assert sum(held) > speech_s, f"held only {sum(held):.2f} s for {speech_s:.1f} s of speech"
    assert len(heard) >= 0.8 * expected, f"only {len(heard)} of {expected} clicks heard"
    assert len(offsets) >= MIN_PAIRED * expected, (
        f"only {len(offsets)} of {expected} clicks paired with a flash")
    assert abs(np.median(ms)) <= WITHIN_S * 1000, f"A/V offset {np.median(ms):+.0f} ms"
    assert np.percentile(np.abs(ms), 95) <= FAIL_BEYOND_S * 1000, f"A/V offsets {ms.round()}"


async def wait_until(check, timeout: float, what: str, bot: BotProcess) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not check():
        if bot.exit_code() is not None:
            raise AssertionError(f"the bot exited ({bot.exit_code()}):\n{bot.log()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}\n{bot.log()[-3000:]}")
        await asyncio.sleep(0.2)
