"""What conversation records cost a call.

1. Recorder writes, per backend (SQLite file in WAL mode; a real PostgreSQL server from Debian's
   binaries when present): utterances submitted through `SessionRecorder` at a steady rate.
   `submit` is what the pipeline pays (it only queues); write latency is submit → committed by
   the writer thread.
2. Voice-to-voice latency of the real stack (livekit-server, Ollama, `python -m bot`) with
   recording on and off, the same questions in fresh rooms (bench/latency_bench.py's turn
   measurement), unless --turns 0. Ollama's model is loaded first (stack.models) and the modes
   alternate (off, on, off, on: half the turns each time), so neither mode gets the cold start.

Prints JSON and a table, writes bench/results/records.json and records.png. The machine's load
average is recorded: timing on a shared machine is noisy.

    uv run python bench/records_bench.py [--writes 500] [--rate 100] [--turns 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from records.recorder import SessionRecorder  # noqa: E402
from records.schema import ROLE_USER  # noqa: E402
from records.store import RecordStore, SessionInfo, Utterance, now  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SENTENCE = "My name is Dana and my favourite colour is green, what is yours?"


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    return {
        "p50": round(float(np.percentile(values, 50)), 3),
        "p99": round(float(np.percentile(values, 99)), 3),
        "max": round(float(max(values)), 3),
    }


def bench_writes(url: str, *, writes: int, rate: float) -> dict:
    """Submit `writes` utterances at `rate` per second; submit and write latency in ms."""
    store = RecordStore(url=url)
    store.migrate()
    session = SessionInfo(
        id=uuid.uuid4().hex, room="bench", bot_identity="avatar-bot", started_at=now()
    )
    recorder = SessionRecorder(store=store, session=session)
    submit_ms = []
    period = 1.0 / rate
    next_at = time.perf_counter()
    for i in range(writes):
        at = now()
        utterance = Utterance(
            speaker_identity="dana",
            speaker_name="Dana",
            role=ROLE_USER,
            text=f"{SENTENCE} ({i})",
            started_at=at,
            ended_at=at + timedelta(seconds=2),
            addressed=True,
        )
        started = time.perf_counter()
        recorder.utterance(utterance)
        submit_ms.append((time.perf_counter() - started) * 1000)
        next_at += period
        time.sleep(max(0.0, next_at - time.perf_counter()))
    stats = recorder.close(30)
    store.close()
    return {
        "writes": writes,
        "rate_per_s": rate,
        "written": stats.written,
        "lost": stats.lost,
        "submit_ms": percentiles(submit_ms),
        "write_ms": percentiles([s * 1000 for s in recorder.write_latencies_s]),
    }


def postgres_writes(args) -> dict | None:
    from tests.support.postgres import PostgresServer, pg_bin

    bin_dir = pg_bin()
    if bin_dir is None:
        return None
    folder = Path(tempfile.mkdtemp(prefix="records-bench-pg-"))
    server = PostgresServer(bin_dir=bin_dir, folder=folder)
    try:
        server.start()
        return bench_writes(server.new_database(), writes=args.writes, rate=args.rate)
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def voice_to_voice(turns: int) -> dict:
    """Median voice-to-voice latency with recording off and on (fresh bot and room each)."""
    from bench.latency_bench import MemoryWatch, measure
    from bench.servers import bench_servers
    from tests.support.bot_process import BotProcess

    v2v: dict[str, list[int]] = {"off": [], "on": []}
    with bench_servers("records-bench") as servers:
        for mode in ("off", "on", "off", "on"):
            room = f"records-bench-{mode}-{uuid.uuid4().hex[:6]}"
            env = servers.bot_env(
                BOT_GREETING="",
                RECORDS_ENABLED="1" if mode == "on" else "0",
                DATABASE_URL=f"sqlite:///{servers.logs / 'records.sqlite3'}",
            )
            with BotProcess(room=room, log_path=servers.logs / f"bot-{mode}.log", env=env) as bot:
                result = await measure(
                    servers.url,
                    servers.token(room),
                    turns=max(1, turns // 2),
                    barge_ins=0,
                    memory=MemoryWatch({"bot": bot.pid}),
                )
            v2v[mode] += [r["voice_to_voice_ms"] for r in result["turns"] if r["voice_to_voice_ms"]]
    return {mode: {"voice_to_voice_ms": ms, **percentiles(ms)} for mode, ms in v2v.items()}


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 2 if report.get("voice_to_voice") else 1
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 3.6), squeeze=False)
    ax = axes[0][0]
    names = list(report["writes"])
    for i, name in enumerate(names):
        w = report["writes"][name]["write_ms"]
        ax.bar(
            [i - 0.2, i + 0.2],
            [w["p50"], w["p99"]],
            width=0.4,
            color=["#4c9be8", "#e8864c"],
            label=["p50", "p99"] if i == 0 else None,
        )
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("write latency (ms)")
    ax.set_title("recorder: submit → committed")
    ax.legend()
    if panels == 2:
        ax = axes[0][1]
        v2v = report["voice_to_voice"]
        ax.boxplot([v2v["off"]["voice_to_voice_ms"], v2v["on"]["voice_to_voice_ms"]])
        ax.set_xticks([1, 2], ["recording off", "recording on"])
        ax.set_ylabel("voice to voice (ms)")
        ax.set_title("the call, per turn")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--rate", type=float, default=100.0, help="utterances per second")
    parser.add_argument("--turns", type=int, default=4, help="voice turns per mode (0: skip)")
    args = parser.parse_args()
    if args.writes < 1 or args.rate <= 0 or args.turns < 0:
        parser.error("--writes >= 1, --rate > 0, --turns >= 0")
    load_before = os.getloadavg()
    folder = Path(tempfile.mkdtemp(prefix="records-bench-sqlite-"))
    writes = {
        "sqlite": bench_writes(
            f"sqlite:///{folder / 'records.sqlite3'}", writes=args.writes, rate=args.rate
        )
    }
    shutil.rmtree(folder, ignore_errors=True)
    pg = postgres_writes(args)
    if pg:
        writes["postgresql"] = pg
    report = {"writes": writes, "load_avg_before": load_before}
    if args.turns:
        report["voice_to_voice"] = asyncio.run(voice_to_voice(args.turns))
    report["load_avg_after"] = os.getloadavg()
    report["machine"] = {"cpus": len(os.sched_getaffinity(0))}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "records.json").write_text(json.dumps(report, indent=2) + "\n")
    chart(report, RESULTS / "records.png")
    print(json.dumps(report, indent=2))
    print(
        f"\n{'backend':<12}{'submit p99 ms':>15}{'write p50 ms':>14}{'write p99 ms':>14}{'lost':>6}"
    )
    for name, w in writes.items():
        print(
            f"{name:<12}{w['submit_ms']['p99']:>15}{w['write_ms']['p50']:>14}"
            f"{w['write_ms']['p99']:>14}{w['lost']:>6}"
        )
    for mode, v in report.get("voice_to_voice", {}).items():
        turns = len(v["voice_to_voice_ms"])
        print(f"voice to voice, recording {mode}: p50 {v['p50']} ms over {turns} turns")
    print(f"load average {load_before} → {report['load_avg_after']}")


if __name__ == "__main__":
    main()
