"""Accuracy of the forced aligner against exact word timings, on its own reference voice and on
a foreign one.

Every sentence is spoken by a voice that knows its exact word timings and the words are placed
again from the bare audio by:

  faster-whisper words   faster-whisper's own word timestamps (transcribe, word_timestamps=True);
                         its words are matched to the sentence's (unmatched ones count as missed)
  whisper DTW            WhisperAligner stage 1 only (find_alignment with the known tokens)
  + silences             stages 1-2 (words kept inside the stretches of sound between pauses)
  + reference            stages 1-3 (the full aligner: DTW against the embedded voice)

Conditions (the reference voice is always HibariVoice at speed 1.0 with another noise seed):
  embedded       the embedded voice as is. Same voice and tempo as the reference, so the
                 "+ reference" figure here is an upper bound, not a cross-voice result.
  shifted-up     speed 0.9, then every frequency raised 12 % (resampled: pitch and formants up,
                 like a smaller speaker) - a voice and tempo the reference does not have.
  shifted-down   speed 1.15, frequencies lowered 11 %.
  piper          Piper en_US-joe-medium (a foreign male voice; exact timings from its phoneme
                 sample counts; dev-only, tests/support/voices.py).
  piper-slow     Piper with every phoneme 25 % longer (time-stretched; timings stay exact).
  piper-fast     Piper 20 % faster.
  piper-up       Piper at speed 0.9, every frequency raised 12 % (pitch-shifted).
  piper-down     Piper at speed 1.15, frequencies lowered 11 %.
Truth times are scaled with the resampling. Error: |estimate - truth| of every word start and
end, in ms. Prints JSON and a table; writes bench/results/align.json (a run replaces the
conditions it measured and keeps the others) and align.png.

    uv run python bench/align_bench.py [--sentences 24] [--conditions piper,piper-slow]
"""

from __future__ import annotations

import argparse
import difflib
import functools
import json
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soxr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faster_whisper import WhisperModel  # noqa: E402

from avatar_core.whisper import WHISPER_SAMPLE_RATE  # noqa: E402
from processors.align.whisper_aligner import WhisperAligner  # noqa: E402
from processors.tts.hibari_voice import HibariVoice  # noqa: E402
from stack.models import whisper_model  # noqa: E402
from stack.settings import StackSettings  # noqa: E402
from tests.support.voices import piper_words  # noqa: E402

RESULTS = ROOT / "bench" / "results"
AIM_MS = 40.0
SENTENCES = (
    "Hello there, my friend. How are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "I think we should meet again next week, maybe on Tuesday.",
    "Please remember to bring your notebook and a pen.",
    "Well, that depends on what you mean by simple.",
    "She sells sea shells by the sea shore.",
    "Our train leaves at seven, so we need to hurry.",
    "Can you hear me clearly, or should I speak up?",
    "The weather was cold and grey, but nobody seemed to mind.",
    "I have never seen such a beautiful garden in my life.",
    "Let me check the calendar and get back to you.",
    "Thank you for waiting; the results are finally ready.",
    "Most people prefer coffee in the morning and tea at night.",
    "If it rains tomorrow, the picnic will be moved indoors.",
    "We built this avatar to answer questions in real time.",
    "My brother plays the guitar, and my sister sings.",
    "Turn left at the bakery, then walk two blocks north.",
    "Nobody knows exactly how old the castle really is.",
    "Could you send me the report before lunch?",
    "The museum opens at nine and closes at five.",
    "Honestly, I was surprised by how quickly it worked.",
    "Reading before bed helps me fall asleep faster.",
    "Yes. No. Maybe later, when the meeting is over.",
    "A small boat drifted slowly across the quiet lake.",
)
# condition -> (voice, speed, frequency factor)
CONDITIONS = {"embedded": ("embedded", 1.0, 1.0), "shifted-up": ("embedded", 0.9, 1.12),
              "shifted-down": ("embedded", 1.15, 0.89), "piper": ("piper", 1.0, 1.0),
              "piper-slow": ("piper", 0.8, 1.0), "piper-fast": ("piper", 1.25, 1.0),
              "piper-up": ("piper", 0.9, 1.12), "piper-down": ("piper", 1.15, 0.89)}
METHODS = ("faster-whisper words", "whisper DTW", "+ silences", "+ reference")


