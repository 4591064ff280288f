"""When a participant counts the bot's reply as over (tests/support/replies.py)."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import numpy as np

from tests.support.replies import LLM_STARTED, LLM_STOPPED, reply_over

BOT = "avatar-bot"
LOUD = (np.sin(np.arange(480) / 3) * 8000).astype(np.int16)


def rtvi(at: float, kind: str) -> tuple:
    return (at, BOT, "", json.dumps({"label": "rtvi-ai", "type": kind, "data": {}}).encode())


def heard(messages: list, speech_at: list[float]) -> SimpleNamespace:
    return SimpleNamespace(messages=messages, audio=[(at, BOT, LOUD, 24000) for at in speech_at])


def test_a_wait_notice_while_the_llm_still_works_is_not_the_reply():
    now = time.monotonic()
    asked = now - 20
    notice = heard([rtvi(asked + 1, LLM_STARTED)], [asked + 5, asked + 6])
    assert reply_over(notice, BOT, asked, quiet=2.0) is None
    # the LLM ended, but the reply's audio has not come yet: the notice still is not it
    ended = heard([rtvi(asked + 1, LLM_STARTED), rtvi(asked + 9, LLM_STOPPED)], [asked + 5])
    assert reply_over(ended, BOT, asked, quiet=2.0) is None


def test_the_reply_is_over_once_spoken_after_the_llm_ended_and_quiet():
    now = time.monotonic()
    asked = now - 20
    messages = [rtvi(asked + 1, LLM_STARTED), rtvi(asked + 9, LLM_STOPPED)]
    assert reply_over(heard(messages, [asked + 5, asked + 10, asked + 12]), BOT, asked, 2.0) == (
        asked + 12
    )
    # still talking (last speech under `quiet` ago)
    assert reply_over(heard(messages, [asked + 10, now - 0.5]), BOT, asked, 2.0) is None
    # a second response still running (a follow-up turn)
    running = [*messages, rtvi(asked + 13, LLM_STARTED)]
    assert reply_over(heard(running, [asked + 12]), BOT, asked, 2.0) is None
    # nothing asked of the LLM since `asked`: silence is no reply...
    assert reply_over(heard([], []), BOT, asked, 2.0) is None
    assert reply_over(heard([], [asked - 3]), BOT, asked, 2.0) is None
    # ...but the greeting (spoken without the LLM) is one once the bot is quiet
    assert reply_over(heard([], [asked + 2, asked + 4]), BOT, asked, 2.0) == asked + 4
    assert reply_over(heard([], [asked + 2, now - 0.5]), BOT, asked, 2.0) is None
