"""The avatar-video API through the token server on a loopback port: text -> an H.264/AAC MP4
(30 fps, 512x512, audio as long as the speech) with the builtin engine and with SadTalker on
STAND-IN checkpoints; bad requests are 4xx with a reason. Jobs run in the server's worker
process, as for a user."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import av
import numpy as np
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from avatar_core.settings import load_settings
from processors.face.sadtalker import SadTalkerSettings
from stack.services import free_port
from tests.support.audio_files import wav_bytes
from token_server.app import create_app
from token_server.avatar_videos import JOBS, VIDEOS_ROUTE
from token_server.settings import TokenServerSettings

API_KEY = "avatar-video-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
# Video and speech durations agree within this (the last frame is partly filled: < 1/30 s).
DURATION_TOLERANCE_S = 0.04
JOB_DEADLINE_S = 1500.0  # a loaded 2-core machine; the stand-in SadTalker is slow on CPU


def settings(tmp_path) -> TokenServerSettings:
    tree = load_settings()  # the folder and SadTalker options the test set in the environment
    return TokenServerSettings(
        avatar_videos=tree.token_server.avatar_videos,
        sadtalker=SadTalkerSettings(**tree.bot.sadtalker.given()),
        livekit_url=f"ws://127.0.0.1:{free_port()}", livekit_public_url="ws://127.0.0.1:7880",
        livekit_api_key="videokey", livekit_api_secret="video-secret-long-enough-for-hs256-x",
        ollama_url=f"http://127.0.0.1:{free_port()}", ollama_model="unused", cache=tmp_path,
        api_key=API_KEY, client_dist=tmp_path / "dist")


@pytest.fixture
async def client(tmp_path, monkeypatch, request):
    monkeypatch.setenv("AVATAR_VIDEOS_DIR", str(tmp_path / "videos"))
    if "standin" in request.fixturenames:
        checkpoints, config = request.getfixturevalue("standin")
        monkeypatch.setenv("SADTALKER_CHECKPOINTS", str(checkpoints))
        monkeypatch.setenv("SADTALKER_CONFIG", str(config))
        monkeypatch.setenv("SADTALKER_DEVICE", "cpu")
    app = create_app(settings(tmp_path))
    async with TestClient(TestServer(app, host="127.0.0.1", port=free_port())) as c:
        yield c


async def finished(client, answer) -> dict:
    assert answer.status == 202, await answer.text()
    job = await answer.json()
    seen, deadline = set(), time.monotonic() + JOB_DEADLINE_S
    while time.monotonic() < deadline:
        status = await (await client.get(job["status_url"], headers=AUTH)).json()
        seen.add(status["status"])
        if status["status"] in ("done", "failed"):
            status["seen"] = seen
            return status
        await asyncio.sleep(1.0)
    raise AssertionError(f"job {job['id']} did not finish in {JOB_DEADLINE_S:.0f} s")


async def check_mp4(client, status: dict, tmp_path) -> None:
    assert status["status"] == "done", status
    answer = await client.get(status["video_url"], headers=AUTH)
    assert answer.status == 200 and answer.content_type == "video/mp4"
    path = tmp_path / "got.mp4"
    path.write_bytes(await answer.read())
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
        assert (video.width, video.height) == (512, 512)
        assert video.average_rate == Fraction(30)
        frames = sum(1 for _ in container.decode(video=0))
        sound = float(audio.duration * audio.time_base)
    speech = status["duration_s"]
    assert abs(frames / 30 - speech) <= DURATION_TOLERANCE_S
    assert abs(sound - speech) <= DURATION_TOLERANCE_S


async def test_text_becomes_an_mp4_with_the_builtin_engine(client, tmp_path):
    answer = await client.post(VIDEOS_ROUTE, json={"text": "Hello! This video was made for you."},
                               headers=AUTH)
    status = await finished(client, answer)
    assert status["progress"] == 1.0 and 1.0 < status["duration_s"] < 5.0
    await check_mp4(client, status, tmp_path)


async def test_text_becomes_an_mp4_with_the_sadtalker_standin(standin, client, tmp_path):
    # JSON, like the builtin case: a form without a file would be url-encoded, which the
    # request policy refuses (415) before any handler.
    answer = await client.post(VIDEOS_ROUTE, json={"text": "Hi there.", "engine": "sadtalker"},
                               headers=AUTH)
    status = await finished(client, answer)
    await check_mp4(client, status, tmp_path)


def tone_wav(seconds: float, rate: int = 8000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return wav_bytes(3000 * np.sin(2 * np.pi * 200 * t), rate)


def form_with(audio: bytes | None = None, **fields) -> FormData:
    form = FormData()
    for key, value in fields.items():
        form.add_field(key, value)
    if audio is not None:
        form.add_field("audio", audio, filename="speech.wav", content_type="audio/wav")
    return form


def two_audio_files() -> FormData:
    form = form_with(tone_wav(1.0))
    form.add_field("audio", tone_wav(2.0), filename="other.wav", content_type="audio/wav")
    return form


@pytest.mark.parametrize("body, status, error", [
    ({"json": {}}, 400, "missing_speech"),
    ({"json": {"text": "   "}}, 400, "missing_speech"),
    ({"json": {"text": "Hello.", "engine": "wav2lip"}}, 400, "unknown_engine"),
    ({"json": {"text": "Hello.", "size": 2048}}, 400, "invalid_size"),
    ({"json": {"text": "ten minutes of talking " * 600}}, 400, "too_long"),
    ({"data": lambda: form_with(tone_wav(600.0))}, 400, "too_long"),
    ({"data": lambda: form_with(b"\x89PNG\r\n\x1a\n" + bytes(4000))}, None, None),
    ({"data": lambda: form_with(tone_wav(1.0), text="Both at once.")}, 400, "text_and_audio"),
    ({"data": lambda: two_audio_files()}, 400, "duplicate_field"),
    ({"data": lambda: form_with(text=b"\xff\xfe not UTF-8")}, 400, "bad_field"),
    ({"data": lambda: form_with(tone_wav(1.0), voice="joe")}, 400, "unknown_field"),
], ids=["empty", "blank-text", "unknown-engine", "too-big", "10-minute-text", "10-minute-audio",
        "not-audio", "text-and-audio", "two-audio-files", "non-utf8-text", "unknown-field"])
async def test_bad_requests_are_4xx_with_a_reason(client, body, status, error):
    kwargs = {k: (v() if callable(v) else v) for k, v in body.items()}
    answer = await client.post(VIDEOS_ROUTE, headers=AUTH, **kwargs)
    reply = await answer.json()
    if status is None:  # not audio: 415 (unknown container) or 400 (undecodable), with a reason
        assert answer.status in (400, 415) and reply["error"] in ("not_audio", "unsupported_format")
    else:
        assert (answer.status, reply["error"]) == (status, error), reply
    assert reply["detail"]
    # A refused request leaves nothing behind: no job folder, no upload.
    assert not any((client.server.app[JOBS].folder).iterdir())


async def test_unknown_jobs_are_404_and_unfinished_videos_409(client):
    assert (await client.get(f"{VIDEOS_ROUTE}/nope", headers=AUTH)).status == 404
    answer = await client.post(VIDEOS_ROUTE, json={"text": "Wait for it."}, headers=AUTH)
    job = await answer.json()
    early = await client.get(job["video_url"], headers=AUTH)  # speaking takes longer than this
    assert early.status == 409 and (await early.json())["error"] == "not_ready"


@pytest.fixture(scope="session")
def standin():
    pytest.importorskip("torch", reason="the SadTalker engine needs `uv sync --group sadtalker`")
    from tests.support.sadtalker_standin import cached_standin

    return cached_standin()