@functools.cache
def embedded_voice(speed: float) -> HibariVoice:
    return HibariVoice(speed=speed, seed=0)


def spoken(voice: str, speed: float, text: str
           ) -> tuple[np.ndarray, int, list[tuple[float, float]]]:
    """`text` by the embedded or the Piper voice at `speed`: int16 audio, rate, exact spans."""
    if voice == "piper":
        audio, rate, words = piper_words(text, length_scale=1.0 / speed)
        return audio, rate, [(w.start, w.end) for w in words]
    speech = embedded_voice(speed).synthesize(text)
    return speech.audio, speech.sample_rate, [(w.start, w.end) for w in speech.words]


def shifted(audio: np.ndarray, rate: int, truth: list[tuple[float, float]], factor: float
            ) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Audio with every frequency times `factor` (played faster) and the truth spans scaled."""
    wave = audio.astype(np.float32) / 32768.0
    if factor != 1.0:
        wave = soxr.resample(wave, rate, round(rate / factor))
    pcm = np.round(np.clip(wave, -1, 1) * 32767).astype(np.int16)
    return pcm, [(s / factor, e / factor) for s, e in truth]


def whisper_words(model: WhisperModel, audio: np.ndarray, rate: int, text: str
                  ) -> list[tuple[float, float] | None]:
    """faster-whisper's own word timestamps matched to the sentence's words (None: missed)."""
    wave = soxr.resample(audio.astype(np.float32) / 32768.0, rate, WHISPER_SAMPLE_RATE)
    segments, _ = model.transcribe(wave.astype(np.float32), language="en", beam_size=1,
                                   word_timestamps=True, condition_on_previous_text=False)
    heard = [w for s in segments for w in (s.words or [])]

    def norm(word: str) -> str:
        return re.sub(r"\W", "", word.lower())

    words = text.split()
    out: list[tuple[float, float] | None] = [None] * len(words)
    matcher = difflib.SequenceMatcher(None, [norm(w) for w in words], [norm(w.word) for w in heard],
                                      autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            h = heard[block.b + k]
            out[block.a + k] = (h.start, h.end)
    return out


def errors(estimate: list[tuple[float, float] | None], truth: list[tuple[float, float]]
           ) -> tuple[list[float], int]:
    """Absolute start and end errors in ms of the placed words, and how many were missed."""
    out, missed = [], 0
    for est, (s, e) in zip(estimate, truth, strict=False):
        if est is None:
            missed += 1
            continue
        out += [abs(est[0] - s) * 1000, abs(est[1] - e) * 1000]
    return out, missed


def summary(values: list[float], missed: int, seconds: list[float]) -> dict:
    v = np.asarray(values)
    return {"mean_ms": round(float(v.mean()), 1), "p95_ms": round(float(np.percentile(v, 95)), 1),
            "max_ms": round(float(v.max()), 1), "boundaries": int(len(v)),
            "missed_words": missed, "seconds_per_sentence": round(float(np.mean(seconds)), 3)}


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conditions = list(results)
    fig, ax = plt.subplots(figsize=(12, 4.5))
    width = 0.8 / len(METHODS)
    for k, method in enumerate(METHODS):
        x = np.arange(len(conditions)) + (k - (len(METHODS) - 1) / 2) * width
        means = [results[c].get(method, {}).get("mean_ms", np.nan) for c in conditions]
        p95 = [results[c].get(method, {}).get("p95_ms", np.nan) for c in conditions]
        ax.bar(x, means, width, label=f"{method} (mean)")
        ax.scatter(x, p95, marker="_", s=200, color="black")
    ax.axhline(AIM_MS, color="red", linestyle="--", linewidth=1, label=f"aim {AIM_MS:.0f} ms")
    ax.set_xticks(np.arange(len(conditions)), conditions)
    ax.set_ylabel("word boundary error, ms (bar: mean, tick: p95)")
    ax.set_title("Forced alignment vs exact word timings (embedded and Piper voices)")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


_worker: dict = {}


def _start_worker(path: str, methods: tuple[str, ...]) -> None:
    """One worker process: the Whisper model and the aligners, loaded once."""
    model = WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=1)
    aligners = {
        "whisper DTW": lambda: WhisperAligner(model=model, silences=False),
        "+ silences": lambda: WhisperAligner(model=model),
        "+ reference": lambda: WhisperAligner(model=model, reference=HibariVoice(seed=1)),
    }
    _worker.update(model=model, methods=methods,
                   aligners={name: make() for name, make in aligners.items() if name in methods})


def _measure(task: tuple[str, str]) -> dict | None:
    """(errors, missed, seconds) per method for one sentence in one condition; None when Piper
    splits the sentence into other words than the text's (its truth would be guesswork)."""
    condition, text = task
    voice, speed, factor = CONDITIONS[condition]
    try:
        audio, rate, truth = spoken(voice, speed, text)
    except ValueError:
        return None
    audio, truth = shifted(audio, rate, truth, factor)
    estimates, seconds = {}, {}
    if "faster-whisper words" in _worker["methods"]:
        t0 = time.perf_counter()
        estimates["faster-whisper words"] = whisper_words(_worker["model"], audio, rate, text)
        seconds["faster-whisper words"] = time.perf_counter() - t0
    for name, aligner in _worker["aligners"].items():
        t0 = time.perf_counter()
        estimates[name] = [(w.start, w.end) for w in aligner.align(text, audio, rate).words]
        seconds[name] = time.perf_counter() - t0
    return {m: (*errors(estimates[m], truth), seconds[m]) for m in _worker["methods"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=len(SENTENCES))
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="a subset saves time; the others keep their earlier figures")
    parser.add_argument("--jobs", type=int, default=1, help="sentences measured in parallel")
    args = parser.parse_args()
    sentences = SENTENCES[:args.sentences]
    conditions = args.conditions.split(",")
    methods = args.methods.split(",")

    path = whisper_model(StackSettings.from_env().whisper_model, StackSettings.from_env().cache)
    tasks = [(c, text) for c in conditions for text in sentences]
    with ProcessPoolExecutor(max_workers=args.jobs, initializer=_start_worker,
                             initargs=(path, tuple(methods))) as pool:
        measured = list(pool.map(_measure, tasks))
    results: dict[str, dict] = {}
    skipped: dict[str, list[str]] = {}
    for condition in conditions:
        collected = {m: ([], 0, []) for m in methods}
        for (c, text), by_method in zip(tasks, measured, strict=False):
            if c != condition:
                continue
            if by_method is None:
                skipped.setdefault(condition, []).append(text)
                continue
            for method, (errs, missed, seconds) in by_method.items():
                values, total_missed, times = collected[method]
                collected[method] = (values + errs, total_missed + missed, times + [seconds])
        results[condition] = {m: summary(*collected[m]) for m in methods}
        results[condition]["sentences"] = len(sentences) - len(skipped.get(condition, []))

    RESULTS.mkdir(parents=True, exist_ok=True)
    previous = RESULTS / "align.json"
    kept = json.loads(previous.read_text()) if previous.exists() else {}
    merged = kept.get("results", {})
    for condition, by_method in results.items():
        count = by_method.pop("sentences")
        for figures in by_method.values():
            figures["sentences"] = count
            figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
        merged[condition] = {**merged.get(condition, {}), **by_method}
    report = {"whisper_model": path, "aim_mean_ms": AIM_MS,
              "conditions": {**kept.get("conditions", {}),
                             **{c: {"voice": CONDITIONS[c][0], "speed": CONDITIONS[c][1],
                                    "frequency_factor": CONDITIONS[c][2]} for c in conditions}},
              "results": merged, "skipped_sentences": skipped}
    results = {c: merged[c] for c in CONDITIONS if c in merged}
    (RESULTS / "align.json").write_text(json.dumps(report, indent=2))
    chart(results, RESULTS / "align.png")
    print(json.dumps(report, indent=2))
    print(f"\n{'condition':14s} {'method':22s} {'mean ms':>8s} {'p95 ms':>8s} {'max ms':>8s} "
          f"{'missed':>6s} {'s/sent':>7s}")
    for condition, by_method in results.items():
        for method, r in by_method.items():
            print(f"{condition:14s} {method:22s} {r['mean_ms']:8.1f} {r['p95_ms']:8.1f} "
                  f"{r['max_ms']:8.1f} {r['missed_words']:6d} {r['seconds_per_sentence']:7.2f}")


if __name__ == "__main__":
    main()
