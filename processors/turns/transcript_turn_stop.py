"""Ends the person's turn as soon as the transcript is clearly a finished sentence.

Pipecat's `TurnAnalyzerUserTurnStopStrategy` ends a turn when the smart-turn model judges the
audio complete; when it judges a finished question "incomplete", the turn waits for the model's
silence limit (seconds) before the bot answers. This strategy also reads the transcript: a
question, or a statement of a few words that does not end on a word that needs a continuation
("of", "the", "and", ...), ends the turn when it arrives. A pause inside a sentence ("What is
the capital of ... France?") still keeps one turn: its first part ends on a dangling word, so
the smart-turn verdict and its (bounded) silence limit decide as before.
"""

from __future__ import annotations

import re

from pipecat.frames.frames import TranscriptionFrame
from pipecat.turns.user_stop.turn_analyzer_user_turn_stop_strategy import (
    TurnAnalyzerUserTurnStopStrategy,
)

# Words after which an English sentence cannot end; Whisper often closes fragments with ".".
DANGLING_WORDS = frozenset(
    "a an the of to in on at for with from by about into onto than as and or but so because "
    "if that which who whose whom what where when how why is are was were be been am do does "
    "did my your his her its our their this these those very like just some any no not can "
    "could would should will shall may might must".split()
)
# Question words can end a question ("And how?") though not a statement.
QUESTION_WORDS = frozenset("what where when how why who whom which".split())
# Fewest words of a statement (ending in "." or "!") taken as finished; questions need two.
MIN_STATEMENT_WORDS = 3
MIN_QUESTION_WORDS = 2


def looks_complete(text: str) -> bool:
    """Whether a transcript is clearly a finished question or sentence."""
    text = text.strip()
    if not text or text.endswith(("...", "…", ",", "-")):
        return False
    words = re.findall(r"[a-z0-9']+", text.lower())
    if not words:
        return False
    if text.endswith("?"):
        ends_open = words[-1] in DANGLING_WORDS - QUESTION_WORDS
        return len(words) >= MIN_QUESTION_WORDS and not ends_open
    if words[-1] in DANGLING_WORDS:
        return False
    return text.endswith((".", "!")) and len(words) >= MIN_STATEMENT_WORDS


class TranscriptTurnStopStrategy(TurnAnalyzerUserTurnStopStrategy):
    """Smart-turn stop strategy that also ends the turn on a clearly complete transcript."""

    def __init__(self, **kwargs):
        """Takes `TurnAnalyzerUserTurnStopStrategy`'s options (`turn_analyzer`, ...)."""
        super().__init__(**kwargs)
        self._text_complete = False

    async def _discard_pending_end_of_turn(self):
        await super()._discard_pending_end_of_turn()
        self._text_complete = False

    async def _handle_transcription(self, frame: TranscriptionFrame):
        self._text_complete = looks_complete(frame.text)
        await super()._handle_transcription(frame)  # re-checks the end of the turn

    async def _maybe_trigger_user_turn_stopped(self):
        # The transcript overrules an "incomplete" verdict once the person has stopped talking
        # (the verdict may come before or after the transcript).
        if self._text_complete and self._vad_stopped and not self._vad_user_speaking:
            self._turn_complete = True
        await super()._maybe_trigger_user_turn_stopped()
