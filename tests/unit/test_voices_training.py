"""POST /api/train-voice: a one-minute recording made with the embedded voice becomes 2-10 s clips
and a GPT-SoVITS .list whose transcripts match what was said; with a (NAMED stand-in) GPT-SoVITS
install the preparation + training steps run as a background job with status and log."""

import asyncio
import difflib
import json
import re
import sys
import wave
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer

from avatar_core.settings import load_settings
from processors.tts.hibari_voice import HibariVoice
from tests.support.audio_files import write_wav
from token_server.errors import error_middleware
from token_server.voices_api import setup_voice_routes

SENTENCES = [
    "Good morning, and welcome to the recording session.",
    "Today I will read a few short sentences out loud.",
    "The sun rose slowly over the quiet hills.",
    "A cup of tea is the best way to start the day.",
    "My neighbour walks her dog every evening.",
    "The library closes early on Sundays.",
    "We planted tomatoes and beans in the garden.",
    "Please speak clearly and not too fast.",
    "The train to the city leaves every twenty minutes.",
    "Children were playing football in the park.",
    "I like to listen to music while I cook.",
    "The old bridge was painted bright red last year.",
    "On rainy days we stay inside and play board games.",
    "The baker on the corner makes wonderful bread.",
    "Tomorrow we are going to visit my grandparents by the sea.",
    "Thank you for listening to my voice.",
]
PAUSE_S = 0.6

# A NAMED stand-in for a GPT-SoVITS install: each script checks what the real one reads and
# writes what the real one writes (no model runs), so the job's wiring is exercised.
STANDIN_SCRIPTS = {
    "GPT_SoVITS/prepare_datasets/1-get-text.py": """
import os
lines = open(os.environ["inp_text"], encoding="utf-8").read().splitlines()
assert os.environ["bert_pretrained_dir"] and os.environ["i_part"] == "0"
with open(os.path.join(os.environ["opt_dir"], "2-name2text-0.txt"), "w", encoding="utf-8") as f:
    for line in lines:
        path, speaker, lang, text = line.split("|")
        f.write(os.path.basename(path) + "\\tphones\\tword2ph\\t" + text + "\\n")
print("stand-in 1-get-text:", len(lines), "lines")
""",
    "GPT_SoVITS/prepare_datasets/2-get-hubert-wav32k.py": """
import os
assert os.path.isdir(os.environ["inp_wav_dir"]) and os.environ["cnhubert_base_dir"]
print("stand-in 2-get-hubert-wav32k")
""",
    "GPT_SoVITS/prepare_datasets/3-get-semantic.py": """
import os
names = [l.split("\\t")[0] for l in open(os.path.join(os.environ["opt_dir"], "2-name2text-0.txt"))]
with open(os.path.join(os.environ["opt_dir"], "6-name2semantic-0.tsv"), "w") as f:
    f.writelines(n + "\\t1 2 3\\n" for n in names)
print("stand-in 3-get-semantic")
""",
    "GPT_SoVITS/s2_train.py": """
import json, os, sys
config = json.load(open(sys.argv[2]))
assert os.path.isfile(os.path.join(config["data"]["exp_dir"], "6-name2semantic.tsv"))
print("stand-in s2_train epochs", config["train"]["epochs"])
""",
    "GPT_SoVITS/s1_train.py": """
import os, sys, yaml
config = yaml.safe_load(open(sys.argv[2]))
header = open(config["train_semantic_path"]).readline().strip()
assert header == "item_name\\tsemantic_audio", header
assert os.path.isfile(config["train_phoneme_path"])
print("stand-in s1_train", config["train"]["exp_name"])
if os.environ.get("STANDIN_FAIL_GPT"):
    sys.exit(3)
""",
    "GPT_SoVITS/configs/s2.json": json.dumps({"train": {"epochs": 100}, "model": {}, "data": {}}),
    "GPT_SoVITS/configs/s1longer-v2.yaml": "train:\n  epochs: 20\n",
}


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).split()


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """About a minute of the embedded voice reading SENTENCES with pauses, as a WAV file."""
    voice = HibariVoice(seed=3)
    pause = np.zeros(int(PAUSE_S * voice.sample_rate), np.int16)
    audio = np.concatenate([part for s in SENTENCES
                            for part in (voice.synthesize(s).audio, pause)])
    assert 45 < len(audio) / voice.sample_rate < 75
    path = tmp_path_factory.mktemp("rec") / "minute.wav"
    return write_wav(path, audio, voice.sample_rate)


