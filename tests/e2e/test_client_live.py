"""The browser client against the whole stack: real livekit-server, Ollama, a real avatar worker
(`python -m bot worker`: faster-whisper, embedded voice, builtin face) and the token server
serving client/dist, whose tokens carry the avatar's dispatch.

Headless Chromium joins with a fake microphone looping a recorded question. The tests check what
a person gets (transcripts, decoded video, audible audio, word progress, the 3D mode's lips) and
print what the page measured: voice-to-voice latency per turn and A/V / lip offsets.
"""

from __future__ import annotations

import asyncio
import json
import statistics
from pathlib import Path

import numpy as np
import pytest
from livekit import api
from PIL import Image

from tests.e2e.browser import page_results, run_browser, write_fake_mic_wav
from tests.e2e.conftest import real_site
from tests.support.speech import speak

QUESTION = "What is the capital of France?"
STARTUP_S = 150  # the bot loads its models on 2 shared cores
STATS = "JSON.parse(JSON.stringify(window.avatarStats))"
# 3-D mode: the mouth against the heard audio, median over the reply's sentences.
LIPS_TOLERANCE_MS = 60
# Once the bot has heard the question, the person mutes (the fake microphone would otherwise
# repeat it and talk over the answer on a slow machine).
HEARD_QUESTION = "avatarStats.transcript.user.some(t => /capital/i.test(t))"
# After the bot's tracks are up, how long the page may take to get bot-ready.
BOT_READY_GRACE_S = 5.0


@pytest.fixture(scope="module")
def question_wav(tmp_path_factory):
    samples, rate = speak(QUESTION)
    # Chromium loops the file: the question comes back every ~16 s, so a bot that was still
    # loading the first time hears the next one.
    return write_fake_mic_wav(tmp_path_factory.mktemp("mic") / "question.wav", samples, rate,
                              lead_s=1.0, tail_s=12.0)


@pytest.fixture(scope="module")
async def avatar_site(client_dist, livekit, ollama, stack_settings, stack_env, tmp_path_factory):
    """The real token server on a loopback port and one worker. Each test uses its own room (its
    own bot): a bot leaves a room a few seconds after it empties."""
    async with real_site(
        client_dist,
        livekit=livekit,
        ollama=ollama,
        stack_settings=stack_settings,
        stack_env=stack_env,
        log_dir=tmp_path_factory.mktemp("worker"),
    ) as url:
        yield url


async def _browse(url: str, wav: Path, steps: list[dict], *, diagnose: str = STATS) -> list:
    report = await run_browser(
        {
            "url": url,
            "wav": str(wav),
            "viewport": [1100, 820],
            "steps": steps,
            "diagnose": diagnose,
        },
        timeout_s=STARTUP_S + 240,
    )
    return page_results(report)


def _summary(values: list[float]) -> str:
    if not values:
        return "none"
    return f"{values} (median {statistics.median(values):.0f})"


async def test_page_conversation_with_the_avatar(avatar_site, question_wav, screenshots):
    shot = screenshots / "client.png"
    steps = [
        {"waitFor": "window.avatarStats?.botReady", "timeout_s": STARTUP_S},
        {"waitFor": HEARD_QUESTION, "timeout_s": 90},
        {"click": "#mic"},
        {"screenshot": str(shot)},  # replaced below once the answer is in
        {"waitFor": "avatarStats.turns.length >= 1", "timeout_s": 120},
        {
            "waitFor": "avatarStats.transcript.bot.length >= 2",
            "timeout_s": 180,
        },  # Ollama on 2 busy cores
        {"waitFor": "avatarStats.fpsPeak >= 20", "timeout_s": 30},
        {"waitFor": "avatarStats.botAudioPeak > 0.02", "timeout_s": 30},
        {
            "waitFor": "document.querySelectorAll('#transcript .word.said').length >= 3",
            "timeout_s": 60,
        },
        {"waitFor": "avatarStats.avOffsets.length >= 1", "timeout_s": 60},
        {"screenshot": str(shot)},
        {"eval": STATS},
    ]
    stats = (
        await _browse(f"{avatar_site}/?room=e2e-page&name=Tester&autojoin=1", question_wav, steps)
    )[-1]
    print(
        f"\nlive page: user said {stats['transcript']['user']}"
        f"\n  bot said {stats['transcript']['bot']}"
        f"\n  voice-to-voice ms {_summary(stats['turns'])}\n  A/V offset ms (video − audio) "
        f"{_summary(stats['avOffsets'])} (latest estimate {stats.get('avProbe')})"
        f"\n  video {stats['fps']} fps decoded (peak {stats['fpsPeak']}), "
        f"{stats['presentedFps']} presented, {stats['video']}"
        f"\n  RTVI metrics {json.dumps(stats['metrics'])}"
    )
    assert stats["audio"]["totalAudioEnergy"] > 0
    assert stats["video"]["frameWidth"] > 0
    assert float(np.asarray(Image.open(shot).convert("L"), dtype=np.float64).std()) > 10


