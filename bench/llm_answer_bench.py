"""Which system prompt and sampling settings make the small LLM answer spoken questions right?

Starts the stack's Ollama on loopback (the configured model, by default
avatar-qwen2.5-coder:0.5b) and asks, per prompt/sampling variant, every question of two sets:
the conversation benchmark's (bench/questions.py) and a held-out set (bench/questions_heldout.py)
that no variant was written against. Each set is asked twice, through the OpenAI-compatible
endpoint with streaming, the way the bot's Pipecat Ollama service asks:
  fresh     each question as a new conversation: system prompt + the question
  running   all questions as one conversation, after the greeting, with the bot's history bound
            (past `llm_history_messages` messages, the newer half is kept)
and judges each reply:
  correct       conversation_bench.judge (an expected answer word in the reply); a question
                without answer words (a joke, "how are you") also needs an on-track reply
                (bot.reply_guard.off_track) of at most OPEN_MAX_WORDS words
  off_track     bot.reply_guard.off_track's verdict (another language, a list)
  words         reply length in words
  TTFT          request sent → first text token (each variant first sends a warm-up request, so
                Ollama's prompt cache holds its system prompt, as on a bot's 2nd+ turn)
  sentence      request sent → end of the first sentence (Pipecat's match_endofsentence, the
                TTS aggregation's rule; the end of the reply when it has none)
The winner is the variant with the best held-out correct share (both passes), then the fewest
off-track replies, then the fastest first sentence. Prints a table; writes
bench/results/llm_answer.json (summaries and every reply) and llm_answer.png.

    uv run python bench/llm_answer_bench.py [--quick] [--variants default,answer-first]

With --meeting it compares, for the default prompt, how a meeting's addressed questions reach the
LLM: every question of both sets asked by one of three people in turn, as one running group
conversation, with the bot's name said in one of four places ("Ava, ...", "Hey Ava, ...",
"Tell me, Ava, ...", "..., Ava?"):
  named    "Dana: Tell me, Ava, what is ...?" (the transcript as heard)
  called   "Dana: Tell me, what is ...?" (the bot's NameMatcher.without_vocative, as the bot does)
Every eighth question is preceded by the name alone ("Dana: Ava?"), the same in both forms. It
counts, besides correct answers and times, replies whose first sentence starts with a
person's or the bot's name ("Dana, Ava!") or asks the question back. Writes
bench/results/llm_answer_meeting.json and .png.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from pipecat.utils.string import match_endofsentence

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.conversation_bench import judge  # noqa: E402
from bench.latency_bench import p50_p95  # noqa: E402
from bench.questions import QUESTIONS, Question  # noqa: E402
from bench.questions_heldout import HELDOUT_QUESTIONS  # noqa: E402
from bench.servers import bench_ollama  # noqa: E402
from bench.stt_bench import words  # noqa: E402
from bot.addressing import NameMatcher  # noqa: E402
from bot.pipeline import trimmed_history  # noqa: E402
from bot.reply_guard import off_track  # noqa: E402
from bot.settings import (  # noqa: E402
    DEFAULT_GREETING,
    DEFAULT_NAME,
    DEFAULT_NAME_ALIASES,
    DEFAULT_SYSTEM_PROMPT,
    BotSettings,
)
from stack.settings import StackSettings  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SETS = {"heldout": HELDOUT_QUESTIONS, "bench": QUESTIONS}
PASSES = ("fresh", "running")
QUICK_QUESTIONS = 6
# A conversational reply longer than this is not a short spoken answer.
OPEN_MAX_WORDS = 40
WARM_UP_QUESTION = "Hello, can you hear me?"
REQUEST_TIMEOUT_S = 120.0
BOT = BotSettings.__dataclass_fields__
HISTORY_MESSAGES = BOT["llm_history_messages"].default
SEED = BOT["llm_seed"].default
MAX_TOKENS = BOT["llm_max_tokens"].default
TEMPERATURE = BOT["llm_temperature"].default

ANSWER_FIRST_PROMPT = (
    "You are Ava, a friendly assistant who talks with people in a video call. "
    "Always reply in English. Give a short factual answer: say the answer itself in your first "
    "few words, then stop. Use one short spoken sentence, two at most. "
    "Never use lists, markdown, code or emoji."
)
FEW_SHOT_PROMPT = (
    ANSWER_FIRST_PROMPT + "\nExamples of good replies:\n"
    "Person: What is the capital of Italy?\nAva: The capital of Italy is Rome.\n"
    "Person: How many legs does a dog have?\nAva: A dog has four legs.\n"
    "Person: Hi Ava, nice to meet you!\nAva: Nice to meet you too! What would you like to know?"
)
TERSE_PROMPT = (
    "You are Ava, a helpful voice assistant in a video call. Reply in plain English. "
    "Answer correctly and briefly, in one sentence that starts with the answer. "
    "Never use lists, markdown, code or emoji."
)
# name → system prompt and sampling.
VARIANTS = {
    "default": {"prompt": DEFAULT_SYSTEM_PROMPT, "temperature": TEMPERATURE},
    "default-t0": {"prompt": DEFAULT_SYSTEM_PROMPT, "temperature": 0.0},
    "answer-first": {"prompt": ANSWER_FIRST_PROMPT, "temperature": TEMPERATURE},
    "answer-first-t0": {"prompt": ANSWER_FIRST_PROMPT, "temperature": 0.0},
    "few-shot": {"prompt": FEW_SHOT_PROMPT, "temperature": TEMPERATURE},
    "few-shot-t0": {"prompt": FEW_SHOT_PROMPT, "temperature": 0.0},
    "terse-t0": {"prompt": TERSE_PROMPT, "temperature": 0.0},
    "answer-first-topp0.8": {"prompt": ANSWER_FIRST_PROMPT, "temperature": TEMPERATURE,
                             "top_p": 0.8},
}


def _openai_body(model: str, messages: list[dict], v: dict) -> dict:
    body = {"model": model, "messages": messages, "stream": True, "seed": SEED,
            "temperature": v["temperature"], "max_tokens": MAX_TOKENS,
            "stream_options": {"include_usage": True}}
    if "top_p" in v:
        body["top_p"] = v["top_p"]
    return body


def _chunks(client: httpx.Client, url: str, model: str, messages: list[dict], v: dict):
    """(text, usage) pieces of one streamed reply; usage is (prompt, completion) tokens."""
    body = _openai_body(model, messages, v)
    with client.stream("POST", url + "/v1/chat/completions", json=body) as resp:
        resp.raise_for_status()
        for line in resp.iter_lines():
            if not line.startswith("data:") or line.strip() == "data: [DONE]":
                continue
            data = json.loads(line[5:])
            usage = data.get("usage")
            text = "".join((c.get("delta") or {}).get("content") or ""
                           for c in data.get("choices") or [])
            yield text, ((usage["prompt_tokens"], usage["completion_tokens"]) if usage else None)


def ask(client: httpx.Client, url: str, model: str, messages: list[dict], v: dict) -> dict:
    """One streamed reply with its time to first token and to the end of its first sentence."""
    sent = time.monotonic()
    text, first, sentence, usage = "", None, None, (None, None)
    for piece, got_usage in _chunks(client, url, model, messages, v):
        usage = got_usage or usage
        if piece and first is None and piece.strip():
            first = time.monotonic()
        text += piece
        if sentence is None and text.strip() and match_endofsentence(text):
            sentence = time.monotonic()
    done = time.monotonic()

    def ms(at):
        return round((at - sent) * 1000) if at else None

    return {"reply": text.strip(), "ttft_ms": ms(first),
            "first_sentence_ms": ms(sentence or (done if text.strip() else None)),
            "total_ms": ms(done), "prompt_tokens": usage[0], "completion_tokens": usage[1]}


def grade(q: Question, reply: str) -> dict:
    verdict = off_track(reply) if reply else None
    n = len(words(reply))
    correct = judge(q, q.text, reply)["correct"]
    if not q.answers:  # conversational: answered, in English, not a list, short
        correct = correct and verdict is None and n <= OPEN_MAX_WORDS
    return {"correct": correct, "off_track": verdict, "words": n}


def run_pass(client, url, model, v: dict, questions, mode: str) -> list[dict]:
    system = {"role": "system", "content": v["prompt"]}
    history: list[dict] = [{"role": "assistant", "content": DEFAULT_GREETING}]
    rows = []
    for q in questions:
        user = {"role": "user", "content": q.text}
        messages = [system, user] if mode == "fresh" else [system, *history, user]
        answer = ask(client, url, model, messages, v)
        row = {"question": q.text, **answer, **grade(q, answer["reply"])}
        rows.append(row)
        mark = "ok " if row["correct"] else "BAD"
        print(f"  [{mark}] {row['ttft_ms']:>5} ms  {q.text} -> {row['reply'][:90]!r}", flush=True)
        if mode == "running":
            history = trimmed_history(
                [*history, user, {"role": "assistant", "content": answer["reply"]}],
                HISTORY_MESSAGES)
    return rows


def summary(rows: list[dict]) -> dict:
    def values(key):
        return [r[key] for r in rows if r[key] is not None]

    return {
        "n": len(rows),
        "correct_share": round(sum(r["correct"] for r in rows) / len(rows), 3) if rows else None,
        "off_track": sum(r["off_track"] is not None for r in rows),
        "median_words": statistics.median(values("words")) if rows else None,
        "ttft_ms": p50_p95(values("ttft_ms")),
        "first_sentence_ms": p50_p95(values("first_sentence_ms")),
        "median_prompt_tokens": statistics.median(values("prompt_tokens"))
        if values("prompt_tokens") else None,
    }


def warm_up(client, url, model, v: dict) -> None:
    """Fill Ollama's prompt cache with the variant's system prompt, as on a bot's 2nd+ turn."""
    ask(client, url, model, [{"role": "system", "content": v["prompt"]},
                             {"role": "user", "content": WARM_UP_QUESTION}], v)


