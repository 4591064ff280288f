"""MeetingAddressing: 1:1 passes everything; a group gets named utterances, answered when addressed."""

from __future__ import annotations

from pipecat.frames.frames import TranscriptionFrame
from pipecat.tests.utils import run_test

from bot.addressing import MeetingAddressing

NAMES = {"u1": "Alice", "u2": "Bob"}


def _said(user: str, text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text=text, user_id=user, timestamp="")


def _addressing(humans: list[str], *, only_when_addressed: bool = True) -> MeetingAddressing:
    return MeetingAddressing(bot_name="Ava", humans=lambda: humans, display_name=NAMES.get,
                             answer_only_when_addressed=only_when_addressed)


async def _texts(processor, frames) -> list[str]:
    down, _ = await run_test(processor, frames_to_send=frames)
    return [f.text for f in down if isinstance(f, TranscriptionFrame)]


async def test_one_person_is_always_answered_unchanged():
    assert await _texts(_addressing(["u1"]), [_said("u1", " What time is it? ")]) == [" What time is it? "]


async def test_group_talk_reaches_the_llm_only_when_the_bot_is_addressed():
    texts = await _texts(_addressing(["u1", "u2"]), [
        _said("u1", " Bob, did you see the game? "),
        _said("u2", " Ava, what is the capital of France? "),
        _said("u1", "Thanks, ava."),
    ])
    assert texts == ["Bob: Ava, what is the capital of France?", "Alice: Thanks, ava."]


async def test_group_without_addressing_rule_names_every_speaker():
    texts = await _texts(_addressing(["u1", "u2"], only_when_addressed=False),
                         [_said("u1", "Hello all."), _said("u2", "Hi.")])
    assert texts == ["Alice: Hello all.", "Bob: Hi."]
