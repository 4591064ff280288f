"""A/V offset of the face video at a receiving participant, in 1 and in N rooms at once.

Starts a real livekit-server on loopback; per room, a probe bot in its own process (the face
processor with the A/V probe marker publishing through the bot's LiveKit output and its
AVSynchronizer, tests/support/av_probe.py) speaks 42 one-frame clicks while a viewer (real
LiveKit SDK, this process) records what it receives. Each click heard is paired with the flash
of its picture; offset = flash arrival - click arrival (positive: the picture lags the sound).
Also the CPU of the bots, of the viewers and the machine's idle share while the clicks play.
The contract (issue 12, av_probe.RoomOffsets.contract_miss, asserted by
tests/integration/test_av_sync.py): >= 40 clicks heard, >= 95 % paired, median within +-40 ms,
p95 |offset| within 80 ms.
Prints a table and JSON; writes bench/results/av_sync[-LABEL].json and .png.

    uv run python bench/av_sync_bench.py [--rooms 1 3] [--runs 2] [--label NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from avatar_core.tokens import AGENT_KIND, STANDARD_KIND, join_token  # noqa: E402
from bench.servers import BENCH_TOKEN_TTL, bench_livekit  # noqa: E402
from stack.settings import DEV_API_KEY, DEV_API_SECRET  # noqa: E402
from tests.support.av_probe import (  # noqa: E402
    CONTRACT_MEDIAN_WITHIN_MS,
    CONTRACT_MIN_PAIRED,
    CONTRACT_MIN_PROBES,
    CONTRACT_P95_WITHIN_MS,
    measure_av_offsets,
)

RESULTS = ROOT / "bench" / "results"


def token(room: str, identity: str, agent: bool) -> str:
    return join_token(api_key=DEV_API_KEY, api_secret=DEV_API_SECRET, room=room,
                      identity=identity, name=identity, ttl=BENCH_TOKEN_TTL,
                      kind=AGENT_KIND if agent else STANDARD_KIND)


async def main_async(args) -> dict:
    runs = []
    with bench_livekit("av-sync-bench") as (url, logs):
        for rooms in args.rooms:
            for run in range(args.runs):
                load = os.getloadavg()[0]
                run_logs = logs / f"{rooms}-{run}"
                run_logs.mkdir(parents=True, exist_ok=True)
                measured = await measure_av_offsets(url, token, rooms=rooms, logs_dir=run_logs)
                rows = [{"room": r.room, "clicks_sent": r.clicks_sent,
                         "clicks_heard": r.clicks_heard, "paired": r.paired,
                         "median_ms": round(r.median_ms, 1), "p95_abs_ms": round(r.p95_abs_ms, 1),
                         "video_frames": r.video_frames, "offsets_ms": r.offsets_ms,
                         "meets_contract": r.contract_miss() is None}
                        for r in measured.rooms]
                runs.append({"rooms": rooms, "run": run + 1, "load_average_before": load,
                             "cpu_cores": {"probe_bots": measured.cpu_bots,
                                           "viewers": measured.cpu_viewers,
                                           "idle": measured.cpu_idle},
                             "per_room": rows})
                print_run(runs[-1])
    return {"label": args.label, "machine": {"cpus": len(os.sched_getaffinity(0))},
            "contract": {"min_probes": CONTRACT_MIN_PROBES, "min_paired": CONTRACT_MIN_PAIRED,
                         "median_within_ms": CONTRACT_MEDIAN_WITHIN_MS,
                         "p95_within_ms": CONTRACT_P95_WITHIN_MS},
            "runs": runs}


def print_run(run: dict) -> None:
    cpu = run["cpu_cores"]
    print(f"{run['rooms']} room(s), run {run['run']}: CPU bots {cpu['probe_bots']}, viewers "
          f"{cpu['viewers']}, idle {cpu['idle']} (cores)")
    for r in run["per_room"]:
        print(f"  {r['room']:<22} paired {r['paired']:>2}/{r['clicks_heard']:<2} median "
              f"{r['median_ms']:+6.1f} ms  p95 {r['p95_abs_ms']:5.1f} ms  "
              f"{'meets' if r['meets_contract'] else 'MISSES'}")


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = sorted({run["rooms"] for run in report["runs"]})
    fig, axes = plt.subplots(1, len(counts), figsize=(5 * len(counts), 3.6), squeeze=False)
    for ax, n in zip(axes[0], counts, strict=True):
        for run in (r for r in report["runs"] if r["rooms"] == n):
            for room in run["per_room"]:
                ax.hist(room["offsets_ms"], bins=range(-200, 201, 10), alpha=0.5,
                        label=f"run {run['run']} room {room['room'].split('-')[-2]}: median "
                              f"{room['median_ms']:+.0f}")
        for x in (-CONTRACT_MEDIAN_WITHIN_MS, CONTRACT_MEDIAN_WITHIN_MS):
            ax.axvline(x, color="tab:orange", ls=":")
        ax.set_title(f"{n} room(s) at once")
        ax.set_xlabel("picture − sound at the receiver (ms)")
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("clicks")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--label", default="", help="suffix of the result files")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    name = f"av_sync-{args.label}" if args.label else "av_sync"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2))
    chart(report, RESULTS / f"{name}.png")
    print(f"wrote {RESULTS / name}.json and .png")


if __name__ == "__main__":
    main()
