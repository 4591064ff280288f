"""Voices API on a real aiohttp app with the real faster-whisper model: bad uploads are 4xx with
a reason, a good clip becomes a voice whose prompt text is what was said."""

import difflib
import json
import os
import re
from types import SimpleNamespace

import numpy as np
import psutil
import pytest
import soxr
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer

from avatar_core.settings import load_settings
from processors.tts.gpt_sovits import GPTSoVITSVoice
from tests.support.audio_files import encode, wav_bytes
from tests.support.speech import speak
from token_server.errors import error_middleware
from token_server.voices_api import setup_voice_routes

SAID = "The quick brown fox jumps over the lazy dog near the quiet river bank."


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).split()


@pytest.fixture(scope="module")
def said():
    audio, rate = speak(SAID)
    assert 3.0 < len(audio) / rate < 10.0
    return audio, rate


@pytest.fixture
async def client(tmp_path, whisper_model, monkeypatch):
    monkeypatch.setenv("AVATAR_VOICES_DIR", str(tmp_path / "voices"))
    app = web.Application(middlewares=[error_middleware])
    tree = load_settings()  # the folders and training options the test set in the environment
    setup_voice_routes(app, SimpleNamespace(whisper_model=whisper_model, cache=tmp_path,
                                            voice_max_upload_mb=2.0, train_max_upload_mb=100.0,
                                            voices_dir=tree.voices_dir,
                                            training=tree.token_server.training))
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def upload(client, data: bytes, filename="clip.wav", **fields):
    form = FormData()
    for key, value in fields.items():
        form.add_field(key, value)
    form.add_field("audio", data, filename=filename, content_type="application/octet-stream")
    return await client.post("/api/voices", data=form)


async def test_good_mp3_clip_becomes_a_voice_with_the_spoken_text(client, said, tmp_path):
    audio, rate = said
    response = await upload(client, encode(audio, rate, "mp3", "libmp3lame"), "me.mp3",
                            name="Maya")
    assert response.status == 201, await response.text()
    voice = await response.json()
    ratio = difflib.SequenceMatcher(None, words(voice["prompt_text"]), words(SAID)).ratio()
    assert ratio >= 0.9, voice["prompt_text"]
    assert voice["prompt_lang"] == "en" and voice["name"] == "Maya"
    assert voice["duration_s"] == pytest.approx(len(audio) / rate, abs=0.1)
    assert os.path.isfile(voice["ref_audio_path"])  # noqa: ASYNC240 (tiny test check)
    # The TTS side reads the same record.
    loaded = GPTSoVITSVoice.load(voice["id"], tmp_path / "voices")
    assert loaded == GPTSoVITSVoice(voice["ref_audio_path"], voice["prompt_text"], "en")

    listed = await (await client.get("/api/voices")).json()
    assert [v["id"] for v in listed["voices"]] == [voice["id"]]
    assert (await (await client.get(f"/api/voices/{voice['id']}")).json()) == voice
    assert (await client.delete(f"/api/voices/{voice['id']}")).status == 204
    assert (await (await client.get("/api/voices")).json()) == {"voices": []}
    assert not os.path.exists(voice["ref_audio_path"])  # noqa: ASYNC240 (tiny test check)
    gone = await client.delete(f"/api/voices/{voice['id']}")
    assert gone.status == 404 and (await gone.json())["error"] == "unknown_voice"


async def test_ogg_clip_with_given_language_and_prompt_text(client, said):
    audio, rate = said
    audio48 = soxr.resample(audio.astype(np.float32), rate, 48000)     # Opus runs at 48 kHz
    response = await upload(client, encode(audio48, 48000, "ogg", "libopus"), "me.ogg",
                            language="en", prompt_text="My own words.")
    assert response.status == 201, await response.text()
    voice = await response.json()
    assert (voice["prompt_text"], voice["prompt_lang"]) == ("My own words.", "en")


def _silence(seconds: float, rate: int) -> np.ndarray:
    return np.zeros(int(seconds * rate), np.int16)


@pytest.mark.parametrize("case, status, error", [
    ("too_short", 400, "too_short"),
    ("too_long", 400, "too_long"),
    ("silent", 400, "silent"),
    ("quiet", 400, "too_quiet"),
    ("clipped", 400, "clipped"),
    ("not_audio", 400, "not_audio"),
    ("huge", 413, "too_large"),
    ("language", 400, "unsupported_language"),
])
async def test_bad_uploads_are_refused_with_a_reason(client, said, case, status, error):
    audio, rate = said
    fields = {}
    if case == "too_short":
        data = wav_bytes(audio[:int(1.5 * rate)], rate)
    elif case == "too_long":
        data = wav_bytes(np.tile(audio, 3), rate)
    elif case == "silent":
        data = wav_bytes(_silence(5, rate), rate)
    elif case == "quiet":
        data = wav_bytes((audio * 0.01).astype(np.int16), rate)
    elif case == "clipped":
        data = wav_bytes(np.clip(audio.astype(np.int32) * 8, -32768, 32767), rate)
    elif case == "not_audio":
        data = b"this is a text file, not a recording\n" * 200
    elif case == "huge":
        data = wav_bytes(np.tile(audio, 16), rate)         # ~3.4 MB: over the 2 MB limit
    else:
        data, fields = wav_bytes(audio, rate), {"language": "klingon"}
    response = await upload(client, data, **fields)
    body = await response.json()
    assert (response.status, body.get("error")) == (status, error), body
    assert body["detail"]
    assert (await (await client.get("/api/voices")).json()) == {"voices": []}


async def test_form_without_audio_and_non_multipart_are_400(client):
    form = FormData(default_to_multipart=True)
    form.add_field("name", "x")
    response = await client.post("/api/voices", data=form)
    assert response.status == 400 and (await response.json())["error"] == "missing_audio"
    response = await client.post("/api/voices", data=json.dumps({"audio": "x"}),
                                 headers={"Content-Type": "application/json"})
    assert response.status == 400 and (await response.json())["error"] == "expected_multipart"


async def test_unknown_or_malformed_voice_ids_are_404(client):
    for voice_id in ("0123456789ab", "../../etc", "x"):
        response = await client.get(f"/api/voices/{voice_id}")
        assert response.status == 404


async def test_uploads_are_transcribed_in_a_worker_process_that_recovers(client, said):
    """Whisper loads and decodes in a child process, not in the token server; a worker that dies
    costs the upload in flight a 503 that says to send it again, and the next upload works."""
    audio, rate = said
    data = wav_bytes(audio, rate)
    before = {p.pid for p in psutil.Process().children()}
    assert (await upload(client, data, name="One")).status == 201
    # The first spawn in this process also starts multiprocessing's resource tracker.
    workers = [p for p in psutil.Process().children() if p.pid not in before
               and "resource_tracker" not in " ".join(p.cmdline())]
    assert len(workers) == 1 and "python" in workers[0].name().lower()
    workers[0].kill()
    workers[0].wait(10)
    failed = await upload(client, data, name="Two")
    assert failed.status == 503, await failed.text()
    assert (await failed.json())["error"] == "transcriber_failed"
    assert (await (await client.get("/api/voices")).json())["voices"][0]["name"] == "One"
    again = await upload(client, data, name="Three")
    assert again.status == 201, await again.text()
    assert len((await (await client.get("/api/voices")).json())["voices"]) == 2
