"""Fine-tuning data for GPT-SoVITS from about one minute of speech, and the training job.

    POST /api/train-voice            multipart: audio (WAV/MP3/OGG, 20 s - 10 min), speaker?,
                                     language?
    GET  /api/train-voice/{id}       the dataset and the job's state
    GET  /api/train-voice/{id}/log   the job's log (text)

The recording is sliced at pauses into 2-10 s clips, each clip is transcribed with faster-whisper,
and GPT-SoVITS's dataset list is written (`wav path|speaker|LANG|text`, one clip a line). When
a GPT-SoVITS install is configured (GPT_SOVITS_DIR) its preparation scripts (text/BERT features,
HuBERT features + 32 kHz audio, semantic tokens) and the two training stages (SoVITS, then GPT)
run as a background job; without one the answer carries the exact command that runs the same
job later:

    GPT_SOVITS_DIR=/path/to/GPT-SoVITS python -m token_server.training <dataset dir>
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from loguru import logger

from avatar_core.settings import TrainingSection, load_settings
from processors.align.whisper_aligner import WHISPER_SAMPLE_RATE, speech_stretches
from token_server.errors import ApiError
from token_server.settings import DEFAULT_TRAIN_MAX_UPLOAD_MB
from token_server.uploads import FormShape, uploaded_form
from token_server.voices import (
    AUDIO_FIELD,
    MEGABYTE,
    check_clip,
    decode_clip,
    requested_language,
    stored_folder,
    transcribe,
    write_wav,
)

TRAIN_ROUTE = "/api/train-voice"
TRAIN_STATUS_ROUTE = "/api/train-voice/{dataset_id}"
TRAIN_LOG_ROUTE = "/api/train-voice/{dataset_id}/log"
DATASET_FILE = "dataset.json"
JOB_FILE = "job.json"
LOG_FILE = "train.log"
WAVS_DIR = "wavs"

MIN_RECORDING_S, MAX_RECORDING_S = 20.0, 600.0
MIN_SLICE_S, MAX_SLICE_S = 2.0, 10.0
# Pauses at least this long are cut points; each clip keeps up to SLICE_MARGIN_S of its pause.
SLICE_PAUSE_S = 0.25
SLICE_MARGIN_S = 0.1
_SPEAKER = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
TRAIN_FIELDS = frozenset({"speaker", "language"})

ENV_GPT_SOVITS_DIR = "GPT_SOVITS_DIR"
ENV_GPT_SOVITS_PYTHON = "GPT_SOVITS_PYTHON"

# GPT-SoVITS v2 layout (paths relative to its install).
PREPARE_DIR = "GPT_SoVITS/prepare_datasets"
BERT_DIR = "GPT_SoVITS/pretrained_models/chinese-roberta-wwm-ext-large"
HUBERT_DIR = "GPT_SoVITS/pretrained_models/chinese-hubert-base"
PRETRAINED_DIR = "GPT_SoVITS/pretrained_models/gsv-v2final-pretrained"
PRETRAINED_S2G = f"{PRETRAINED_DIR}/s2G2333k.pth"
PRETRAINED_S2D = f"{PRETRAINED_DIR}/s2D2333k.pth"
PRETRAINED_S1 = f"{PRETRAINED_DIR}/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt"
S2_CONFIG = "GPT_SoVITS/configs/s2.json"
S1_CONFIG = "GPT_SoVITS/configs/s1longer-v2.yaml"
SOVITS_WEIGHTS = "SoVITS_weights_v2"
GPT_WEIGHTS = "GPT_weights_v2"
VERSION = "v2"
TEXT_PART, TEXT_ALL = "2-name2text-0.txt", "2-name2text.txt"
SEMANTIC_PART, SEMANTIC_ALL = "6-name2semantic-0.tsv", "6-name2semantic.tsv"
SEMANTIC_HEADER = "item_name\tsemantic_audio"

STATE_PREPARED, STATE_QUEUED, STATE_RUNNING = "prepared", "queued", "running"
STATE_SUCCEEDED, STATE_FAILED = "succeeded", "failed"

JOBS = web.AppKey("training_jobs", dict)


@dataclass(frozen=True, slots=True)
class TrainingSettings:
    """Where datasets go, the upload limit, and the GPT-SoVITS install that trains (if any)."""

    datasets_dir: Path
    max_upload_bytes: int = int(DEFAULT_TRAIN_MAX_UPLOAD_MB) << 20
    gpt_sovits_dir: Path | None = None
    gpt_sovits_python: str = "python"
    half: bool = True
    sovits_epochs: int = 8
    gpt_epochs: int = 15

    def __post_init__(self):
        if self.gpt_sovits_dir and not (self.gpt_sovits_dir / PREPARE_DIR).is_dir():
            raise ValueError(
                f"{ENV_GPT_SOVITS_DIR}={self.gpt_sovits_dir} is not a GPT-SoVITS install "
                f"(no {PREPARE_DIR})"
            )

    @classmethod
    def from_section(
        cls, section: TrainingSection, *, cache: Path,
        max_upload_mb: float = DEFAULT_TRAIN_MAX_UPLOAD_MB,
    ) -> TrainingSettings:
        """From the tree's training section (AVATAR_DATASETS_DIR, default <cache>/datasets;
        GPT_SOVITS_DIR / _PYTHON / _HALF / _SOVITS_EPOCHS / _GPT_EPOCHS) and the token
        server's upload limit (AVATAR_TRAIN_MAX_UPLOAD_MB)."""
        options = section.given()
        datasets_dir = options.pop("datasets_dir", cache / "datasets")
        return cls(datasets_dir=datasets_dir, max_upload_bytes=int(max_upload_mb * MEGABYTE),
                   **options)


