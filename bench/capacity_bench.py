"""Capacity: how many rooms one worker host carries, and what a room costs.

Starts livekit-server, Ollama and one `python -m bot worker` on loopback. For each room count N
(default 1, 2, 3) it opens N rooms at once with tokens that carry the avatar dispatch (as the
token server issues them); in each room a participant that subscribes to audio and data only
(so the CPU measured is the server side's) waits for the greeting, stays quiet (idle window),
then asks spoken questions (tests/support/speech.py) in turn with the other rooms. Per room:
  join → greeting   token issued → first bot speech received
  voice-to-voice    end of the question → first bot speech received (p50 / p95)
  CPU idle/talking  the room's job process (user+system time) over the idle window / the talk
  video fps         the bot's video track as received by one extra participant in room 1 only
                    (decoding video here costs CPU, so only one room is watched), while the bot
                    speaks (speech is sent at the face's rate, a still face at its idle rate)
Records the load average (the machine is shared: the figures are under that load).
Prints JSON and a table, writes bench/results/capacity.json and capacity.png.

    uv run python bench/capacity_bench.py [--rooms 1 2 3] [--questions 3] [--idle-s 20]
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
from contextlib import AsyncExitStack
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livekit import rtc  # noqa: E402
from loguru import logger  # noqa: E402

from avatar_core.identity import DEFAULT_AGENT_PREFIXES  # noqa: E402
from bench.latency_bench import QUESTIONS, percentile, wait_quiet  # noqa: E402
from bench.servers import bench_servers  # noqa: E402
from bot.settings import DEFAULT_AGENT_NAME, DEFAULT_IDENTITY  # noqa: E402
from stack.settings import DEV_API_KEY, DEV_API_SECRET  # noqa: E402
from tests.support.human import HumanParticipant  # noqa: E402
from tests.support.probe import frames_per_second, speech_times  # noqa: E402
from tests.support.voices import as_said  # noqa: E402
from tests.support.worker import WorkerProcess  # noqa: E402
from token_server.tokens import TokenMinter  # noqa: E402

RESULTS = ROOT / "bench" / "results"
GREETING_TIMEOUT_S = 120.0
PREWARMED_LOG = "prewarmed"
WATCHER_IDENTITY = f"{DEFAULT_AGENT_PREFIXES[0]}video-clock"
# The aims (issue "Scale"): per 2 cores.
AIM_P95_S, AIM_FPS, AIM_IDLE_CORE = 2.5, 24.0, 0.10


class VideoClock:
    """A participant that only notes when each of the bot's video frames arrives."""

    def __init__(self) -> None:
        self.room = rtc.Room()
        self.arrivals: list[float] = []
        self._tasks: list[asyncio.Task] = []
        self.room.on("track_subscribed", self._on_track)

    def _on_track(self, track: rtc.Track, _publication, participant: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_VIDEO and participant.identity == DEFAULT_IDENTITY:
            self._tasks.append(asyncio.create_task(self._count(track)))

    async def _count(self, track: rtc.Track) -> None:
        async for _event in rtc.VideoStream(track):
            self.arrivals.append(time.monotonic())

    async def __aenter__(self) -> VideoClock:
        return self

    async def __aexit__(self, *exc) -> None:
        for task in self._tasks:
            task.cancel()
        await self.room.disconnect()


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


class Room:
    """One room: its name, its participant, its job process, its measurements."""

    def __init__(self, name: str):
        self.name = name
        self.human: HumanParticipant | None = None
        self.job_pid: int | None = None
        self.greeting_s: float | None = None
        self.v2v: list[float] = []
        self.unanswered = 0
        self.cpu: dict[str, float] = {}
        self.replies: list[tuple[float, float]] = []  # (first, last) bot speech received


async def open_room(room: Room, *, url: str, minter: TokenMinter, worker: WorkerProcess,
                    stack) -> None:
    issued = time.monotonic()
    token = minter.user_token(room=room.name, identity=f"person-{room.name}", name="Person")
    room.human = await stack.enter_async_context(HumanParticipant.connect(url, token, video=False))
    try:
        first = await room.human.wait_for(lambda: speech_times(room.human.audio, DEFAULT_IDENTITY),
                                          GREETING_TIMEOUT_S, what=f"the greeting in {room.name}")
    except TimeoutError:
        logger.warning(f"no greeting heard in {room.name} within {GREETING_TIMEOUT_S:.0f} s")
    else:
        room.greeting_s = first[0] - issued
        await wait_quiet(room.human, first[0])
    room.job_pid = await room.human.wait_for(lambda: worker.jobs().get(room.name),
                                             GREETING_TIMEOUT_S, what=f"the job of {room.name}")


async def ask(room: Room, question: str) -> None:
    samples, rate = await asyncio.to_thread(as_said, question)
    await room.human.publish_audio(samples, rate)
    ended = room.human.speech_ended_at
    reply_end = await wait_quiet(room.human, ended)
    replies = speech_times(room.human.audio, DEFAULT_IDENTITY, ended)
    if reply_end is None or not replies:
        room.unanswered += 1
    else:
        room.v2v.append(replies[0] - ended)
        room.replies.append((replies[0], reply_end))


async def run_round(n: int, *, url: str, minter: TokenMinter, worker: WorkerProcess,
                    questions: int, idle_s: float) -> dict:
    rooms = [Room(f"cap{n}-{i}-{uuid.uuid4().hex[:4]}") for i in range(n)]
    async with AsyncExitStack() as stack:
        await asyncio.gather(*(open_room(r, url=url, minter=minter, worker=worker, stack=stack)
                               for r in rooms))
        watcher = await stack.enter_async_context(VideoClock())
        # An agent-prefixed identity: the bot does not count it as a person (the room stays a
        # one-to-one conversation, not a meeting where the bot answers only when named).
        await watcher.room.connect(
            url, minter.user_token(room=rooms[0].name, identity=WATCHER_IDENTITY, name="Watcher")
        )
        load_before = os.getloadavg()
        start = {r.name: cpu_seconds(r.job_pid) for r in rooms}
        t0 = time.monotonic()
        await asyncio.sleep(idle_s)
        idle_wall = time.monotonic() - t0
        for r in rooms:
            r.cpu["idle_core"] = (cpu_seconds(r.job_pid) - start[r.name]) / idle_wall
        start = {r.name: cpu_seconds(r.job_pid) for r in rooms}
        t1 = time.monotonic()
        for q in range(questions):
            # The rooms ask at once: the worst case for the shared CPU and Ollama.
            await asyncio.gather(
                *(ask(r, QUESTIONS[(q + i) % len(QUESTIONS)]) for i, r in enumerate(rooms))
            )
        talk_wall = time.monotonic() - t1
        for r in rooms:
            r.cpu["talking_core"] = (
                (cpu_seconds(r.job_pid) - start[r.name]) / talk_wall if questions else None
            )
        # While the bot speaks (between turns the face is sent at its idle rate only).
        fps = [f for first, last in rooms[0].replies
               for f in frames_per_second(watcher.arrivals, first, last, window=1.0)]
        idle_fps = frames_per_second(watcher.arrivals, t0, t1)
    return {
        "rooms": n,
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "video_fps_room1": {
            "mean": statistics.fmean(fps) if fps else None,
            "min_2s_window": min(fps) if fps else None,
            "idle_mean": statistics.fmean(idle_fps) if idle_fps else None,
        },
        "per_room": [
            {
                "room": r.name,
                "join_to_greeting_s": r.greeting_s,
                "v2v_p50_s": percentile(r.v2v, 50),
                "v2v_p95_s": percentile(r.v2v, 95),
                "v2v_s": r.v2v,
                "unanswered": r.unanswered,
                "cpu_idle_core": r.cpu["idle_core"],
                "cpu_talking_core": r.cpu["talking_core"],
            }
            for r in rooms
        ],
    }


def mean_of(values) -> float:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else float("nan")


def chart(rounds: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [r["rooms"] for r in rounds]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("v2v_p50_s", "voice-to-voice p50"), ("v2v_p95_s", "p95")):
        a.plot(ns, [max((p[key] or 0) for p in r["per_room"]) for r in rounds], "o-", label=label)
    a.plot(
        ns,
        [max((p["join_to_greeting_s"] or 0) for p in r["per_room"]) for r in rounds],
        "s--",
        label="join → greeting (max)",
    )
    a.axhline(AIM_P95_S, color="grey", lw=0.8, ls=":")
    a.set_xlabel("rooms at once")
    a.set_ylabel("seconds (worst room)")
    a.legend()
    for key, label in (("cpu_idle_core", "idle"), ("cpu_talking_core", "talking")):
        b.plot(
            ns,
            [mean_of(p[key] for p in r["per_room"]) for r in rounds],
            "o-",
            label=f"CPU per room, {label}",
        )
    b.axhline(AIM_IDLE_CORE, color="grey", lw=0.8, ls=":")
    b.set_xlabel("rooms at once")
    b.set_ylabel("cores")
    b.legend()
    load = max(r["load_average"]["after"][0] for r in rounds)
    fig.suptitle(f"capacity of one worker host (2 shared cores, load average up to {load:.0f})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def print_table(rounds: list[dict]) -> None:
    print(
        f"{'rooms':>5} {'greet s':>8} {'v2v p50':>8} {'v2v p95':>8} {'unans':>5} "
        f"{'idle core':>9} {'talk core':>9} {'fps r1':>7} {'load':>5}"
    )
    for r in rounds:
        per = r["per_room"]
        p50 = [p["v2v_p50_s"] for p in per if p["v2v_p50_s"] is not None]
        p95 = [p["v2v_p95_s"] for p in per if p["v2v_p95_s"] is not None]
        fps = r["video_fps_room1"]["mean"]
        greet = [p["join_to_greeting_s"] for p in per if p["join_to_greeting_s"] is not None]
        print(
            f"{r['rooms']:>5} {(max(greet) if greet else float('nan')):>8.2f} "
            f"{(max(p50) if p50 else float('nan')):>8.2f} "
            f"{(max(p95) if p95 else float('nan')):>8.2f} "
            f"{sum(p['unanswered'] for p in per):>5} "
            f"{statistics.fmean(p['cpu_idle_core'] for p in per):>9.2f} "
            f"{mean_of(p['cpu_talking_core'] for p in per):>9.2f} "
            f"{(fps or float('nan')):>7.1f} {r['load_average']['after'][0]:>5.1f}"
        )


async def main_async(args) -> dict:
    with bench_servers("capacity-bench") as servers:
        env = servers.bot_env(
            # One spare: a room of the previous round may still be closing when the next starts
            # (at exactly its maximum a worker takes no room).
            BOT_WORKER_MAX_ROOMS=str(max(args.rooms) + 1),
            BOT_WORKER_IDLE_PROCESSES=str(max(args.rooms)),
            BOT_EMPTY_ROOM_GRACE_SECS="1",
        )
        worker = WorkerProcess(log_path=servers.logs / "worker.log", env=env)
        try:
            worker.start()
            await asyncio.to_thread(worker.wait_registered)
            # Every job process prewarmed before the first round (as on a host that has been up).
            while worker.log().count(PREWARMED_LOG) < max(args.rooms):  # noqa: ASYNC110 (polls foreign state)
                await asyncio.sleep(1)
            minter = TokenMinter(
                api_key=DEV_API_KEY,
                api_secret=DEV_API_SECRET,
                ttl_s=600,
                agent_name=DEFAULT_AGENT_NAME,
            )
            rounds = []
            for n in args.rooms:
                rounds.append(
                    await run_round(
                        n,
                        url=servers.url,
                        minter=minter,
                        worker=worker,
                        questions=args.questions,
                        idle_s=args.idle_s,
                    )
                )
                save(args.name, {"rounds": rounds, "partial": True})
                # the bots leave their emptied rooms; fresh processes warm up
                await asyncio.sleep(5)
            return {
                "rounds": rounds,
                "machine": {"cpus": len(os.sched_getaffinity(0))},
                "face_idle_fps": os.environ.get("FACE_IDLE_FPS", "default"),
                "logs": str(servers.logs),
            }
        finally:
            worker.stop()


def save(name: str, report: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rooms", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--name", default="capacity", help="result file name (JSON + PNG)")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    save(args.name, report)
    chart(report["rounds"], RESULTS / f"{args.name}.png")
    print(json.dumps(report["rounds"], indent=2))
    print_table(report["rounds"])


if __name__ == "__main__":
    main()
