"""Speed of the SadTalker face engine: seconds of compute per second of video, first-frame delay
and GPU memory, at 256 and 512.

On a GPU host it needs the real checkpoints (SADTALKER_CHECKPOINTS, SADTALKER_CONFIG or
SADTALKER_DIR; README "GPU engines") and measures each size on a 4 s sentence of the embedded
voice. Without a GPU it prints "no GPU" and exits cleanly; with `--cpu-standin` it instead times
the CPU with STAND-IN checkpoints (random weights from SadTalker's model classes: the same
amount of compute as the real models, but labelled as stand-in figures).
Writes bench/results/sadtalker.json (with the load average) and sadtalker.png.

    uv run --group sadtalker python bench/sadtalker_bench.py [--cpu-standin] [--seconds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from avatar_core.settings import load_settings  # noqa: E402
from processors.face.base import DEFAULT_AVATAR  # noqa: E402
from processors.face.sadtalker import SIZES, SadTalkerSettings  # noqa: E402

RESULTS = ROOT / "bench" / "results"
NVIDIA_DRIVER = "/proc/driver/nvidia/gpus"
TEXT = ("Thanks for waiting. Here is the answer you asked for, in a few short words, "
        "spoken slowly.")


def measure(settings: SadTalkerSettings, seconds: float) -> dict:
    """Load, prepare and render one sentence at `settings.size`; timings and memory."""
    import torch

    from processors.face.sadtalker import SadTalkerFaceEngine
    from processors.tts.hibari_voice import HibariVoice

    speech = HibariVoice().synthesize(TEXT)
    audio = speech.audio[:int(seconds * speech.sample_rate)]
    cuda = settings.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    engine = SadTalkerFaceEngine(settings=settings, width=512, height=512, fps=25, idle_s=0.0)
    loaded = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        image = Path(folder) / "avatar.png"
        shutil.copy(DEFAULT_AVATAR, image)
        started = time.perf_counter()
        avatar = engine.load_avatar(image)
        prepared = time.perf_counter() - started
    started = time.perf_counter()
    ahead = engine.render_ahead(avatar, audio, speech.sample_rate)
    ahead.frame(0)
    first = time.perf_counter() - started
    for k in range(1, ahead.count):
        ahead.frame(k)
    total = time.perf_counter() - started
    video_s = ahead.count / engine.fps
    return {"size": settings.size, "device": settings.device, "video_s": round(video_s, 2),
            "load_s": round(loaded, 2), "prepare_s": round(prepared, 2),
            "first_frame_s": round(first, 2),
            "compute_s_per_video_s": round(total / video_s, 3),
            "gpu_peak_mib": round(torch.cuda.max_memory_allocated() / 2**20) if cuda else None}


def chart(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    labels = [str(r["size"]) for r in rows]
    ax.bar(labels, [r["compute_s_per_video_s"] for r in rows])
    ax.axhline(1.0, color="red", linestyle="--", linewidth=1, label="real time")
    ax.set_xlabel("SadTalker model size")
    ax.set_ylabel("compute seconds per second of video")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="speech per measurement")
    parser.add_argument("--cpu-standin", action="store_true",
                        help="without a GPU: time the CPU on stand-in checkpoints")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    args = parser.parse_args()
    if not Path(NVIDIA_DRIVER).exists() and not args.cpu_standin:
        print("no GPU")  # (checked before importing torch, which takes a while)
        return 0
    try:
        import torch
    except ImportError:
        print("no GPU (torch is not installed: uv sync --group sadtalker)")
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    if torch.cuda.is_available():
        base = replace(SadTalkerSettings(**load_settings().bot.sadtalker.given()), device="cuda")
        label, device = "GPU", torch.cuda.get_device_name(0)
    elif args.cpu_standin:
        from tests.support.sadtalker_standin import build_standin

        base = SadTalkerSettings(device="cpu")
        label, device = "CPU, STAND-IN checkpoints", "cpu"
    else:
        print("no GPU")
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            settings = replace(base, size=size)
            if label.startswith("CPU"):
                checkpoints, config = build_standin(Path(folder) / str(size), size=size)
                settings = replace(settings, checkpoints=checkpoints, config=config)
            rows.append(measure(settings, args.seconds))
            print(json.dumps(rows[-1]))
    report = {"what": label, "device": device, "torch": torch.__version__,
              "load_average": [round(x, 2) for x in os.getloadavg()], "results": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sadtalker.json").write_text(json.dumps(report, indent=2))
    chart(rows, RESULTS / "sadtalker.png", f"SadTalker on {device} ({label})")
    print(json.dumps(report, indent=2))
    print(f"\n{'size':>5s} {'compute s / video s':>20s} {'first frame s':>14s} {'GPU MiB':>8s}")
    for r in rows:
        print(f"{r['size']:5d} {r['compute_s_per_video_s']:20.2f} {r['first_frame_s']:14.2f} "
              f"{r['gpu_peak_mib'] if r['gpu_peak_mib'] is not None else '-':>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
