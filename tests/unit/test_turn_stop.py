"""A clearly complete transcript ends the turn; a sentence cut by a pause does not (issue 10)."""

from __future__ import annotations

import pytest

from processors.turns.transcript_turn_stop import looks_complete, looks_unfinished


@pytest.mark.parametrize("text", [
    " What is the capital of France?", "How many legs does a spider have?", "Tell me a joke.",
    "I would like to know the time.", "Stop it please!", "Why?  And how?",
])
def test_finished_questions_and_sentences_are_complete(text):
    assert looks_complete(text)


@pytest.mark.parametrize(
    "text",
    [
        " What is the capital of.",
        "How many legs does a",
        "I want to tell you about my...",
        "Tell me about",
        "My favourite food is.",
        "What is the capital of?",
        "Yes.",
        "Why?",
        "",
        "So, what is the,",
    ],
)
def test_fragments_are_not_complete(text):
    assert not looks_complete(text)


@pytest.mark.parametrize(
    "text, unfinished",
    [
        (" What is the capital of?", True),
        ("How many legs does a", True),
        ("So, what is the,", True),
        ("I want to tell you about my...", True),
        ("What is the capital of France?", False),
        ("And how?", False),
        ("Yes.", False),
        ("", False),
    ],
)
def test_clearly_unfinished_sentences_hold_the_turn(text, unfinished):
    assert looks_unfinished(text) is unfinished
