"""Voice-to-voice latency of the whole stack, measured where a person would notice it.

Starts livekit-server, Ollama and one bot (`python -m bot`) on loopback, joins the room as a
Python participant and speaks recorded questions (the embedded voice stands in for a person).
Per turn it measures, at the receiving participant:
  voice-to-voice  end of the question's voice (sent as its voiced span, voices.as_said) → first
                  bot speech received
  first video     end of the question → first received frame with the lips moving (searched
                  from 1 s before the first reply audio on)
and takes the bot's own stage figures from its RTVI messages (`bot-latency`, sent per turn
from Pipecat's UserBotLatencyObserver): STT (VAD stop → transcript), LLM first token, LLM to
first sentence (what the TTS waits for), TTS first audio.
Then barge-in trials: the person talks over a long answer; stop time = speech onset → last
bot speech received. Finally the peak resident memory of the bot and of Ollama (process
trees, VmHWM). Prints JSON and a table, writes bench/results/latency.json and latency.png.

    uv run python bench/latency_bench.py [--turns 10] [--barge-ins 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import numpy as np
from loguru import logger

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.servers import bench_servers  # noqa: E402
from bot.pipeline import LATENCY_MESSAGE_TYPE  # noqa: E402
from bot.settings import DEFAULT_IDENTITY  # noqa: E402
from tests.support.bot_process import BotProcess  # noqa: E402
from tests.support.human import HumanParticipant  # noqa: E402
from tests.support.probe import lip_box, lip_motion, server_messages, speech_times, video_frames  # noqa: E402
from tests.support.voices import as_said  # noqa: E402

RESULTS = ROOT / "bench" / "results"
QUESTIONS = (
    "What is the capital of France?",
    "How many legs does a spider have?",
    "What color is the sky on a clear day?",
    "Can you name a fruit that is yellow?",
    "What do bees make?",
    "Which animal says moo?",
    "What is two plus two?",
    "What is the opposite of hot?",
    "Where does the sun rise?",
    "What do you drink in the morning?",
    "How many days are in a week?",
    "What is the largest ocean?",
)
LONG_QUESTION = "Tell me a long story about a brave knight and a dragon."
INTERRUPTION = "Stop please. What is the capital of France?"
QUIET_AFTER_REPLY = 2.0
# Lip change (mean absolute 8-bit difference per frame) above the idle range counts as speaking.
LIP_MOTION_MARGIN = 1.5


def tree_pids(pid: int) -> list[int]:
    """`pid` and all its descendants (Ollama runs its models in child processes)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            children = (
                (task / "children").read_text().split() if (task / "children").exists() else []
            )
            todo.extend(int(c) for c in children)
    return pids


def status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


class MemoryWatch:
    """Samples the summed RSS of process trees; also keeps each process's own peak (VmHWM)."""

    def __init__(self, roots: dict[str, int]):
        self.roots = roots
        self.peak_tree_mb = {name: 0.0 for name in roots}
        self._hwm_kb: dict[str, dict[int, int]] = {name: {} for name in roots}

    def sample(self) -> None:
        for name, root in self.roots.items():
            pids = tree_pids(root)
            rss = sum(status_kb(p, "VmRSS") for p in pids) / 1024
            self.peak_tree_mb[name] = max(self.peak_tree_mb[name], rss)
            for p in pids:
                self._hwm_kb[name][p] = max(self._hwm_kb[name].get(p, 0), status_kb(p, "VmHWM"))

    def hwm_mb(self, name: str) -> float:
        return sum(self._hwm_kb[name].values()) / 1024

    async def run(self, period: float = 0.5) -> None:
        while True:
            self.sample()
            await asyncio.sleep(period)


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def column(rows: list[dict], key: str) -> list:
    """The values of `key` over `rows`, missing (None) ones left out."""
    return [r[key] for r in rows if r[key] is not None]


def p50_p95(values: list[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95)}


def medians(rows: list[dict], keys: tuple[str, ...]) -> dict[str, float | None]:
    """Per key, the median of its values over `rows` (None when it has none)."""
    return {k: (statistics.median(v) if (v := column(rows, k)) else None) for k in keys}


def contribution(breakdown: dict | None, *keys: str) -> float | None:
    """Summed duration (ms) of the named parts of a `bot-latency` breakdown."""
    if not breakdown:
        return None
    parts = [c["ms"] for c in breakdown.get("contributions", []) if c["key"] in keys]
    return sum(parts) if parts else None


def stage(breakdown: dict | None, name: str) -> float | None:
    """A service's TTFB (ms) from a `bot-latency` message, by processor name prefix."""
    if not breakdown:
        return None
    return next((v for k, v in breakdown.get("ttfb_ms", {}).items() if name in k), None)