async def make_client(tmp_path, whisper_model, monkeypatch, install: Path | None):
    monkeypatch.setenv("AVATAR_DATASETS_DIR", str(tmp_path / "datasets"))
    monkeypatch.setenv("AVATAR_VOICES_DIR", str(tmp_path / "voices"))
    if install:
        monkeypatch.setenv("GPT_SOVITS_DIR", str(install))
        monkeypatch.setenv("GPT_SOVITS_PYTHON", sys.executable)
    else:
        monkeypatch.delenv("GPT_SOVITS_DIR", raising=False)
    app = web.Application(middlewares=[error_middleware])
    tree = load_settings()  # the folders and training options the test set in the environment
    setup_voice_routes(app, SimpleNamespace(whisper_model=whisper_model, cache=tmp_path,
                                            voice_max_upload_mb=10.0, train_max_upload_mb=100.0,
                                            voices_dir=tree.voices_dir,
                                            training=tree.token_server.training))
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


async def post_recording(client, path: Path, **fields):
    form = FormData()
    for key, value in fields.items():
        form.add_field(key, value)
    form.add_field("audio", path.read_bytes(), filename=path.name)  # noqa: ASYNC240 (tiny test check)
    return await client.post("/api/train-voice", data=form)


async def test_minute_of_speech_becomes_clips_and_a_list(tmp_path, whisper_model, monkeypatch,
                                                         recording):
    client = await make_client(tmp_path, whisper_model, monkeypatch, install=None)
    try:
        response = await post_recording(client, recording, speaker="maya")
        assert response.status == 201, await response.text()
        dataset = await response.json()
    finally:
        await client.close()
    clips = dataset["clips"]
    assert len(clips) >= 5
    for clip in clips:
        assert 2.0 <= clip["duration_s"] <= 10.0
        with wave.open(clip["path"]) as w:
            assert w.getnframes() / w.getframerate() == pytest.approx(clip["duration_s"], abs=0.01)
    # Clips are in order and do not overlap.
    assert all(a["end_s"] <= b["start_s"] for a, b in zip(clips, clips[1:], strict=False))
    # The .list: one line per clip, path|speaker|LANG|text.
    lines = Path(dataset["list_path"]).read_text(encoding="utf-8").splitlines()  # noqa: ASYNC240 (tiny test check)
    assert [line.split("|") for line in lines] == \
        [[c["path"], "maya", "EN", c["text"]] for c in clips]
    # What the transcripts say is what was read (cuts only in pauses: no word is split).
    heard = words(" ".join(c["text"] for c in clips))
    ratio = difflib.SequenceMatcher(None, heard, words(" ".join(SENTENCES))).ratio()
    assert ratio >= 0.9, heard
    # No GPT-SoVITS install: the dataset is prepared and the next command is given.
    assert dataset["job"] == {"state": "prepared"}
    assert "GPT_SOVITS_DIR=" in dataset["next_command"]
    assert dataset["next_command"].endswith(dataset["dataset_dir"])


@pytest.mark.parametrize("fail", [False, True])
async def test_with_an_install_the_training_job_runs_in_the_background(
        tmp_path, whisper_model, monkeypatch, recording, fail):
    install = tmp_path / "GPT-SoVITS-standin"
    for relative, text in STANDIN_SCRIPTS.items():
        (install / relative).parent.mkdir(parents=True, exist_ok=True)
        (install / relative).write_text(text)
    if fail:
        monkeypatch.setenv("STANDIN_FAIL_GPT", "1")
    client = await make_client(tmp_path, whisper_model, monkeypatch, install=install)
    try:
        response = await post_recording(client, recording, speaker="maya")
        assert response.status == 201, await response.text()
        dataset = await response.json()
        assert dataset["job"]["state"] in ("queued", "running")
        status = {}
        for _ in range(200):
            status = (await (await client.get(f"/api/train-voice/{dataset['id']}")).json())["job"]
            if status["state"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.1)
        log = await (await client.get(f"/api/train-voice/{dataset['id']}/log")).text()
    finally:
        await client.close()
    assert status["steps"] == ["text features", "hubert features", "semantic tokens",
                               "train SoVITS", "train GPT"]
    assert f"stand-in 1-get-text: {len(dataset['clips'])} lines" in log
    assert "stand-in s2_train epochs 8" in log and "stand-in s1_train maya_" in log
    if fail:
        assert (status["state"], status["step"], status["returncode"]) == ("failed", "train GPT", 3)
    else:
        assert status["state"] == "succeeded"
        assert status["weights"]["gpt_dir"].endswith("GPT_weights_v2")


async def test_bad_training_uploads(tmp_path, whisper_model, monkeypatch, recording):
    client = await make_client(tmp_path, whisper_model, monkeypatch, install=None)
    try:
        short = tmp_path / "short.wav"
        with wave.open(str(recording)) as r, wave.open(str(short), "wb") as w:
            w.setparams(r.getparams())
            w.writeframes(r.readframes(r.getframerate() * 5))
        response = await post_recording(client, short)
        assert response.status == 400 and (await response.json())["error"] == "too_short"
        response = await post_recording(client, recording, speaker="../etc")
        assert response.status == 400 and (await response.json())["error"] == "bad_speaker"
        response = await client.get("/api/train-voice/0123456789ab")
        assert response.status == 404
    finally:
        await client.close()
