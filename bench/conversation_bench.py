"""A conversation worth having: does the bot hear, answer correctly, in English, fast, and stop
when interrupted? And what does the avatar cost over a stock Pipecat voice bot?

Starts livekit-server and Ollama on loopback, then, in turn, the avatar bot (`python -m bot`)
and the baseline (bench/baseline_bot.py: the same STT, LLM and voice without the avatar's
processors), each in its own room. A real LiveKit participant (tests/support/human.py) asks the
questions of bench/questions.py in rotating voices (the embedded voice, Piper joe, espeak-ng,
and the embedded voice with noise) and judges what it receives:
  heard         the bot's transcript (RTVI user-transcription): WER and key-word recall
  answer        the words the bot spoke (RTVI bot-tts-text): correct when it holds an expected
                word; wrong language / off-topic (no expected word and no word of the question)
  latency       voice-to-voice: end of the person's voice → first bot speech received, p50/p95
                (each question is sent as its voiced span, voices.as_said: the silence a
                synthesiser leaves after the words is not counted as talking), and
                the bot's own stage breakdown and turn wait (`bot-latency` server message)
  barge-in      (avatar) the person talks over a long answer: speech onset → last bot audio
                and last lip motion received
Prints a table and JSON; writes bench/results/conversation.json and conversation.png (another
name with --out, e.g. for another OLLAMA_MODEL). Records the model and the load average, since
the figures depend on what else the machine runs.

    uv run python bench/conversation_bench.py [--quick] [--no-baseline] [--out NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import numpy as np
from loguru import logger

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.latency_bench import (  # noqa: E402
    column,
    contribution,
    medians,
    p50_p95,
    percentile,
    stage,
    wait_quiet,
)
from bench.questions import QUESTIONS, Question  # noqa: E402
from bench.servers import bench_servers  # noqa: E402
from bench.stt_bench import word_errors, words  # noqa: E402
from bot.pipeline import LATENCY_MESSAGE_TYPE  # noqa: E402
from bot.reply_guard import LANGUAGE, off_track  # noqa: E402
from bot.settings import DEFAULT_IDENTITY  # noqa: E402
from tests.support.bot_process import BotProcess  # noqa: E402
from tests.support.human import HumanParticipant  # noqa: E402
from tests.support.probe import (  # noqa: E402
    lip_box,
    lip_motion,
    rtvi_messages,
    server_messages,
    speech_times,
    spoken_words,
    user_transcripts,
    video_frames,
)
from tests.support.voices import as_said, with_noise  # noqa: E402

RESULTS = ROOT / "bench" / "results"
VOICES = ("embedded", "piper", "espeak-m", "embedded+noise")
QUICK_QUESTIONS = 8
LONG_QUESTION = "Tell me a long story about a brave knight and a friendly dragon."
INTERRUPTION = "Wait, stop please. What is the capital of Japan?"
NOISE_SNR_DB = 10.0
REPLY_TIMEOUT_SECS = 60.0
LIP_MOTION_MARGIN = 1.5
# Aims of issue 10 (printed beside the figures).
AIMS = {"correct_share": 0.85, "wrong_language": 0, "key_word_recall_clean": 0.90,
        "v2v_p50_ms": 1200, "v2v_p95_ms": 2500, "barge_in_p50_ms": 300, "ratio_p50": 1.1}


def voice_audio(text: str, voice: str) -> tuple[np.ndarray, int]:
    """The question as the person says it: its voiced span (voices.voiced), with noise added for a
    "+noise" voice."""
    samples, rate = as_said(text, voice.removesuffix("+noise"))
    return (with_noise(samples, snr_db=NOISE_SNR_DB) if voice.endswith("+noise") else samples), rate


def judge(q: Question, heard: str, reply: str) -> dict:
    """Hearing and answer figures of one turn."""
    ref, hyp, said = words(q.text), words(heard), words(reply)
    text = " ".join(said)
    correct = any(a in text for a in q.answers) if q.answers else bool(said)
    on_topic = correct or any(k in said for k in q.key_words)
    return {"word_errors": word_errors(ref, hyp), "words": len(ref),
            "key_words_heard": sum(k in hyp for k in q.key_words), "key_words": len(q.key_words),
            "correct": correct, "wrong_language": bool(said) and off_track(reply) == LANGUAGE,
            "off_topic": bool(said) and not on_topic, "answered": bool(said)}


async def ask(human: HumanParticipant, q: Question, voice: str) -> dict:
    asked = time.monotonic()
    await human.publish_audio(*await asyncio.to_thread(voice_audio, q.text, voice))
    ended = human.speech_ended_at
    last = await wait_quiet(human, ended, timeout=REPLY_TIMEOUT_SECS)
    speech = speech_times(human.audio, DEFAULT_IDENTITY, ended)
    heard = " ".join(user_transcripts(human.messages, asked))
    reply = " ".join(spoken_words(human.messages, ended))
    breakdown = (server_messages(human.messages, LATENCY_MESSAGE_TYPE, ended) or [None])[0]
    return {
        "question": q.text, "voice": voice, "heard": heard, "reply": reply,
        **judge(q, heard, reply),
        "voice_to_voice_ms": round((speech[0] - ended) * 1000) if speech else None,
        "reply_s": round(last - speech[0], 2) if speech and last else None,
        "turn_wait_ms": breakdown.get("user_turn_ms") if breakdown else None,
        "stt_ms": contribution(breakdown, "transcription"),
        "llm_first_token_ms": stage(breakdown, "LLMService"),
        "llm_first_sentence_ms": contribution(breakdown, "llm_inference", "sentence_aggregation"),
        "tts_first_audio_ms": stage(breakdown, "TTSService"),
        "bot_measured_ms": breakdown.get("total_ms") if breakdown else None,
        "reply_guard": breakdown.get("reply_guard") if breakdown else None,
        "early_transcripts": breakdown.get("early_transcripts") if breakdown else None,
    }


async def barge_in(human: HumanParticipant, box, lip_threshold: float) -> dict | None:
    await human.publish_audio(*await asyncio.to_thread(voice_audio, LONG_QUESTION, "embedded"))
    asked = human.speech_ended_at
    try:
        await human.wait_for(lambda: speech_times(human.audio, DEFAULT_IDENTITY, asked), 90)
        started = speech_times(human.audio, DEFAULT_IDENTITY, asked)[0]
        await human.wait_for(lambda: speech_times(human.audio, DEFAULT_IDENTITY, started + 1.5), 30)
    except TimeoutError:
        logger.warning("barge-in: the bot did not talk long enough")
        return None
    # From the speech onset: the synthesiser's leading silence is not part of the barge-in time.
    await human.publish_audio(*await asyncio.to_thread(voice_audio, INTERRUPTION, "embedded"),
                              wait=False)
    await human.wait_for(lambda: human.speech_started_at and human.speech_started_at > started, 5)
    onset = human.speech_started_at
    await human.wait_for(lambda: human.speech_ended_at, 30)
    end = human.speech_ended_at
    talk = [at for at in speech_times(human.audio, DEFAULT_IDENTITY, onset) if at < end]
    frames = video_frames(human.video, DEFAULT_IDENTITY, onset - 0.1)
    moving = [at for at, m in lip_motion(frames, box) if m > lip_threshold and at < end]
    noticed = [at for at, m in rtvi_messages(human.messages, "user-started-speaking", onset)]
    await wait_quiet(human, end)
    return {"audio_stop_ms": round((talk[-1] - onset) * 1000) if talk else 0,
            "mouth_stop_ms": round((moving[-1] - onset) * 1000) if moving else 0,
            "user_started_message_ms": round((noticed[0] - onset) * 1000) if noticed else None}


async def converse(url: str, token: str, questions, *, barge_ins: int, video: bool) -> dict:
    async with HumanParticipant.connect(url, token) as human:
        if video:
            await human.wait_for(lambda: any(w == DEFAULT_IDENTITY for _, w, _ in human.video),
                                 180, what="bot video")
        else:
            await human.wait_for(lambda: DEFAULT_IDENTITY in human.room.remote_participants,
                                 180, what="the baseline bot")
        await asyncio.sleep(2.0)
        rows = []
        for i, q in enumerate(questions):
            rows.append(await ask(human, q, VOICES[i % len(VOICES)]))
            logger.info(f"turn {i + 1}/{len(questions)}: {rows[-1]}")
        trials = []
        if barge_ins:
            idle = video_frames(human.video, DEFAULT_IDENTITY, time.monotonic() - 3.0)
            box = lip_box(idle[-1][1])
            threshold = max(m for _, m in lip_motion(idle[-40:], box)) + LIP_MOTION_MARGIN
            for i in range(barge_ins):
                trial = await barge_in(human, box, threshold)
                if trial:
                    trials.append(trial)
                logger.info(f"barge-in {i + 1}/{barge_ins}: {trial}")
        return {"turns": rows, "barge_in": trials}


def summarize(result: dict) -> dict:
    rows = result["turns"]

    def recall(subset):
        total = sum(r["key_words"] for r in subset)
        return sum(r["key_words_heard"] for r in subset) / total if total else None

    clean = [r for r in rows if not r["voice"].endswith("+noise")]
    guard: dict[str, int] = {}
    early: dict[str, int] = {}
    for r in rows:  # the counts are cumulative per bot; keep the last seen
        guard = r["reply_guard"] or guard
        early = r.get("early_transcripts") or early
    waits = column(rows, "turn_wait_ms")
    summary = {
        "turns": len(rows),
        "answered": sum(r["answered"] for r in rows),
        "correct": sum(r["correct"] for r in rows),
        "correct_share": sum(r["correct"] for r in rows) / len(rows) if rows else None,
        "wrong_language": sum(r["wrong_language"] for r in rows),
        "off_topic": sum(r["off_topic"] for r in rows),
        "wer": sum(r["word_errors"] for r in rows) / max(1, sum(r["words"] for r in rows)),
        "key_word_recall": recall(rows),
        "key_word_recall_clean": recall(clean),
        "key_word_recall_by_voice": {
            v: recall([r for r in rows if r["voice"] == v]) for v in VOICES
        },
        "voice_to_voice_ms": p50_p95(column(rows, "voice_to_voice_ms")),
        "stages_ms_median": medians(
            rows,
            (
                "turn_wait_ms",
                "stt_ms",
                "llm_first_token_ms",
                "llm_first_sentence_ms",
                "tts_first_audio_ms",
                "bot_measured_ms",
            ),
        ),
        "turn_wait_ms": {
            **p50_p95(waits),
            "max": max(waits, default=None),
            "over_1s": sum(w > 1000 for w in waits),
        },
        "reply_guard": guard,
        "early_transcripts": early,
    }
    trials = result.get("barge_in") or []
    if trials:
        summary["barge_in"] = {
            "trials": len(trials),
            "audio_stop_ms": {
                "p50": percentile([t["audio_stop_ms"] for t in trials], 50),
                "max": max(t["audio_stop_ms"] for t in trials),
            },
            "mouth_stop_ms": {
                "p50": percentile([t["mouth_stop_ms"] for t in trials], 50),
                "max": max(t["mouth_stop_ms"] for t in trials),
            },
            "user_started_message_ms_p50": percentile(
                [
                    t["user_started_message_ms"]
                    for t in trials
                    if t["user_started_message_ms"] is not None
                ],
                50,
            ),
        }
    return summary


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(16, 4.5))
    for name, run in report["runs"].items():
        v2v = sorted(r["voice_to_voice_ms"] for r in run["turns"] if r["voice_to_voice_ms"])
        a.plot(v2v, np.linspace(0, 1, len(v2v)), label=f"{name} voice-to-voice")
    a.axvline(AIMS["v2v_p50_ms"], color="gray", ls=":", label="aim p50 1.2 s")
    a.set_xlabel("ms")
    a.set_ylabel("share of turns")
    a.set_title("Voice-to-voice at the receiving participant")
    a.legend(fontsize=8)
    rows = report["runs"]["avatar"]["turns"]
    stages = (
        ("turn_wait_ms", "turn wait"),
        ("stt_ms", "STT"),
        ("llm_first_sentence_ms", "LLM to first sentence"),
        ("tts_first_audio_ms", "TTS"),
    )
    x, bottom = np.arange(len(rows)), np.zeros(len(rows))
    for key, label in stages:
        values = np.array([r[key] or 0 for r in rows], float)
        b.bar(x, values, bottom=bottom, label=label)
        bottom += values
    b.plot(x, [r["voice_to_voice_ms"] or np.nan for r in rows], "k.", label="voice-to-voice")
    b.set_xlabel("avatar turn")
    b.set_ylabel("ms")
    b.set_title("Avatar stages per turn")
    b.legend(fontsize=8)
    s = report["summary"]["avatar"]
    labels = ["correct %", "key words %", "wrong lang.", "off-topic"]
    values = [
        100 * (s["correct_share"] or 0),
        100 * (s["key_word_recall"] or 0),
        s["wrong_language"],
        s["off_topic"],
    ]
    c.bar(labels, values, color=["tab:green", "tab:blue", "tab:red", "tab:orange"])
    c.set_title("Avatar answers")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def print_table(report: dict) -> None:
    print(f"\n{'figure':<40}" + "".join(f"{n:>12}" for n in report["summary"]) + f"{'aim':>10}")

    def line(name, get, aim=""):
        cells = []
        for s in report["summary"].values():
            try:
                v = get(s)
            except (KeyError, TypeError):
                v = None
            cells.append(
                "-"
                if v is None
                else (f"{v:.3f}" if isinstance(v, float) and v < 10 else f"{round(v)}")
            )
        print(f"{name:<40}" + "".join(f"{c:>12}" for c in cells) + f"{aim:>10}")

    line("answers correct (share)", lambda s: s["correct_share"], "≥ 0.85")
    line("wrong-language replies", lambda s: s["wrong_language"], "0")
    line("off-topic replies", lambda s: s["off_topic"])
    line("transcript WER", lambda s: s["wer"])
    line("key-word recall (all)", lambda s: s["key_word_recall"])
    line("key-word recall (clean voices)", lambda s: s["key_word_recall_clean"], "≥ 0.90")
    line("voice-to-voice p50 (ms)", lambda s: s["voice_to_voice_ms"]["p50"], "≤ 1200")
    line("voice-to-voice p95 (ms)", lambda s: s["voice_to_voice_ms"]["p95"], "≤ 2500")
    for key in (
        "turn_wait_ms",
        "stt_ms",
        "llm_first_token_ms",
        "llm_first_sentence_ms",
        "tts_first_audio_ms",
    ):
        line(f"  median {key}", lambda s, k=key: s["stages_ms_median"][k])
    line("turn wait p95 (ms)", lambda s: s["turn_wait_ms"]["p95"])
    line("turn waits over 1 s", lambda s: s["turn_wait_ms"]["over_1s"])
    line("barge-in audio stop p50 (ms)", lambda s: s["barge_in"]["audio_stop_ms"]["p50"], "≤ 300")
    line("barge-in audio stop max (ms)", lambda s: s["barge_in"]["audio_stop_ms"]["max"])
    line("barge-in mouth stop p50 (ms)", lambda s: s["barge_in"]["mouth_stop_ms"]["p50"])
    line(
        "barge-in 'user started' msg p50 (ms)",
        lambda s: s["barge_in"]["user_started_message_ms_p50"],
    )
    ratio = report.get("ratio")
    if ratio:
        print(
            f"\navatar / baseline voice-to-voice: p50 {ratio['p50']:.2f}x, p95 {ratio['p95']:.2f}x"
            f" (aim ≤ {AIMS['ratio_p50']}x)"
        )
    print(f"reply guard: {report['summary']['avatar']['reply_guard']}")
    print(f"early transcripts: {report['summary']['avatar']['early_transcripts']}")
    print(f"load average: {report['load_average']}")


async def main_async(args) -> dict:
    questions = QUESTIONS[:QUICK_QUESTIONS] if args.quick else QUESTIONS
    load = [os.getloadavg()]
    runs = {}
    with bench_servers("conversation-bench") as servers:
        # room for the stories the barge-in trials interrupt
        env = servers.bot_env(BOT_GREETING="", BOT_LLM_MAX_TOKENS="150")
        for name in ("avatar", "baseline")[: 1 if args.no_baseline else 2]:
            room = f"conv-{name}-{uuid.uuid4().hex[:6]}"
            script = None if name == "avatar" else ROOT / "bench" / "baseline_bot.py"
            bot = BotProcess(room=room, env=env, log_path=servers.logs / f"{name}.log",
                             script=script)
            bot.start()
            try:
                runs[name] = await converse(
                    servers.url,
                    servers.token(room),
                    questions,
                    video=name == "avatar",
                    barge_ins=args.barge_ins if name == "avatar" else 0,
                )
            finally:
                bot.stop()
            load.append(os.getloadavg())
    summary = {name: summarize(run) for name, run in runs.items()}
    report = {
        "summary": summary,
        "runs": runs,
        "model": servers.settings.ollama_model,
        "machine": {"cpus": len(os.sched_getaffinity(0))},
        "load_average": [[round(x, 2) for x in la] for la in load],
        "logs": str(servers.logs),
    }
    if "baseline" in summary:
        a, b = summary["avatar"]["voice_to_voice_ms"], summary["baseline"]["voice_to_voice_ms"]
        if a["p50"] and b["p50"]:
            report["ratio"] = {"p50": a["p50"] / b["p50"], "p95": a["p95"] / b["p95"]}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_QUESTIONS} questions and 5 barge-ins instead of all",
    )
    parser.add_argument("--barge-ins", type=int, default=5)
    parser.add_argument("--no-baseline", action="store_true", help="skip the stock Pipecat bot")
    parser.add_argument(
        "--out",
        default="conversation",
        help="result file name in bench/results/, without suffix (NAME.json and NAME.png)",
    )
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the servers and bots it started are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    report = asyncio.run(main_async(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path, png_path = RESULTS / f"{args.out}.json", RESULTS / f"{args.out}.png"
    json_path.write_text(json.dumps(report, indent=2))
    chart(report, png_path)
    print(json.dumps({"summary": report["summary"], "ratio": report.get("ratio")}, indent=2))
    print_table(report)
    print(f"\nwrote {json_path} and {png_path}")


if __name__ == "__main__":
    main()