async def wait_quiet(human: HumanParticipant, since: float, timeout: float = 180.0) -> float | None:  # noqa: ASYNC109 (poll deadline)
    """Wait for bot speech after `since` followed by QUIET_AFTER_REPLY s of silence."""

    def ended():
        times = speech_times(human.audio, DEFAULT_IDENTITY, since)
        return times and time.monotonic() - times[-1] > QUIET_AFTER_REPLY and times[-1]

    try:
        return await human.wait_for(ended, timeout, what="the reply")
    except TimeoutError:
        return None


async def measure(url: str, token: str, *, turns: int, barge_ins: int, memory: MemoryWatch) -> dict:
    async with HumanParticipant.connect(url, token) as human:
        await human.wait_for(
            lambda: any(w == DEFAULT_IDENTITY for _, w, _ in human.video), 180, what="bot video"
        )
        await asyncio.sleep(2.0)
        idle = video_frames(human.video, DEFAULT_IDENTITY)
        box = lip_box(idle[-1][1])
        idle_motion = [m for _, m in lip_motion(idle[-40:], box)]
        lip_threshold = max(idle_motion) + LIP_MOTION_MARGIN

        rows = []
        for i in range(turns):
            question = QUESTIONS[i % len(QUESTIONS)]
            await human.publish_audio(*await asyncio.to_thread(as_said, question))
            ended = human.speech_ended_at
            last = await wait_quiet(human, ended)
            speech = speech_times(human.audio, DEFAULT_IDENTITY, ended)
            frames = video_frames(human.video, DEFAULT_IDENTITY, ended - 0.1)
            # Lips moving within a second of the first reply audio (coding noise long before the
            # reply can cross the idle threshold too).
            near = speech[0] - 1.0 if speech else float("inf")
            moving = [at for at, m in lip_motion(frames, box) if m > lip_threshold and at >= near]
            breakdown = (server_messages(human.messages, LATENCY_MESSAGE_TYPE, ended) or [None])[0]
            row = {
                "question": question,
                "voice_to_voice_ms": round((speech[0] - ended) * 1000) if speech else None,
                "first_video_ms": round((moving[0] - ended) * 1000) if moving else None,
                "reply_s": round(last - speech[0], 2) if speech and last else None,
                "stt_ms": contribution(breakdown, "transcription"),
                "llm_first_token_ms": stage(breakdown, "OLLamaLLMService"),
                "llm_first_sentence_ms": contribution(
                    breakdown, "llm_inference", "sentence_aggregation"
                ),
                "tts_first_audio_ms": stage(breakdown, "EmbeddedTTSService"),
                "bot_measured_ms": breakdown.get("total_ms") if breakdown else None,
            }
            rows.append(row)
            memory.sample()
            logger.info(f"turn {i + 1}/{turns}: {row}")

        barge = []
        for i in range(barge_ins):
            await human.publish_audio(*await asyncio.to_thread(as_said, LONG_QUESTION))
            asked = human.speech_ended_at
            try:
                await human.wait_for(
                    lambda asked=asked: speech_times(human.audio, DEFAULT_IDENTITY, asked), 90
                )
                started = speech_times(human.audio, DEFAULT_IDENTITY, asked)[0]
                await human.wait_for(
                    lambda started=started: speech_times(
                        human.audio, DEFAULT_IDENTITY, started + 1.0
                    ),
                    30,
                )
            except TimeoutError:
                logger.warning(f"barge-in {i + 1}: the bot did not talk long enough")
                continue
            # From the speech onset: the voice's leading silence is not part of the stop time.
            await human.publish_audio(*await asyncio.to_thread(as_said, INTERRUPTION), wait=False)
            await human.wait_for(
                lambda started=started: (
                    human.speech_started_at and human.speech_started_at > started
                ),
                5,
            )
            onset = human.speech_started_at
            await human.wait_for(lambda: human.speech_ended_at, 30)
            end = human.speech_ended_at
            talk = [at for at in speech_times(human.audio, DEFAULT_IDENTITY, onset) if at < end]
            stop_ms = round((talk[-1] - onset) * 1000) if talk else 0
            barge.append(
                {"stop_ms": stop_ms, "silent_while_interrupted": not talk or talk[-1] < end - 0.5}
            )
            logger.info(f"barge-in {i + 1}/{barge_ins}: {barge[-1]}")
            await wait_quiet(human, end)
    return {"turns": rows, "barge_in": barge}