TRAINING_SETTINGS = web.AppKey("training_settings", TrainingSettings)


def setup_training_routes(app: web.Application, settings) -> None:
    """Add the training API (called by setup_voice_routes, whose Whisper model it shares)."""
    app[TRAINING_SETTINGS] = TrainingSettings.from_section(
        settings.training, cache=settings.cache, max_upload_mb=settings.train_max_upload_mb
    )
    app[JOBS] = {}
    app.router.add_post(TRAIN_ROUTE, create_dataset)
    app.router.add_get(TRAIN_STATUS_ROUTE, dataset_status)
    app.router.add_get(TRAIN_LOG_ROUTE, job_log)
    app.on_cleanup.append(_stop_jobs)


# -- handlers --------------------------------------------------------------------------------------
async def create_dataset(request: web.Request) -> web.Response:
    """Slice, transcribe and list a recording; start training when GPT-SoVITS is installed."""
    options: TrainingSettings = request.app[TRAINING_SETTINGS]
    shape = FormShape(
        file_fields=frozenset({AUDIO_FIELD}),
        text_fields=TRAIN_FIELDS,
        max_file_bytes=options.max_upload_bytes,
        required_files=frozenset({AUDIO_FIELD}),
    )
    async with uploaded_form(request, shape, directory=options.datasets_dir) as form:
        speaker = form.fields.get("speaker", "").strip() or "speaker"
        if not _SPEAKER.match(speaker):
            raise ApiError(400, "bad_speaker", "speaker must be 1-40 letters, digits, _ or -")
        language = requested_language(form.fields.get("language"))
        recording = await asyncio.to_thread(
            decode_clip, form.files[AUDIO_FIELD], form.filenames[AUDIO_FIELD],
            max_s=MAX_RECORDING_S,
        )
    check_clip(recording, MIN_RECORDING_S, MAX_RECORDING_S)
    dataset = await prepare_dataset(request.app, recording, speaker, language, options.datasets_dir)
    if options.gpt_sovits_dir is not None:
        job = TrainingJob(dataset_dir=Path(dataset["dataset_dir"]), settings=options)
        request.app[JOBS][dataset["id"]] = job
        job.start()
    dataset["job"] = read_job(Path(dataset["dataset_dir"]))
    return web.json_response(dataset, status=201)


async def dataset_status(request: web.Request) -> web.Response:
    folder = _dataset_folder(request)
    dataset = json.loads((folder / DATASET_FILE).read_text())
    dataset["job"] = read_job(folder)
    return web.json_response(dataset)


async def job_log(request: web.Request) -> web.Response:
    log = _dataset_folder(request) / LOG_FILE
    text = log.read_text(errors="replace") if log.is_file() else ""
    return web.Response(text=text, content_type="text/plain")


def _dataset_folder(request: web.Request) -> Path:
    return stored_folder(
        request.app[TRAINING_SETTINGS].datasets_dir,
        request.match_info["dataset_id"],
        marker=DATASET_FILE,
        error="unknown_dataset",
        what="training dataset",
    )


