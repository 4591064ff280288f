"""The room's rules outside the pipeline: who may end the bot, the recogniser's name prompt, how
much history the LLM keeps."""

from __future__ import annotations

import pytest

from bot.pipeline import disconnect_allowed, recogniser_prompt, trimmed_history


@pytest.mark.parametrize(("policy", "sender", "humans", "allowed"), [
    ("owner", "alice", ["alice"], True),            # the owner, alone with the bot
    ("owner", "alice", ["alice", "bob"], False),    # never in a group, not even the owner
    ("owner", "bob", ["bob"], False),               # alone, but not the room's first person
    ("owner", None, ["alice"], False),              # a sender LiveKit could not name
    ("never", "alice", ["alice"], False),
    ("anyone", "bob", ["alice", "bob"], True),
])
def test_disconnect_policy(policy, sender, humans, allowed):
    assert disconnect_allowed(policy, sender=sender, owner="alice", humans=humans) is allowed


def test_recogniser_prompt_is_the_name_alone():
    assert recogniser_prompt("Ava") == "Ava."


def test_history_is_kept_whole_up_to_its_limit_then_halved():
    messages = [{"role": "user", "content": str(i)} for i in range(9)]
    assert trimmed_history(messages[:8], 8) == messages[:8]
    # Past the limit only the newer half is kept, so the prompt prefix stays the same for the
    # next few turns (Ollama's cache).
    assert trimmed_history(messages, 8) == messages[5:]