async def test_minimal_rtvi_page(avatar_site, question_wav):
    steps = [
        {"waitFor": "window.rtviEvents?.botReady", "timeout_s": STARTUP_S},
        {"waitFor": "rtviEvents.userTranscripts.some(t => /capital/i.test(t))", "timeout_s": 90},
        {"click": "#mute"},
        {
            "waitFor": "rtviEvents.botOutputs.length >= 1 && rtviEvents.wordEvents >= 3",
            "timeout_s": 120,
        },
        {"eval": "JSON.parse(JSON.stringify(window.rtviEvents))"},
    ]
    events = (
        await _browse(
            f"{avatar_site}/rtvi-minimal.html?room=e2e-minimal&name=Minimal&autojoin=1",
            question_wav,
            steps,
            diagnose="JSON.parse(JSON.stringify(window.rtviEvents))",
        )
    )[-1]
    print(f"\nminimal RTVI page: {json.dumps(events)[:600]}")
    assert events["state"] == "ready"
    assert not events["errors"]


@pytest.mark.xfail(strict=False, reason=(
    "known defect (issue 12, open): on a quiet 2-core machine the 3-D lips lagged the heard audio "
    "by a median of 112 ms (aim: within 60 ms): headless Chromium draws the head at 10-13 fps "
    "here and each viseme closes after its sound, so the openness envelope lags (README, "
    "TalkingHead 3D mode)"))
async def test_talkinghead_mode_lips_follow_the_bot(avatar_site, question_wav, screenshots):
    shot = screenshots / "client-3d.png"
    steps = [
        {"waitFor": "window.avatarStats?.head3dReady", "timeout_s": 60},
        {"waitFor": "avatarStats.botReady", "timeout_s": STARTUP_S},
        {"waitFor": HEARD_QUESTION, "timeout_s": 90},
        {"click": "#mic"},
        {
            "waitFor": "avatarStats.timingMessages >= 3 && avatarStats.sentences.length >= 3",
            "timeout_s": 120,
        },
        {"waitFor": "avatarStats.mouthPeak > 0.3", "timeout_s": 60},
        {"waitFor": "avatarStats.lipOffsets.length >= 3", "timeout_s": 60},
        {"screenshot": str(shot), "selector": "#stage"},
        {"eval": STATS},
    ]
    stats = (
        await _browse(
            f"{avatar_site}/?room=e2e-3d&name=Viewer&autojoin=1&mode=3d", question_wav, steps
        )
    )[-1]
    print(
        f"\nlive 3D: lips − heard audio ms {_summary(stats['lipOffsets'])}; "
        f"{len(stats['sentences'])} sentences; playout delay {stats['playoutDelayMs']} ms; "
        f"mouth peak {stats['mouthPeak']:.2f}; head drawn at {stats['head3dFps']} fps"
    )
    assert abs(np.median(stats["lipOffsets"])) <= LIPS_TOLERANCE_MS, stats["lipOffsets"]
    assert float(np.asarray(Image.open(shot).convert("L"), dtype=np.float64).std()) > 10


async def _drop_the_person(livekit, room: str) -> str:
    """Once the bot is in `room` with its tracks, remove the person (the server ending their
    connection, as a lost network does after LiveKit's timeout); returns their identity."""
    async with api.LiveKitAPI(livekit.http_url, livekit.api_key, livekit.api_secret) as admin:
        while True:
            listed = (await admin.room.list_participants(api.ListParticipantsRequest(room=room)))
            people = [p for p in listed.participants if p.kind != api.ParticipantInfo.Kind.AGENT]
            bots = [p for p in listed.participants if p.kind == api.ParticipantInfo.Kind.AGENT]
            if people and bots and len(bots[0].tracks) >= 2:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(BOT_READY_GRACE_S)  # client-ready → bot-ready on the page
        identity = people[0].identity
        await admin.room.remove_participant(api.RoomParticipantIdentity(room=room,
                                                                         identity=identity))
        return identity


async def test_a_lost_connection_is_reported_and_reconnect_brings_the_conversation_back(
        avatar_site, livekit, question_wav):
    room = "e2e-reconnect"
    steps = [
        {"waitFor": "window.avatarStats?.botReady", "timeout_s": STARTUP_S},
        {"waitFor": "avatarStats.errors.includes('disconnected')", "timeout_s": 90},
        {"waitFor": "!document.getElementById('notice-action').hidden", "timeout_s": 5},
        {"eval": "[document.getElementById('notice-text').textContent, avatarStats.state]"},
        # What the page heard and said before the drop is not what counts after it.
        {"eval": "window.heardBefore = avatarStats.transcript.user.length;"
                 " window.saidBefore = avatarStats.transcript.bot.length"},
        {"click": "#notice-action"},
        {"waitFor": "avatarStats.state === 'ready'", "timeout_s": STARTUP_S},
        {"waitFor": "avatarStats.transcript.user.slice(window.heardBefore)"
                    ".some(t => /capital/i.test(t))", "timeout_s": 90},
        {"click": "#mic"},
        {"waitFor": "avatarStats.transcript.bot.length > window.saidBefore", "timeout_s": 180},
        {"eval": STATS},
    ]
    dropper = asyncio.create_task(
        asyncio.wait_for(_drop_the_person(livekit, room), STARTUP_S + 60))
    try:
        results = await _browse(f"{avatar_site}/?room={room}&name=Roamer&autojoin=1",
                                question_wav, steps)
        dropped = await dropper
    finally:
        dropper.cancel()
    notice, state = results[3]
    stats = results[-1]
    heard, said = stats["transcript"]["user"][-1:], stats["transcript"]["bot"][-1:]
    print(f"\nreconnect: {dropped} removed; page said {notice!r} ({state}); after rejoining "
          f"the bot heard {heard} and said {said}")
    assert "Lost the connection" in notice and state != "ready"
    assert stats["state"] == "ready"
