"""Speed of the embedded voice (hibari with exact timings) on one onnxruntime thread.

Figures:
  real-time factor   synthesis wall time / audio duration, per sentence (HibariVoice.synthesize:
                     G2P + ONNX + DSP + timings); lower is faster, 0.01 = 100x real time
  first audio        EmbeddedTTSService in a Pipecat pipeline: TTSSpeakFrame queued → first
                     TTSAudioRawFrame at the sink (includes the worker-thread hop), per sentence
  voice load         HibariVoice construction (ONNX graph edit + session) in seconds
Prints JSON and a table; writes bench/results/voice.json and voice_rtf.png.

    uv run python bench/voice_bench.py [--repeats 3]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loguru import logger  # noqa: E402
from pipecat.frames.frames import Frame, TTSAudioRawFrame, TTSSpeakFrame, TTSStoppedFrame  # noqa: E402
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.worker import PipelineWorker  # noqa: E402
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor  # noqa: E402
from pipecat.workers.runner import WorkerRunner  # noqa: E402

from processors.tts.embedded import EmbeddedTTSService, EmbeddedVoice  # noqa: E402
from processors.tts.hibari_voice import HibariVoice  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SENTENCES = (
    "Hi!",
    "Hello there, my friend.",
    "What would you like to talk about today?",
    "The museum opens at nine, but the map shop opens much earlier.",
    "On the 3rd of March 2024, Dr. Smith paid $9.99 for a very small cup of coffee.",
    "A simple plan beats a complicated promise every time, and most people learn that the hard "
    "way, usually after a long afternoon of meetings that could have been a short email.",
)


class FirstAudioTimer(FrameProcessor):
    """Sink that notes when the first TTSAudioRawFrame of a request arrives and when it stops."""

    def __init__(self):
        super().__init__()
        self.first_audio: asyncio.Future | None = None
        self.stopped: asyncio.Future | None = None

    def expect(self):
        loop = asyncio.get_running_loop()
        self.first_audio, self.stopped = loop.create_future(), loop.create_future()

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame) and self.first_audio and not self.first_audio.done():
            self.first_audio.set_result(time.perf_counter())
        elif isinstance(frame, TTSStoppedFrame) and self.stopped and not self.stopped.done():
            self.stopped.set_result(None)
        await self.push_frame(frame, direction)


async def measure(voice: HibariVoice, repeats: int) -> dict[str, dict[str, list[float]]]:
    """Per sentence, interleaved so both see the same machine load: seconds of direct
    synthesis, and seconds from queuing a TTSSpeakFrame to its first audio frame."""
    timer = FirstAudioTimer()
    tts = EmbeddedTTSService(voice=EmbeddedVoice(hibari=voice))
    worker = PipelineWorker(Pipeline([tts, timer]), cancel_on_idle_timeout=False)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    run = asyncio.create_task(runner.run())
    await asyncio.sleep(0.5)
    out = {s: {"synth": [], "first_audio": []} for s in SENTENCES}
    for _ in range(repeats):
        for sentence in SENTENCES:
            start = time.perf_counter()
            voice.synthesize(sentence)              # the pipeline is idle meanwhile
            out[sentence]["synth"].append(time.perf_counter() - start)
            timer.expect()
            start = time.perf_counter()
            await worker.queue_frame(TTSSpeakFrame(sentence))
            out[sentence]["first_audio"].append(
                await asyncio.wait_for(timer.first_audio, 10) - start
            )
            await asyncio.wait_for(timer.stopped, 30)
    await worker.cancel()
    await run
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level="WARNING")

    start = time.perf_counter()
    voice = HibariVoice(threads=1, seed=0)
    load_s = time.perf_counter() - start
    voice.synthesize("Warm up.")

    times = asyncio.run(measure(voice, args.repeats))
    rows = []
    for sentence in SENTENCES:
        speech = voice.synthesize(sentence)
        synth = statistics.median(times[sentence]["synth"])
        rows.append(
            {
                "text": sentence,
                "words": len(speech.words),
                "audio_s": round(speech.duration, 3),
                "synth_ms": round(synth * 1000, 1),
                "rtf": round(synth / speech.duration, 4),
                "first_audio_ms": round(
                    statistics.median(times[sentence]["first_audio"]) * 1000, 1
                ),
            }
        )

    result = {
        "device": "CPU, 1 onnxruntime thread",
        "voice_load_s": round(load_s, 3),
        "repeats": args.repeats,
        "rtf_median": round(statistics.median(r["rtf"] for r in rows), 4),
        "x_realtime_median": round(1 / statistics.median(r["rtf"] for r in rows), 1),
        "first_audio_ms_median": round(statistics.median(r["first_audio_ms"] for r in rows), 1),
        "sentences": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "voice.json").write_text(json.dumps(result, indent=2))
    chart(rows, RESULTS / "voice_rtf.png")
    print(json.dumps(result, indent=2))
    print(f"\n{'audio s':>8} {'synth ms':>9} {'RTF':>7} {'first audio ms':>15}  sentence")
    for r in rows:
        print(
            f"{r['audio_s']:8.2f} {r['synth_ms']:9.1f} {r['rtf']:7.4f} "
            f"{r['first_audio_ms']:15.1f}  {r['text'][:48]}"
        )
    print(
        f"voice load {load_s:.2f} s; median {result['x_realtime_median']}x real time; "
        f"median first audio {result['first_audio_ms_median']} ms"
    )


def chart(rows: list[dict], path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = [r["audio_s"] for r in rows]
    ax.plot(x, [r["synth_ms"] for r in rows], "o-", label="synthesis (HibariVoice)")
    ax.plot(x, [r["first_audio_ms"] for r in rows], "s--", label="first audio (EmbeddedTTSService)")
    ax.set_xlabel("sentence audio (s)")
    ax.set_ylabel("ms")
    ax.set_title("Embedded voice on one CPU thread")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