def run_variant(client, url, model, name: str, v: dict, quick: bool) -> dict:
    print(f"\n== {name} (temperature {v['temperature']}"
          f"{', top_p ' + str(v['top_p']) if 'top_p' in v else ''})", flush=True)
    warm_up(client, url, model, v)
    sets = {}
    for set_name, questions in SETS.items():
        questions = questions[:QUICK_QUESTIONS] if quick else questions
        passes = {}
        for mode in PASSES:
            print(f" {set_name} / {mode}", flush=True)
            rows = run_pass(client, url, model, v, questions, mode)
            passes[mode] = {"summary": summary(rows), "replies": rows}
        both = [r for p in passes.values() for r in p["replies"]]
        sets[set_name] = {"summary": summary(both), **passes}
    everything = [r for s in sets.values() for p in PASSES for r in s[p]["replies"]]
    return {"settings": {k: v[k] for k in v}, "summary": summary(everything), "sets": sets}


def winner(variants: dict) -> str:
    def key(name):
        s = variants[name]["sets"]["heldout"]["summary"]
        return (-s["correct_share"], s["off_track"], s["first_sentence_ms"]["p50"] or 1e9)

    return min(variants, key=key)


def table(report: dict) -> str:
    head = (f"{'variant':<22}{'held fr':>8}{'held run':>9}{'bench fr':>9}{'bench run':>10}"
            f"{'offtrk':>7}{'words':>6}{'ttft p50/p95':>14}{'sent p50/p95':>14}{'ptok':>6}")
    lines = [head, "-" * len(head)]
    for name, v in report["variants"].items():
        s, sets = v["summary"], v["sets"]

        def share(set_name, mode, sets=sets):
            return f"{sets[set_name][mode]['summary']['correct_share']:.0%}"

        tt, fs = s["ttft_ms"], s["first_sentence_ms"]
        lines.append(
            f"{name:<22}{share('heldout', 'fresh'):>8}{share('heldout', 'running'):>9}"
            f"{share('bench', 'fresh'):>9}{share('bench', 'running'):>10}{s['off_track']:>7}"
            f"{s['median_words']:>6}{tt['p50']:>8.0f}/{tt['p95']:<5.0f}"
            f"{fs['p50']:>8.0f}/{fs['p95']:<5.0f}{s['median_prompt_tokens'] or 0:>6.0f}")
    lines.append(f"winner (held-out correct, then off-track, then first sentence): "
                 f"{report['winner']}")
    return "\n".join(lines)


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(report["variants"])
    x = np.arange(len(names))
    fig, (a, b) = plt.subplots(1, 2, figsize=(15, 5))
    bars = [("heldout", "fresh"), ("heldout", "running"), ("bench", "fresh"),
            ("bench", "running")]
    width = 0.8 / len(bars)
    for i, (set_name, mode) in enumerate(bars):
        shares = [report["variants"][n]["sets"][set_name][mode]["summary"]["correct_share"]
                  for n in names]
        a.bar(x + (i - 1.5) * width, shares, width, label=f"{set_name} {mode}")
    a.set_xticks(x, names, rotation=30, ha="right")
    a.set_ylim(0, 1)
    a.set_ylabel("correct share")
    a.set_title("Correct answers per variant")
    a.legend(fontsize=8, loc="lower right")
    for i, key in enumerate(("ttft_ms", "first_sentence_ms")):
        p50 = [report["variants"][n]["summary"][key]["p50"] for n in names]
        p95 = [report["variants"][n]["summary"][key]["p95"] for n in names]
        pos = x + (i - 0.5) * 0.4
        b.bar(pos, p50, 0.4, label=f"{key.removesuffix('_ms')} p50")
        b.scatter(pos, p95, marker="_", s=200, color="black",
                  label="p95" if i == 0 else None)
    b.set_xticks(x, names, rotation=30, ha="right")
    b.set_ylabel("ms from request")
    b.set_title("Time to first token and to first sentence end")
    b.legend(fontsize=8)
    fig.suptitle(f"{report['model']}: winner {report['winner']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --meeting: who asks (names the meeting benchmark does not use) and where the name goes.
MEETING_PEOPLE = ("Dana", "Lee", "Sam")
NAME_PLACES = {
    "start": lambda q: f"{DEFAULT_NAME}, {q[:1].lower()}{q[1:]}",
    "hey": lambda q: f"Hey {DEFAULT_NAME}, {q[:1].lower()}{q[1:]}",
    "middle": lambda q: f"Tell me, {DEFAULT_NAME}, {q[:1].lower()}{q[1:]}",
    "end": lambda q: f"{q[:-1]}, {DEFAULT_NAME}{q[-1]}",
}
MEETING_FORMS = ("named", "called")
# Every this many questions, the person calls the bot by name alone before asking.
CALL_EVERY = 8
# A first sentence that asks back this much of the question's words repeats the question.
ECHO_SHARE = 0.8


def echoes(question: str, reply: str) -> str | None:
    """How a reply's first sentence fails to just answer: "label" (it starts with a person's or
    the bot's name) or "question" (it repeats the question); None when it does neither."""
    first = match_endofsentence(reply) or len(reply)
    said = words(reply[:first])
    if said and said[0] in {n.lower() for n in (*MEETING_PEOPLE, DEFAULT_NAME)}:
        return "label"
    asked = set(words(question))
    if reply[:first].rstrip().endswith("?") and len(asked & set(said)) >= ECHO_SHARE * len(asked):
        return "question"
    return None


def run_meeting(client, url, model, questions, form: str) -> list[dict]:
    """All `questions` as one group conversation, in `form` (MEETING_FORMS)."""
    v = VARIANTS["default"]
    matcher = NameMatcher(names=(DEFAULT_NAME, *DEFAULT_NAME_ALIASES))
    system = {"role": "system", "content": v["prompt"]}
    history: list[dict] = [{"role": "assistant", "content": DEFAULT_GREETING},
                           *({"role": "system", "content": f"{p} joined the call."}
                             for p in MEETING_PEOPLE[1:])]
    places = list(NAME_PLACES.items())
    rows = []

    def reply_to(user: dict, v=v) -> dict:
        nonlocal history
        answer = ask(client, url, model, [system, *history, user], v)
        history = trimmed_history(
            [*history, user, {"role": "assistant", "content": answer["reply"]}], HISTORY_MESSAGES)
        return answer

    for i, q in enumerate(questions):
        person, (place, say) = MEETING_PEOPLE[i % len(MEETING_PEOPLE)], places[i % len(places)]
        if i % CALL_EVERY == CALL_EVERY // 2:
            # The name alone first ("Ava?"), then the question: the same text in both forms.
            call = {"role": "user", "content": f"{person}: {DEFAULT_NAME}?"}
            answer = reply_to(call)
            rows.append({"question": None, "place": "alone", "sent": call["content"], **answer,
                         "correct": None, "off_track": None, "words": len(words(answer["reply"])),
                         "echo": echoes("", answer["reply"])})
            _print_meeting_row(rows[-1])
        heard = say(q.text)
        text = matcher.without_vocative(heard) if form == "called" else heard
        user = {"role": "user", "content": f"{person}: {text}"}
        answer = reply_to(user)
        row = {"question": q.text, "place": place, "sent": user["content"], **answer,
               **grade(q, answer["reply"]), "echo": echoes(q.text, answer["reply"])}
        rows.append(row)
        _print_meeting_row(row)
    return rows


def _print_meeting_row(row: dict) -> None:
    mark = {True: "ok ", False: "BAD", None: "   "}[row["correct"]]
    print(f"  [{mark}] {row['first_sentence_ms']:>5} ms {row['echo'] or '':<8} "
          f"{row['sent']} -> {row['reply'][:80]!r}", flush=True)


def meeting_summary(rows: list[dict]) -> dict:
    questions = [r for r in rows if r["question"]]
    return {**summary(questions),
            "label_echo": sum(r["echo"] == "label" for r in questions),
            "question_echo": sum(r["echo"] == "question" for r in questions),
            "calls": len(rows) - len(questions),
            "calls_label_echo": sum(r["echo"] == "label" for r in rows if not r["question"])}


def meeting_table(report: dict) -> str:
    head = (f"{'form':<8}{'n':>4}{'correct':>9}{'label echo':>12}{'question echo':>15}"
            f"{'words':>7}{'first sentence p50/p95':>24}{'calls: label echo':>19}")
    lines = [head, "-" * len(head)]
    for form, f in report["forms"].items():
        s = f["summary"]
        fs = s["first_sentence_ms"]
        lines.append(f"{form:<8}{s['n']:>4}{s['correct_share']:>9.0%}{s['label_echo']:>12}"
                     f"{s['question_echo']:>15}{s['median_words']:>7}"
                     f"{fs['p50']:>14.0f} / {fs['p95']:<7.0f}"
                     f"{s['calls_label_echo']:>12} / {s['calls']}")
    return "\n".join(lines)


def meeting_chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    forms = list(report["forms"])
    sums = [report["forms"][f]["summary"] for f in forms]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.bar(forms, [s["correct_share"] * s["n"] for s in sums], 0.25, label="correct",
          align="edge")
    a.bar(forms, [s["label_echo"] for s in sums], -0.25, label="name label first",
          align="edge")
    a.bar(forms, [s["question_echo"] for s in sums], 0.25, label="question repeated",
          align="edge", bottom=[s["correct_share"] * s["n"] for s in sums], alpha=0.5)
    a.set_ylabel(f"replies (of {sums[0]['n']})")
    a.set_title("Meeting questions: answers and echoes")
    a.legend(fontsize=8)
    b.bar(forms, [s["first_sentence_ms"]["p50"] for s in sums], 0.5, label="p50")
    b.scatter(forms, [s["first_sentence_ms"]["p95"] for s in sums], marker="_", s=300,
              color="black", label="p95")
    b.set_ylabel("ms from request to first sentence end")
    b.legend(fontsize=8)
    fig.suptitle(f"{report['model']}: the bot's name in the LLM's message, kept or left out")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def meeting(client, url, settings, quick: bool, out: str) -> None:
    questions = [q for qs in SETS.values() for q in (qs[:QUICK_QUESTIONS] if quick else qs)]
    report = {"model": settings.ollama_model, "cpus": os.cpu_count(),
              "load_average_start": os.getloadavg(), "quick": quick, "forms": {}}
    warm_up(client, url, settings.ollama_model, VARIANTS["default"])
    for form in MEETING_FORMS:
        print(f"\n== {form}", flush=True)
        rows = run_meeting(client, url, settings.ollama_model, questions, form)
        report["forms"][form] = {"summary": meeting_summary(rows), "replies": rows}
    report["load_average_end"] = os.getloadavg()
    (RESULTS / f"{out}.json").write_text(json.dumps(report, indent=1))
    meeting_chart(report, RESULTS / f"{out}.png")
    print("\n" + meeting_table(report))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"only the first {QUICK_QUESTIONS} questions of each set")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated variant names (default: all)")
    parser.add_argument("--meeting", action="store_true",
                        help="compare the bot's name kept or left out in group questions")
    parser.add_argument("--out", default=None,
                        help="result file name, without suffix (llm_answer, llm_answer_meeting)")
    args = parser.parse_args()
    chosen = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")

    settings = StackSettings.from_env()
    RESULTS.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="llm-answer-"))
    with (bench_ollama(settings, logs) as (url, _),
          httpx.Client(timeout=REQUEST_TIMEOUT_S) as client):
        if args.meeting:
            meeting(client, url, settings, args.quick, args.out or "llm_answer_meeting")
        else:
            compare_variants(client, url, settings, chosen, args.quick, args.out or "llm_answer")


def compare_variants(client, url, settings, chosen: list[str], quick: bool, out: str) -> None:
    report = {"model": settings.ollama_model, "cpus": os.cpu_count(),
              "load_average_start": os.getloadavg(), "quick": quick,
              "seed": SEED, "max_tokens": MAX_TOKENS, "history_messages": HISTORY_MESSAGES,
              "open_max_words": OPEN_MAX_WORDS, "variants": {}}
    started = time.monotonic()
    for name in chosen:
        report["variants"][name] = run_variant(client, url, settings.ollama_model, name,
                                               VARIANTS[name], quick)
        report["winner"] = winner(report["variants"])
        # Written after each variant, so a cut-short run keeps what it measured.
        (RESULTS / f"{out}.json").write_text(json.dumps(report, indent=1))
    report["load_average_end"] = os.getloadavg()
    report["wall_s"] = round(time.monotonic() - started)
    (RESULTS / f"{out}.json").write_text(json.dumps(report, indent=1))
    chart(report, RESULTS / f"{out}.png")
    print("\n" + table(report))


if __name__ == "__main__":
    main()
