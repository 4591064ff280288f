"""Barge-in, stage by stage: where the time from a person's speech onset to the bot's silence goes.

Starts livekit-server, Ollama and the bot (`python -m bot`, debug log) on loopback. A real
LiveKit participant asks for a long story, waits until the bot has talked for 1.5 s, then talks
over it (the conversation benchmark's trial, `bench/conversation_bench.py:barge_in`, from the
speech onset: the synthesiser's leading silence is not counted). Per trial, from the onset
(the participant's clock and the bot's log share this machine's wall clock):
  VAD detected     the bot's per-person VAD reports speech (`ParticipantSpeechSegmenter` log)
  pipeline         ... and the face processor has dropped its queued audio and pictures
  audio stopped    the last bot audio received by the participant
  mouth still      the last lip motion received
Prints a table and JSON; writes bench/results/barge_in.json and barge_in.png.

    uv run python bench/barge_in_bench.py [--trials 8]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loguru import logger  # noqa: E402

from bench.conversation_bench import LIP_MOTION_MARGIN, barge_in  # noqa: E402
from bench.latency_bench import column, percentile  # noqa: E402
from bench.servers import bench_servers  # noqa: E402
from bot.settings import DEFAULT_IDENTITY  # noqa: E402
from tests.support.bot_process import BotProcess  # noqa: E402
from tests.support.human import HumanParticipant  # noqa: E402
from tests.support.probe import lip_box, lip_motion, video_frames  # noqa: E402

RESULTS = ROOT / "bench" / "results"
AIM_MS = 300
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})")
DETECTED = "speaks and may interrupt the bot"
DROPPED = "FaceVideoProcessor#0: interrupted, dropping"


def log_times(path: Path, marker: str) -> list[float]:
    """Wall-clock times (s) of the bot's log lines holding `marker`."""
    times = []
    for line in path.read_text().splitlines():
        found = LOG_TIME.match(line)
        if found and marker in line:
            times.append(datetime.datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S.%f").timestamp())
    return times


def first_after(times: list[float], t: float) -> float | None:
    return next((x for x in times if x >= t), None)


async def trials(url: str, token: str, n: int) -> list[dict]:
    """Run `n` barge-ins; each with its onset on the wall clock."""
    to_wall = time.time() - time.monotonic()
    rows = []
    async with HumanParticipant.connect(url, token) as human:
        await human.wait_for(lambda: any(w == DEFAULT_IDENTITY for _, w, _ in human.video),
                             180, what="bot video")
        await asyncio.sleep(4.0)
        idle = video_frames(human.video, DEFAULT_IDENTITY, time.monotonic() - 3.0)
        box = lip_box(idle[-1][1])
        threshold = max(m for _, m in lip_motion(idle, box)) + LIP_MOTION_MARGIN
        for i in range(n):
            trial = await barge_in(human, box, threshold)
            if trial:
                rows.append({**trial, "onset_wall": human.speech_started_at + to_wall})
            logger.info(f"barge-in {i + 1}/{n}: {trial}")
    return rows


def with_bot_stages(rows: list[dict], log: Path) -> list[dict]:
    detected, dropped = log_times(log, DETECTED), log_times(log, DROPPED)
    for row in rows:
        onset = row["onset_wall"]
        seen = first_after(detected, onset - 0.05)  # log times are to the millisecond
        cut = first_after(dropped, seen) if seen else None
        row["vad_detected_ms"] = round((seen - onset) * 1000) if seen else None
        row["pipeline_ms"] = round((cut - seen) * 1000) if cut and seen else None
    return rows


def summarize(rows: list[dict]) -> dict:
    keys = ("vad_detected_ms", "pipeline_ms", "audio_stop_ms", "mouth_stop_ms")
    summary = {k: {"p50": percentile(column(rows, k), 50),
                   "max": max(column(rows, k), default=None)} for k in keys}
    audio, vad, pipe = (summary[k]["p50"] for k in ("audio_stop_ms", "vad_detected_ms",
                                                    "pipeline_ms"))
    if None not in (audio, vad, pipe):
        # What is left after the bot dropped its audio: WebRTC, the network, the jitter buffer.
        summary["after_drop_to_receiver_ms_p50"] = audio - vad - pipe
    return summary


def chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6))
    for i, r in enumerate(rows):
        vad, pipe, audio = r["vad_detected_ms"] or 0, r["pipeline_ms"] or 0, r["audio_stop_ms"]
        ax.barh(i, vad, color="tab:blue", label="VAD detected" if i == 0 else None)
        ax.barh(i, pipe, left=vad, color="tab:green", label="pipeline drop" if i == 0 else None)
        ax.barh(i, max(0, audio - vad - pipe), left=vad + pipe, color="tab:gray",
                label="to the receiver" if i == 0 else None)
        ax.plot(r["mouth_stop_ms"], i, "k|", ms=12, label="mouth still" if i == 0 else None)
    ax.axvline(AIM_MS, color="tab:orange", ls=":", label=f"aim {AIM_MS} ms")
    ax.set_xlabel("ms after the person's speech onset")
    ax.set_ylabel("trial")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("barge-in: onset → bot silent at the participant")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def print_table(rows: list[dict], summary: dict) -> None:
    print(f"{'trial':>5} {'VAD':>6} {'drop':>6} {'audio':>6} {'mouth':>6}   (ms after onset)")
    for i, r in enumerate(rows):
        print(f"{i + 1:>5} {r['vad_detected_ms']!s:>6} {r['pipeline_ms']!s:>6} "
              f"{r['audio_stop_ms']:>6} {r['mouth_stop_ms']:>6}")
    print(f"{'p50':>5} {summary['vad_detected_ms']['p50']!s:>6} "
          f"{summary['pipeline_ms']['p50']!s:>6} {summary['audio_stop_ms']['p50']!s:>6} "
          f"{summary['mouth_stop_ms']['p50']!s:>6}   aim: audio ≤ {AIM_MS}")


async def main_async(args) -> dict:
    load = [os.getloadavg()]
    with bench_servers("barge-in-bench") as servers:
        env = servers.bot_env(BOT_GREETING="", BOT_LLM_MAX_TOKENS="150", LOGURU_LEVEL="DEBUG")
        room = f"barge-{uuid.uuid4().hex[:6]}"
        log = servers.logs / "bot.log"
        bot = BotProcess(room=room, env=env, log_path=log)
        bot.start()
        try:
            rows = await trials(servers.url, servers.token(room), args.trials)
        finally:
            bot.stop()
        rows = with_bot_stages(rows, log)
    load.append(os.getloadavg())
    return {"trials": rows, "summary": summarize(rows), "aim_ms": AIM_MS,
            "machine": {"cpus": len(os.sched_getaffinity(0))},
            "load_average": [[round(x, 2) for x in la] for la in load]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=8)
    report = asyncio.run(main_async(parser.parse_args()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "barge_in.json").write_text(json.dumps(report, indent=2))
    chart(report["trials"], RESULTS / "barge_in.png")
    print(json.dumps(report["summary"], indent=2))
    print_table(report["trials"], report["summary"])
    print(f"load average: {report['load_average']}")


if __name__ == "__main__":
    main()
