"""The GPT-SoVITS training job of a dataset (voices/dataset.py), out of the calling process:
GPT-SoVITS's preparation scripts (text/BERT features, HuBERT features + 32 kHz audio, semantic
tokens) and its two training stages (SoVITS, then GPT) run one after the other as subprocesses
in the install's folder, with the job's state in job.json and their output in train.log.

The token server starts a job in its event loop when a GPT-SoVITS install is configured
(GPT_SOVITS_DIR); without one, the same job runs later from the command line:

    GPT_SOVITS_DIR=/path/to/GPT-SoVITS python -m voices.training <dataset dir>
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from loguru import logger

from avatar_core.settings import TrainingSection, load_settings

DATASET_FILE = "dataset.json"
JOB_FILE = "job.json"
LOG_FILE = "train.log"

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


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingSettings:
    """Where datasets go, and the GPT-SoVITS install that trains (if any)."""

    datasets_dir: Path
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
    def from_section(cls, section: TrainingSection, *, cache: Path) -> TrainingSettings:
        """From the tree's training section (AVATAR_DATASETS_DIR, default <cache>/datasets;
        GPT_SOVITS_DIR / _PYTHON / _HALF / _SOVITS_EPOCHS / _GPT_EPOCHS)."""
        options = section.given()
        datasets_dir = options.pop("datasets_dir", cache / "datasets")
        return cls(datasets_dir=datasets_dir, **options)


def training_command(dataset_dir: Path) -> str:
    """The shell command that runs a dataset's job on the machine that has GPT-SoVITS."""
    return (
        f"{ENV_GPT_SOVITS_DIR}=/path/to/GPT-SoVITS {ENV_GPT_SOVITS_PYTHON}="
        f"/path/to/its/python {shlex.quote(sys.executable)} -m voices.training "
        f"{shlex.quote(str(dataset_dir.resolve()))}"
    )


def read_job(folder: Path) -> dict:
    """A dataset's job state (job.json; "prepared" before any job started)."""
    path = folder / JOB_FILE
    return json.loads(path.read_text()) if path.is_file() else {"state": STATE_PREPARED}


@dataclass(kw_only=True)
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
        """Terminate the running step and cancel the job (the server is stopping)."""
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