def summarize(result: dict, memory: MemoryWatch) -> dict:
    rows = result["turns"]
    summary = {
        "turns": len(rows),
        "answered_turns": len(column(rows, "voice_to_voice_ms")),
        "voice_to_voice_ms": p50_p95(column(rows, "voice_to_voice_ms")),
        "stages_ms_median": medians(
            rows,
            (
                "stt_ms",
                "llm_first_token_ms",
                "llm_first_sentence_ms",
                "tts_first_audio_ms",
                "first_video_ms",
                "bot_measured_ms",
            ),
        ),
        "barge_in_stop_ms": {
            "p50": percentile([b["stop_ms"] for b in result["barge_in"]], 50),
            "max": max((b["stop_ms"] for b in result["barge_in"]), default=None),
            "trials": len(result["barge_in"]),
        },
        "peak_rss_mb": {
            name: {
                "tree_rss_sampled": round(memory.peak_tree_mb[name]),
                "sum_vmhwm": round(memory.hwm_mb(name)),
            }
            for name in memory.roots
        },
    }
    return summary


def chart(result: dict, summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["turns"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(len(rows))
    stages = (
        ("stt_ms", "STT"),
        ("llm_first_sentence_ms", "LLM to first sentence"),
        ("tts_first_audio_ms", "TTS first audio"),
    )
    bottom = np.zeros(len(rows))
    for key, label in stages:
        values = np.array([r[key] or 0 for r in rows], float)
        a.bar(x, values, bottom=bottom, label=label)
        bottom += values
    a.plot(
        x, [r["llm_first_token_ms"] or np.nan for r in rows], "c_", ms=14, label="LLM first token"
    )
    a.plot(
        x, [r["voice_to_voice_ms"] or np.nan for r in rows], "ko-", label="voice-to-voice (client)"
    )
    a.plot(
        x, [r["first_video_ms"] or np.nan for r in rows], "r^--", label="first lip motion (client)"
    )
    a.set_xlabel("turn")
    a.set_ylabel("ms")
    a.set_title("Per-turn latency and the bot's stages")
    a.legend(fontsize=8)
    v2v = summary["voice_to_voice_ms"]
    labels = ["v2v p50", "v2v p95", "barge-in stop p50"]
    values = [v2v["p50"] or 0, v2v["p95"] or 0, summary["barge_in_stop_ms"]["p50"] or 0]
    b.bar(labels, values, color=["tab:blue", "tab:blue", "tab:orange"])
    b.axhline(1000, color="gray", ls=":", label="aim v2v p50 1.0 s")
    b.axhline(300, color="tab:orange", ls=":", label="aim barge-in 300 ms")
    b.set_ylabel("ms")
    b.set_title("Summary")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def print_table(summary: dict) -> None:
    v = summary["voice_to_voice_ms"]
    s = summary["stages_ms_median"]
    print(f"\n{'figure':<34}{'value':>12}")
    for name, value in (
        ("voice-to-voice p50 (ms)", v["p50"]),
        ("voice-to-voice p95 (ms)", v["p95"]),
        ("STT median (ms)", s["stt_ms"]),
        ("LLM first token median (ms)", s["llm_first_token_ms"]),
        ("LLM to first sentence median (ms)", s["llm_first_sentence_ms"]),
        ("TTS first audio median (ms)", s["tts_first_audio_ms"]),
        ("first lip motion median (ms)", s["first_video_ms"]),
        ("barge-in stop p50 (ms)", summary["barge_in_stop_ms"]["p50"]),
        *((f"peak RSS {k} (MB)", m["sum_vmhwm"]) for k, m in summary["peak_rss_mb"].items()),
    ):
        print(f"{name:<34}{'-' if value is None else round(value):>12}")


async def main_async(args) -> dict:
    with bench_servers("latency-bench") as servers:
        room = f"bench-{uuid.uuid4().hex[:6]}"
        # room for the stories the barge-in trials interrupt
        env = servers.bot_env(BOT_GREETING="", BOT_LLM_MAX_TOKENS="150")
        with BotProcess(room=room, log_path=servers.logs / "bot.log", env=env) as bot:
            memory = MemoryWatch({"bot": bot.pid, "ollama": servers.ollama.pid})
            watcher = asyncio.create_task(memory.run())
            try:
                result = await measure(
                    servers.url,
                    servers.token(room),
                    turns=args.turns,
                    barge_ins=args.barge_ins,
                    memory=memory,
                )
            finally:
                watcher.cancel()
            memory.sample()
        summary = summarize(result, memory)
        return {
            "summary": summary,
            **result,
            "machine": {"cpus": len(os.sched_getaffinity(0))},
            "logs": str(servers.logs),
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--barge-ins", type=int, default=3)
    args = parser.parse_args()
    if args.turns < 1:
        parser.error("--turns must be at least 1")
    report = asyncio.run(main_async(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latency.json").write_text(json.dumps(report, indent=2))
    chart(report, report["summary"], RESULTS / "latency.png")
    print(json.dumps(report["summary"], indent=2))
    print_table(report["summary"])
    print(f"\nwrote {RESULTS / 'latency.json'} and {RESULTS / 'latency.png'}")


if __name__ == "__main__":
    main()
