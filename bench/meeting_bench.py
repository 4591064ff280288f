"""A meeting with the bot: three people, distinct voices, a scripted conversation.

Starts livekit-server, Ollama and one bot (`python -m bot`, default settings) on loopback. First
one person asks a few questions alone (the 1:1 baseline), then two more join and a scripted
meeting of 36 utterances runs: about half address the bot (its name at the start, in the
middle, at the end, alone, or a follow-up without the name from the person just answered),
the rest is people talking to each other, some of it overlapping and some of it while the bot
speaks. Voices: Alice the embedded voice, Bob espeak-ng (en-us+m3), Carol Piper joe
(tests/support/voices.py; espeak and Piper are test-only).

Per utterance, judged at the participants:
  answered      addressed → the bot's voice follows within ANSWER_WINDOW_S
  false answer  not addressed → the bot opened a user turn for it (RTVI user-started-speaking)
  attribution   the RTVI user-transcription that best matches the words carries the speaker's id
  latency       end of the addressed utterance's voice → first bot speech received (lines are
                sent as their voiced span, voices.as_said)
  cut off       chatter while the bot speaks → RTVI bot-interrupted
Prints JSON and a table, writes bench/results/meeting.json and meeting.png.

    uv run python bench/meeting_bench.py [--solo 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from loguru import logger

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.servers import BenchServers, bench_servers  # noqa: E402
from bot.settings import DEFAULT_IDENTITY  # noqa: E402
from tests.support.bot_process import BotProcess  # noqa: E402
from tests.support.human import HumanParticipant  # noqa: E402
from tests.support.probe import rtvi_messages, speech_times, words_of  # noqa: E402
from tests.support.voices import as_said  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PEOPLE = {"alice": ("Alice", "embedded"), "bob": ("Bob", "espeak-m"), "carol": ("Carol", "piper")}
SOLO_QUESTIONS = ("What is the capital of France?", "How many legs does a spider have?",
                  "What do bees make?", "Which animal says moo?", "What is two plus two?",
                  "What is the largest ocean?", "Where does the sun rise?")
# (speaker, text, kind). Kinds: start/middle/end/alone/follow address the bot; chatter does
# not; "overlap" is chatter spoken at the same time as the next line; "during" is chatter
# spoken while the bot answers the line before.
SCRIPT = (
    ("alice", "Good morning everyone, shall we start?", "chatter"),
    ("bob", "Morning Alice, yes, let us begin with the budget.", "chatter"),
    ("alice", "Ava, what is the capital of France?", "start"),
    ("alice", "And what is the capital of Germany?", "follow"),
    ("carol", "Bob, did you finish the slides for today?", "chatter"),
    ("bob", "Almost, I need one more hour for them.", "chatter"),
    ("carol", "Tell me, Ava, how many days are in a week?", "middle"),
    ("bob", "What is the largest ocean, Ava?", "end"),
    ("alice", "I will send the notes after lunch.", "overlap"),
    ("carol", "The projector in room four is broken again.", "chatter"),
    ("bob", "Ava.", "alone"),
    ("bob", "Which animal says moo?", "follow"),
    ("alice", "Carol, can you book the room for Friday?", "chatter"),
    ("carol", "Sure, I will book it this afternoon.", "chatter"),
    ("carol", "Hey Ava, tell me a long story about a brave knight.", "start"),
    ("alice", "Bob, are you coming to lunch later?", "during"),
    ("bob", "Yes, I will meet you at noon.", "chatter"),
    ("alice", "Can you tell me, Ava, what do bees make?", "middle"),
    ("alice", "And what color is honey?", "follow"),
    ("bob", "The train was late again this morning.", "overlap"),
    ("carol", "My coffee is still too hot to drink.", "chatter"),
    ("carol", "How many legs does a spider have, Ava?", "end"),
    ("bob", "Ava, what is two plus two?", "start"),
    ("bob", "And what is three plus three?", "follow"),
    ("carol", "Alice, the client called about the contract.", "chatter"),
    ("alice", "Thanks, I will call them back tomorrow.", "chatter"),
    ("alice", "Ava?", "alone"),
    ("alice", "What is the opposite of hot?", "follow"),
    ("bob", "Hey Ava, tell me a long story about a dragon.", "start"),
    ("carol", "Alice, where did you put the printer paper?", "during"),
    ("alice", "It is in the cupboard next to the door.", "chatter"),
    ("carol", "Please, Ava, where does the sun rise?", "middle"),
    ("bob", "Carol, thank you for the summary.", "chatter"),
    ("alice", "What do you drink in the morning, Ava?", "end"),
    ("carol", "I think we are done for today.", "chatter"),
    ("bob", "See you all tomorrow.", "chatter"),
)
ADDRESSED_KINDS = ("start", "middle", "end", "alone", "follow")
ANSWER_WINDOW_S = 90.0
# Time after an utterance in which a turn opened for it would show (STT + addressing).
TURN_WINDOW_S = 6.0
QUIET_AFTER_REPLY_S = 2.0
# Pause between lines, as people leave between turns.
GAP_S = 0.8


@dataclass
class Line:
    speaker: str
    text: str
    kind: str
    started: float = 0.0
    ended: float = 0.0

    @property
    def addressed(self) -> bool:
        return self.kind in ADDRESSED_KINDS


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


class Room:
    """The participants of one meeting; `observer` (Alice) records what everybody hears."""

    def __init__(self, people: dict[str, HumanParticipant]):
        self.people = people
        self.observer = people["alice"]

    def bot_speech(self, since: float) -> list[float]:
        return speech_times(self.observer.audio, DEFAULT_IDENTITY, since)

    def messages(self, kind: str, since: float, until: float = float("inf")) -> list[tuple]:
        return [(at, m) for at, m in rtvi_messages(self.observer.messages, kind, since)
                if at <= until]

    async def say(self, line: Line, *, wait: bool = True) -> None:
        samples, rate = await asyncio.to_thread(as_said, line.text, PEOPLE[line.speaker][1])
        human = self.people[line.speaker]
        line.started = time.monotonic()
        await human.publish_audio(samples, rate, wait=wait)
        if wait:
            line.ended = human.speech_ended_at
        else:
            line.ended = line.started + len(samples) / rate

    async def quiet(self, since: float, timeout: float = 120.0) -> float | None:  # noqa: ASYNC109 (poll deadline)
        """Wait until the bot spoke after `since` and then fell quiet; its last speech time."""
        def ended():
            times = self.bot_speech(since)
            return times and time.monotonic() - times[-1] > QUIET_AFTER_REPLY_S and times[-1]
        try:
            return await self.observer.wait_for(ended, timeout, what="the bot falling quiet")
        except TimeoutError:
            return None


async def run_line(room: Room, lines: list[Line], i: int) -> None:
    """Speak line i (and its overlapping partner); wait as a person would before the next."""
    line = lines[i]
    if i > 0 and lines[i - 1].kind == "overlap":
        return  # spoken together with the line before
    if line.kind == "overlap":
        partner = lines[i + 1]
        await asyncio.gather(room.say(line, wait=False), room.say(partner, wait=False))
        await asyncio.sleep(max(line.ended, partner.ended) - time.monotonic() + TURN_WINDOW_S)
        return
    if line.kind == "during":
        return  # spoken by the addressed line before it, while the bot answers
    await room.say(line)
    if line.addressed:
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if nxt is not None and nxt.kind == "during":
            try:
                await room.observer.wait_for(lambda: room.bot_speech(line.ended), ANSWER_WINDOW_S)
                await asyncio.sleep(1.5)
            except TimeoutError:
                pass
            await room.say(nxt)
        await room.quiet(line.ended, ANSWER_WINDOW_S + 60)
    else:
        await asyncio.sleep(TURN_WINDOW_S)
        if room.bot_speech(line.ended):  # a false answer: let it finish
            await room.quiet(line.ended)
    await asyncio.sleep(GAP_S)


def judge(room: Room, lines: list[Line]) -> list[dict]:
    transcripts = [(at, m["data"].get("user_id"), words_of(m["data"]["text"]))
                   for at, m in room.messages("user-transcription", 0.0)
                   if m["data"].get("final")]
    rows = []
    for line in lines:
        expected = set(words_of(line.text)) - {"ava"}
        best, best_overlap = None, 0.0
        for at, who, words in transcripts:
            if line.started <= at <= line.ended + 15.0 and expected:
                overlap = len(expected & set(words)) / len(expected)
                if overlap > best_overlap:
                    best, best_overlap = (who, " ".join(words)), overlap
        speech = [t for t in room.bot_speech(line.ended) if t <= line.ended + ANSWER_WINDOW_S]
        turns = room.messages("user-started-speaking", line.started, line.ended + TURN_WINDOW_S)
        row = {
            "speaker": line.speaker, "kind": line.kind, "text": line.text,
            "heard": best[1] if best else None,
            "attributed": None if best is None or best_overlap < 0.5 else best[0] == line.speaker,
            "answered": bool(speech) if line.addressed else bool(turns),
            "voice_to_voice_ms": (round((speech[0] - line.ended) * 1000)
                                  if line.addressed and speech else None),
        }
        if line.kind == "during":
            row["cut_off"] = bool(room.messages("bot-interrupted", line.started,
                                                line.ended + TURN_WINDOW_S))
        rows.append(row)
    return rows


async def solo_turns(human: HumanParticipant, count: int) -> list[int]:
    """The 1:1 baseline: voice-to-voice (ms) of `count` questions from one person."""
    room = Room({"alice": human})
    out = []
    for question in SOLO_QUESTIONS[:count]:
        line = Line("alice", question, "start")
        await room.say(line)
        await room.quiet(line.ended)
        speech = room.bot_speech(line.ended)
        if speech:
            out.append(round((speech[0] - line.ended) * 1000))
        logger.info(f"solo: {question!r} → {out[-1] if speech else None} ms")
        await asyncio.sleep(GAP_S)
    return out


def summarize(rows: list[dict], solo: list[int]) -> dict:
    addressed = [r for r in rows if r["kind"] in ADDRESSED_KINDS]
    chatter = [r for r in rows if r["kind"] not in ADDRESSED_KINDS]
    attributed = [r["attributed"] for r in rows if r["attributed"] is not None]
    during = [r for r in rows if r["kind"] == "during"]
    v2v = [r["voice_to_voice_ms"] for r in addressed if r["voice_to_voice_ms"] is not None]
    return {
        "utterances": len(rows), "addressed": len(addressed), "not_addressed": len(chatter),
        "answered_when_addressed": sum(r["answered"] for r in addressed) / len(addressed),
        "answered_when_not_addressed": sum(r["answered"] for r in chatter) / len(chatter),
        "attribution": sum(attributed) / len(attributed) if attributed else None,
        "transcribed": len(attributed) / len(rows),
        "group_voice_to_voice_ms": {"p50": percentile(v2v, 50), "p95": percentile(v2v, 95)},
        "solo_voice_to_voice_ms": {"p50": percentile(solo, 50), "p95": percentile(solo, 95)},
        "chatter_cut_the_bot_off": (sum(r["cut_off"] for r in during) / len(during)
                                    if during else None),
        "by_kind": {kind: {"n": sum(r["kind"] == kind for r in rows),
                           "answered": sum(r["answered"] for r in rows if r["kind"] == kind)}
                    for kind in dict.fromkeys(r["kind"] for r in rows)},
    }


def chart(rows: list[dict], solo: list[int], summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    kinds = list(summary["by_kind"])
    n = [summary["by_kind"][k]["n"] for k in kinds]
    ans = [summary["by_kind"][k]["answered"] for k in kinds]
    x = np.arange(len(kinds))
    a.bar(x - 0.2, n, 0.4, label="utterances")
    a.bar(x + 0.2, ans, 0.4, label="answered (a turn opened, for chatter)")
    a.set_xticks(x, kinds)
    a.set_title("Meeting: answered by kind of utterance")
    a.legend(fontsize=8)
    v2v = [r["voice_to_voice_ms"] for r in rows if r["voice_to_voice_ms"] is not None]
    b.boxplot([solo or [np.nan], v2v or [np.nan]], tick_labels=["1:1", "meeting"])
    b.set_ylabel("voice-to-voice (ms)")
    b.set_title("Latency: one person vs a meeting of three")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def print_table(summary: dict) -> None:
    def pct(v):
        return "-" if v is None else f"{100 * v:.0f} %"

    print(f"\n{'figure':<40}{'value':>12}")
    for name, value in (
        ("answered when addressed", pct(summary["answered_when_addressed"])),
        ("answered when not addressed", pct(summary["answered_when_not_addressed"])),
        ("attribution", pct(summary["attribution"])),
        ("utterances transcribed", pct(summary["transcribed"])),
        ("chatter cut the bot off", pct(summary["chatter_cut_the_bot_off"])),
        ("group voice-to-voice p50 / p95 (ms)", "{p50:.0f} / {p95:.0f}".format(
            **summary["group_voice_to_voice_ms"]) if summary["group_voice_to_voice_ms"]["p50"]
            else "-"),
        ("1:1 voice-to-voice p50 / p95 (ms)", "{p50:.0f} / {p95:.0f}".format(
            **summary["solo_voice_to_voice_ms"]) if summary["solo_voice_to_voice_ms"]["p50"]
            else "-"),
    ):
        print(f"{name:<40}{value:>12}")


async def measure(servers: BenchServers, room_name: str,
                  solo: int) -> tuple[list[dict], list[int]]:
    url = servers.url

    def token(identity: str) -> str:
        return servers.token(room_name, identity, name=PEOPLE[identity][0])

    async with AsyncExitStack() as stack:
        # Audio and data only: nothing here judges the video, and keeping every received frame
        # of three participants for the whole meeting would take tens of GB.
        alice = await stack.enter_async_context(
            HumanParticipant.connect(url, token("alice"), video=False))
        await alice.wait_for(lambda: any(w == DEFAULT_IDENTITY for _, w, _, _ in alice.audio),
                             180, what="bot audio")
        await asyncio.sleep(2.0)
        solo_ms = await solo_turns(alice, solo)
        people = {"alice": alice}
        for identity in ("bob", "carol"):
            people[identity] = await stack.enter_async_context(
                HumanParticipant.connect(url, token(identity), video=False))
        await asyncio.sleep(3.0)
        room = Room(people)
        lines = [Line(*entry) for entry in SCRIPT]
        for i in range(len(lines)):
            await run_line(room, lines, i)
            logger.info(f"line {i + 1}/{len(lines)} done: {lines[i].speaker}: {lines[i].text}")
        await asyncio.sleep(3.0)
        return judge(room, lines), solo_ms


async def main_async(args) -> dict:
    room = f"meeting-{uuid.uuid4().hex[:6]}"
    load_before = os.getloadavg()
    with bench_servers("meeting-bench") as servers:
        env = servers.bot_env(BOT_GREETING="")
        with BotProcess(room=room, log_path=servers.logs / "bot.log", env=env):
            rows, solo = await measure(servers, room, args.solo)
        summary = summarize(rows, solo)
        return {"summary": summary, "utterances": rows, "solo_voice_to_voice_ms": solo,
                "machine": {"cpus": len(os.sched_getaffinity(0)),
                            "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
                "logs": str(servers.logs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--solo", type=int, default=5, help="1:1 questions before the meeting")
    args = parser.parse_args()
    report = asyncio.run(main_async(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "meeting.json").write_text(json.dumps(report, indent=1))
    chart(report["utterances"], report["solo_voice_to_voice_ms"], report["summary"],
          RESULTS / "meeting.png")
    print(json.dumps(report["summary"], indent=1))
    print_table(report["summary"])
    print(f"load average before {report['machine']['loadavg_before']}, "
          f"after {report['machine']['loadavg_after']}")


if __name__ == "__main__":
    main()
