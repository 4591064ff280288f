"""When the bot's reply is over, as a participant can tell from what it receives."""

from __future__ import annotations

import time

from tests.support.human import HumanParticipant
from tests.support.probe import rtvi_messages, speech_times

LLM_STARTED, LLM_STOPPED = "bot-llm-started", "bot-llm-stopped"


def reply_over(human: HumanParticipant, identity: str, since: float, quiet: float) -> float | None:
    """When `identity`'s last speech of its reply to what was said at `since` arrived, once that
    reply is over, else None. Over: every LLM response begun since `since` has ended (RTVI
    bot-llm-started/stopped; Pipecat ends one even on an error), the bot spoke after the last one
    ended, and it has been quiet `quiet` s since. A notice spoken while a slow LLM is still
    working ("One moment, please.") is not the reply. A reply without the LLM (the greeting)
    is over when the bot spoke since `since` and has been quiet `quiet` s."""
    started = rtvi_messages(human.messages, LLM_STARTED, since)
    stopped = rtvi_messages(human.messages, LLM_STOPPED, since)
    if len(stopped) < len(started):
        return None
    # Without an LLM response (the greeting is spoken as it is), any speech since `since`.
    speech = speech_times(human.audio, identity, stopped[-1][0] if started else since)
    if not speech or time.monotonic() - speech[-1] <= quiet:
        return None
    return speech[-1]
