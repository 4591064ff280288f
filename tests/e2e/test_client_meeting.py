"""Two browser pages in one room with the real bot: each page shows both people's transcripts
under the right names (headless Chromium, two fake microphones, the real token server)."""

from __future__ import annotations

import asyncio
import json

from tests.e2e.browser import run_browser, write_fake_mic_wav
from tests.e2e.test_client_live import STARTUP_S, avatar_site  # noqa: F401
from tests.support.voices import speak

ROOM = "e2e-meeting"
# Longer than one loop of a page's microphone file (lead + speech + tail_s below).
STAY_S = 20.0
PEOPLE = (("Alice", "embedded", "I think the coffee machine is broken again.", "coffee"),
          ("Bob", "piper", "The train was late again this morning.", "train"))
# The transcript as the page shows it: [speaker name, text] per person's line.
LINES = ("[...document.querySelectorAll('#transcript .line.user')]"
         ".map(l => [l.querySelector('.who').textContent, l.querySelector('.text').textContent])")


def _shows(name: str, word: str) -> str:
    """JS: a transcript line by `name` (or "name (you)") containing `word`."""
    return (f"{LINES}.some(([who, text]) => who.startsWith({json.dumps(name)}) && "
            f"text.toLowerCase().includes({json.dumps(word)}))")


async def test_two_pages_show_both_people_with_their_names(avatar_site, tmp_path,
                                                          tmp_path_factory):  # noqa: F811
    async def page(name: str, voice: str, text: str, lead_s: float) -> list:
        samples, rate = await asyncio.to_thread(speak, text, voice)
        wav = write_fake_mic_wav(tmp_path / f"{name}.wav", samples, rate, lead_s=lead_s,
                                 tail_s=10.0)
        # A page that has seen both lines stays in the room (its microphone file loops), so the
        # other page, which may have joined after this person's first line, hears them again.
        steps = [{"waitFor": "window.avatarStats?.botReady", "timeout_s": STARTUP_S},
                 *({"waitFor": _shows(n, w), "timeout_s": 150} for n, _, _, w in PEOPLE),
                 {"eval": LINES},
                 {"sleep_s": STAY_S}]
        report = await run_browser({"url": f"{avatar_site}/?room={ROOM}&name={name}&autojoin=1",
                                    "wav": str(wav), "viewport": [1100, 820], "steps": steps,
                                    "diagnose": LINES}, timeout_s=STARTUP_S + 240 + STAY_S)
        assert report["ok"], (report["error"], report.get("diagnosis"))
        return report["results"][-2]

    pages = await asyncio.gather(
        *(page(name, voice, text, lead_s=1.0 + 3.0 * i)
          for i, (name, voice, text, _) in enumerate(PEOPLE)), return_exceptions=True)
    failed = [(name, p) for (name, *_), p in zip(PEOPLE, pages, strict=True)
              if isinstance(p, BaseException)]
    if failed:
        # Both pages' reports and the bot's own log: which side lost whom.
        for log in sorted(tmp_path_factory.getbasetemp().glob("worker*/worker.log")):
            print(f"--- {log} (last 150 lines) ---", *log.read_text().splitlines()[-150:], sep="\n")
        raise AssertionError(f"pages failed: {failed}")
    alice_sees, bob_sees = pages
    print(f"\nAlice's page: {alice_sees}\nBob's page: {bob_sees}")
    for seen, me in ((alice_sees, "Alice"), (bob_sees, "Bob")):
        # Never the other person's words under this page's own name, or the reverse.
        for who, text in seen:
            if "coffee" in text.lower():
                assert who.startswith("Alice") and (who.endswith("(you)") == (me == "Alice"))
            if "train" in text.lower():
                assert who.startswith("Bob") and (who.endswith("(you)") == (me == "Bob"))