# -- dataset ---------------------------------------------------------------------------------------
def slice_at_pauses(wave16: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) seconds of 2-10 s clips made of whole stretches of speech, cut in pauses.

    Stretches are joined while the clip stays within MAX_SLICE_S; a stretch longer than that is
    cut at its quietest 10 ms in the last half of the window; clips shorter than MIN_SLICE_S
    are dropped. Each clip keeps a margin of its neighbouring pauses.
    """
    stretches = speech_stretches(wave16, min_pause_s=SLICE_PAUSE_S)
    pieces: list[tuple[float, float]] = []
    for start, end in stretches:
        while end - start > MAX_SLICE_S:
            cut = _quietest(wave16, start + MAX_SLICE_S / 2, start + MAX_SLICE_S)
            pieces.append((start, cut))
            start = cut
        pieces.append((start, end))
    clips: list[list[float]] = []
    for start, end in pieces:
        if clips and end - clips[-1][0] <= MAX_SLICE_S - 2 * SLICE_MARGIN_S:
            clips[-1][1] = end
        else:
            clips.append([start, end])
    duration = len(wave16) / WHISPER_SAMPLE_RATE
    out = []
    for i, (start, end) in enumerate(clips):
        before = clips[i - 1][1] if i else 0.0
        after = clips[i + 1][0] if i + 1 < len(clips) else duration
        start = max(start - SLICE_MARGIN_S, (before + start) / 2)
        end = min(end + SLICE_MARGIN_S, (end + after) / 2)
        if end - start >= MIN_SLICE_S:
            out.append((start, end))
    return out


def _quietest(wave16: np.ndarray, start: float, end: float) -> float:
    hop = WHISPER_SAMPLE_RATE // 100
    a, b = int(start * WHISPER_SAMPLE_RATE), int(end * WHISPER_SAMPLE_RATE)
    frames = wave16[a:b][: (b - a) // hop * hop].reshape(-1, hop)
    return start + int(np.argmin(np.mean(frames**2, axis=1))) * hop / WHISPER_SAMPLE_RATE


async def prepare_dataset(
    app: web.Application, recording, speaker: str, language: str | None, datasets_dir: Path
) -> dict:
    """Clips + transcripts + GPT-SoVITS list file in <datasets_dir>/<id>/; the dataset record."""
    wave16 = recording.at(WHISPER_SAMPLE_RATE)
    spans = slice_at_pauses(wave16)
    if not spans:
        raise ApiError(422, "no_speech", "no stretch of speech of 2-10 s was found")
    dataset_id = uuid.uuid4().hex[:12]
    folder = datasets_dir / dataset_id
    (folder / WAVS_DIR).mkdir(parents=True)
    rate = recording.sample_rate
    clips: list[dict[str, Any]] = []
    for n, (start, end) in enumerate(spans):
        piece = type(recording)(
            samples=recording.samples[int(start * rate) : int(end * rate)],
            sample_rate=rate,
            filename=recording.filename,
        )
        text, language = await transcribe(app, piece, language)
        if not text:
            logger.info(f"dataset {dataset_id}: no words in {start:.2f}-{end:.2f} s, skipped")
            continue
        path = (folder / WAVS_DIR / f"{speaker}_{n:03d}.wav").resolve()
        write_wav(path, piece.samples, rate)
        clips.append(
            {
                "path": str(path),
                "start_s": round(start, 3),
                "end_s": round(end, 3),
                "duration_s": round(end - start, 3),
                "text": text,
            }
        )
    if not clips:
        raise ApiError(422, "no_speech", "no speech was recognized in the recording")
    list_path = folder / f"{speaker}.list"
    list_path.write_text(
        # clips is non-empty, so a transcript set the language
        "".join(f"{c['path']}|{speaker}|{language.upper()}|{c['text']}\n" for c in clips),  # type: ignore[union-attr]
        encoding="utf-8",
    )
    dataset = {
        "id": dataset_id,
        "speaker": speaker,
        "language": language,
        "dataset_dir": str(folder.resolve()),
        "list_path": str(list_path.resolve()),
        "wav_dir": str((folder / WAVS_DIR).resolve()),
        "clips": clips,
        "speech_s": round(sum(c["duration_s"] for c in clips), 2),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "next_command": f"{ENV_GPT_SOVITS_DIR}=/path/to/GPT-SoVITS {ENV_GPT_SOVITS_PYTHON}="
        f"/path/to/its/python {shlex.quote(sys.executable)} -m token_server.training "
        f"{shlex.quote(str(folder.resolve()))}",
    }
    (folder / DATASET_FILE).write_text(json.dumps(dataset, indent=2, ensure_ascii=False))
    logger.info(f"dataset {dataset_id}: {len(clips)} clips, {dataset['speech_s']} s of speech")
    return dataset


# -- training job ----------------------------------------------------------------------------------
def read_job(folder: Path) -> dict:
    path = folder / JOB_FILE
    return json.loads(path.read_text()) if path.is_file() else {"state": STATE_PREPARED}


@dataclass
class TrainingJob:
    """GPT-SoVITS preparation and training for one dataset, step by step as subprocesses, with
    its state in job.json and every step's output in train.log."""

    dataset_dir: Path
    settings: TrainingSettings
    _task: asyncio.Task | None = None
    _process: asyncio.subprocess.Process | None = None
    state: dict = field(default_factory=dict)

    def start(self) -> None:
        """Run in the background of the current event loop."""
        self._save(state=STATE_QUEUED)
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
        if self._task is not None:
            self._task.cancel()

    def steps(self) -> list[tuple[str, list[str], dict[str, str]]]:
        """(name, argv, extra env) of every subprocess, in order (run in the install's folder)."""
        dataset = json.loads((self.dataset_dir / DATASET_FILE).read_text())
        python, exp = self.settings.gpt_sovits_python, self.exp_name(dataset)
        prepare = {
            "inp_text": dataset["list_path"],
            "inp_wav_dir": dataset["wav_dir"],
            "exp_name": exp,
            "opt_dir": str(self.opt_dir(dataset)),
            "i_part": "0",
            "all_parts": "1",
            "_CUDA_VISIBLE_DEVICES": "0",
            "is_half": str(self.settings.half),
            "version": VERSION,
        }
        return [
            (
                "text features",
                [python, f"{PREPARE_DIR}/1-get-text.py"],
                {**prepare, "bert_pretrained_dir": BERT_DIR},
            ),
            (
                "hubert features",
                [python, f"{PREPARE_DIR}/2-get-hubert-wav32k.py"],
                {**prepare, "cnhubert_base_dir": HUBERT_DIR},
            ),
            (
                "semantic tokens",
                [python, f"{PREPARE_DIR}/3-get-semantic.py"],
                {**prepare, "pretrained_s2G": PRETRAINED_S2G, "s2config_path": S2_CONFIG},
            ),
            (
                "train SoVITS",
                [python, "GPT_SoVITS/s2_train.py", "--config", str(self.dataset_dir / "s2.json")],
                {"_CUDA_VISIBLE_DEVICES": "0"},
            ),
            (
                "train GPT",
                [
                    python,
                    "GPT_SoVITS/s1_train.py",
                    "--config_file",
                    str(self.dataset_dir / "s1.yaml"),
                ],
                {"_CUDA_VISIBLE_DEVICES": "0", "hz": "25hz"},
            ),
        ]

    @staticmethod
    def exp_name(dataset: dict) -> str:
        return f"{dataset['speaker']}_{dataset['id']}"

    def opt_dir(self, dataset: dict) -> Path:
        # jobs run only with GPT_SOVITS_DIR set (checked before)
        return self.settings.gpt_sovits_dir / "logs" / self.exp_name(dataset)  # type: ignore[operator]

    async def run(self) -> None:
        """Every step in turn; stops at the first that fails."""
        install = self.settings.gpt_sovits_dir
        dataset = json.loads((self.dataset_dir / DATASET_FILE).read_text())
        self.opt_dir(dataset).mkdir(parents=True, exist_ok=True)
        self._save(state=STATE_RUNNING, steps=[name for name, *_ in self.steps()], started=_now())
        with open(self.dataset_dir / LOG_FILE, "ab") as log:  # noqa: ASYNC230 (local file, small writes)
            for name, argv, extra in self.steps():
                if name == "train SoVITS":
                    self._merge_parts(dataset)
                    self._write_configs(dataset)
                self._save(step=name)
                log.write(f"\n=== {name}: {shlex.join(argv)}\n".encode())
                log.flush()
                self._process = await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=install,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    env={**os.environ, **extra},
                )
                code = await self._process.wait()
                if code != 0:
                    self._save(state=STATE_FAILED, returncode=code, finished=_now())
                    logger.warning(f"training {dataset['id']}: step {name!r} exited {code}")
                    return
        self._save(
            state=STATE_SUCCEEDED,
            step=None,
            finished=_now(),
            weights={
                # jobs run only with GPT_SOVITS_DIR set (checked before)
                "sovits_dir": str(install / SOVITS_WEIGHTS),  # type: ignore[operator]
                "gpt_dir": str(install / GPT_WEIGHTS),  # type: ignore[operator]
            },
        )
        logger.info(f"training {dataset['id']}: done")

    def _merge_parts(self, dataset: dict) -> None:
        """The preparation scripts write one part each; training reads the merged files."""
        opt = self.opt_dir(dataset)
        (opt / TEXT_ALL).write_text(
            (opt / TEXT_PART).read_text(encoding="utf-8").strip("\n") + "\n", encoding="utf-8"
        )
        semantic = (opt / SEMANTIC_PART).read_text(encoding="utf-8").strip("\n")
        (opt / SEMANTIC_ALL).write_text(f"{SEMANTIC_HEADER}\n{semantic}\n", encoding="utf-8")

    def _write_configs(self, dataset: dict) -> None:
        """The install's training config templates with this dataset's paths and epochs."""
        import yaml

        install, opt, exp = (
            self.settings.gpt_sovits_dir,
            self.opt_dir(dataset),
            self.exp_name(dataset),
        )
        # jobs run only with GPT_SOVITS_DIR set (checked before)
        s2 = json.loads((install / S2_CONFIG).read_text())  # type: ignore[operator]
        s2["train"].update(
            epochs=self.settings.sovits_epochs,
            pretrained_s2G=PRETRAINED_S2G,
            pretrained_s2D=PRETRAINED_S2D,
            if_save_latest=True,
            if_save_every_weights=True,
            gpu_numbers="0",
            fp16_run=self.settings.half,
        )
        s2["model"]["version"] = VERSION
        s2["data"]["exp_dir"] = s2["s2_ckpt_dir"] = str(opt)
        s2.update(save_weight_dir=SOVITS_WEIGHTS, name=exp, version=VERSION)
        (opt / "logs_s2").mkdir(exist_ok=True)
        (self.dataset_dir / "s2.json").write_text(json.dumps(s2, indent=2))
        # jobs run only with GPT_SOVITS_DIR set (checked before)
        s1 = yaml.safe_load((install / S1_CONFIG).read_text())  # type: ignore[operator]
        s1["train"].update(
            epochs=self.settings.gpt_epochs,
            if_save_every_weights=True,
            if_save_latest=True,
            if_dpo=False,
            half_weights_save_dir=GPT_WEIGHTS,
            exp_name=exp,
            precision="16-mixed" if self.settings.half else "32",
        )
        s1.update(
            pretrained_s1=PRETRAINED_S1,
            train_semantic_path=str(opt / SEMANTIC_ALL),
            train_phoneme_path=str(opt / TEXT_ALL),
            output_dir=str(opt / "logs_s1"),
        )
        (self.dataset_dir / "s1.yaml").write_text(yaml.safe_dump(s1))

    def _save(self, **changes) -> None:
        self.state.update(changes)
        (self.dataset_dir / JOB_FILE).write_text(json.dumps(self.state, indent=2))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


async def _stop_jobs(app: web.Application) -> None:
    for job in app[JOBS].values():
        await job.stop()


def main() -> None:
    """Run the preparation and training of a dataset made by POST /api/train-voice."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("dataset_dir", type=Path)
    args = parser.parse_args()
    tree = load_settings()
    settings = TrainingSettings.from_section(tree.token_server.training, cache=tree.stack.cache)
    if settings.gpt_sovits_dir is None:
        parser.error(f"set {ENV_GPT_SOVITS_DIR} to a GPT-SoVITS install")
    if not (args.dataset_dir / DATASET_FILE).is_file():
        parser.error(f"{args.dataset_dir} has no {DATASET_FILE}")
    job = TrainingJob(dataset_dir=args.dataset_dir, settings=settings)
    asyncio.run(job.run())
    print(json.dumps(read_job(args.dataset_dir), indent=2))
    sys.exit(0 if job.state.get("state") == STATE_SUCCEEDED else 1)


if __name__ == "__main__":
    main()
