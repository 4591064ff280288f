"""Turn-taking: how often does smart-turn v3 judge a finished question "incomplete" (the bot then
waited its whole silence limit), and does the transcript rule catch those without ending a
sentence that a pause cut in two?

For the 32 questions of bench/questions.py in three voices (embedded, Piper, espeak-ng), and for
their first halves cut before the last word ("What is the capital of"), runs Pipecat's local
smart-turn v3 on the utterance (as the turn strategy does at the end of speech) and tiny.en
(greedy, as the bot) for the transcript that `looks_complete` reads. Independent of machine
load: it counts verdicts, it does not time them. Writes bench/results/turns.json.

    uv run python bench/turn_bench.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from faster_whisper import WhisperModel  # noqa: E402
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3  # noqa: E402

from bench.questions import QUESTIONS  # noqa: E402
from processors.turns.transcript_turn_stop import looks_complete, looks_unfinished  # noqa: E402
from stack import models  # noqa: E402
from stack.settings import cache_dir  # noqa: E402
from tests.support.human import resample  # noqa: E402
from tests.support.voices import speak  # noqa: E402

RESULTS = ROOT / "bench" / "results"
VOICES = ("embedded", "piper", "espeak-m")
RATE = 16000


def main() -> None:
    turn = LocalSmartTurnAnalyzerV3()
    turn.set_sample_rate(RATE)
    whisper = WhisperModel(models.whisper_model("", cache_dir()), device="cpu", compute_type="int8")
    rows = []
    for q in QUESTIONS:
        for voice in VOICES:
            half = " ".join(q.text.rstrip("?").split()[:-1])
            for kind, text in (("finished", q.text), ("cut", half)):
                samples, rate = speak(text, voice)
                pcm = resample(samples, rate, RATE).astype(np.float32) / 32768
                verdict = turn._predict_endpoint(pcm)["prediction"] == 1
                segments, _ = whisper.transcribe(pcm, language="en", beam_size=1)
                heard = " ".join(s.text for s in segments).strip()
                rows.append(
                    {
                        "voice": voice,
                        "kind": kind,
                        "text": text,
                        "heard": heard,
                        "smart_turn_complete": verdict,
                        "transcript_complete": looks_complete(heard),
                    }
                )
            print(rows[-2], "\n", rows[-1], flush=True)
            write(rows)  # after every question, so an interrupted run keeps what it counted
    print(json.dumps(write(rows), indent=2))


def write(rows: list[dict]) -> dict:
    """Summarise the verdicts so far and write bench/results/turns.json."""
    finished = [r for r in rows if r["kind"] == "finished"]
    cut = [r for r in rows if r["kind"] == "cut"]
    summary = {
        "utterances": len(rows),
        # The bot used to wait smart-turn's whole silence limit on these.
        "finished_judged_incomplete_by_smart_turn": sum(
            not r["smart_turn_complete"] for r in finished
        )
        / len(finished),
        # Now such a turn ends on its transcript unless the transcript looks unfinished.
        "finished_ending_without_the_wait_now": sum(
            (r["smart_turn_complete"] or r["transcript_complete"])
            and not looks_unfinished(r["heard"])
            for r in finished
        )
        / len(finished),
        # A cut sentence ended early (half a question answered): before / now.
        "cut_ended_by_smart_turn": sum(r["smart_turn_complete"] for r in cut) / len(cut),
        "cut_ended_now": sum(
            not looks_unfinished(r["heard"])
            and (r["smart_turn_complete"] or r["transcript_complete"])
            for r in cut
        )
        / len(cut),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "turns.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    return summary


if __name__ == "__main__":
    main()
