"""Lets the transcript end the person's turn early, or hold it open across a pause.

Pipecat's `TurnAnalyzerUserTurnStopStrategy` ends a turn when the smart-turn model judges the
audio complete. The model misjudges both ways on short questions: a finished question judged
"incomplete" waited the model's whole silence limit before the bot answered, and a sentence cut
by a pause ("What is the capital of ...") can be judged complete, so the bot answered half a
question (bench/turn_bench.py). This strategy also reads the (final, per-segment) transcript:
- clearly finished (the turn's segments so far form a question, or a statement of a few words
  not ending on a word that needs a continuation) ends the turn when it arrives;
- clearly unfinished (ending on "of", "the", "and", ..., or "...", ",") keeps the turn open for
  up to `max_wait_secs`, so the rest of the sentence joins it; a person who trailed off is
  still answered after that.
This module is the one place that builds on the parent's private turn state (`_turn_complete`,
`_vad_stopped`, `_vad_user_speaking`) and hooks (`_reset`, `_discard_pending_end_of_turn`,
`_handle_transcription`, `_maybe_trigger_user_turn_stopped`);
tests/unit/test_transcript_turn_stop_pipecat_1_14.py pins them.

Upstream: a public veto/override on the strategy's end-of-turn decision (e.g. an
`on_end_of_turn_candidate(text, analyzer_state) -> complete | incomplete | hold` callback, given
each transcript) would remove the overrides.
"""

from __future__ import annotations

import asyncio
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
OPEN_ENDINGS = ("...", "…", ",", "-")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def looks_unfinished(text: str) -> bool:
    """Whether a transcript clearly stops mid-sentence (a dangling last word, "...", ",")."""
    text, words = text.strip(), _words(text)
    if not words:
        return False
    if text.endswith(OPEN_ENDINGS):
        return True
    dangling = DANGLING_WORDS - QUESTION_WORDS if text.endswith("?") else DANGLING_WORDS
    return words[-1] in dangling


def looks_complete(text: str) -> bool:
    """Whether a transcript is clearly a finished question or sentence."""
    text, words = text.strip(), _words(text)
    if not words or looks_unfinished(text):
        return False
    if text.endswith("?"):
        return len(words) >= MIN_QUESTION_WORDS
    return text.endswith((".", "!")) and len(words) >= MIN_STATEMENT_WORDS


class TranscriptTurnStopStrategy(TurnAnalyzerUserTurnStopStrategy):
    """Smart-turn stop strategy that the transcript can end early or hold open (bounded)."""

    def __init__(self, *, max_wait_secs: float, **kwargs):
        """`max_wait_secs` bounds how long an unfinished transcript holds the turn open; the
        other options are `TurnAnalyzerUserTurnStopStrategy`'s (`turn_analyzer`, ...)."""
        super().__init__(**kwargs)
        self._max_wait_secs = max_wait_secs
        self._turn_text = ""  # all segments of the turn so far
        self._text_complete = False
        self._text_unfinished = False
        self._hold_task: asyncio.Task | None = None

    async def _reset(self):
        await super()._reset()
        self._turn_text = ""

    async def _discard_pending_end_of_turn(self):
        await super()._discard_pending_end_of_turn()
        self._text_complete = self._text_unfinished = False
        if self._hold_task:
            await self.task_manager.cancel_task(self._hold_task)
            self._hold_task = None

    async def cleanup(self):
        if self._hold_task:
            await self.task_manager.cancel_task(self._hold_task)
            self._hold_task = None
        await super().cleanup()

    async def _handle_transcription(self, frame: TranscriptionFrame):
        self._turn_text = f"{self._turn_text} {frame.text}".strip()
        self._text_complete = looks_complete(self._turn_text)
        self._text_unfinished = looks_unfinished(self._turn_text)
        if self._text_unfinished and self._hold_task is None:
            self._hold_task = self.task_manager.create_task(self._hold(), f"{self}::_hold")
        await super()._handle_transcription(frame)  # re-checks the end of the turn

    async def _hold(self):
        """After `max_wait_secs` of an unfinished sentence, let the turn end after all."""
        await asyncio.sleep(self._max_wait_secs)
        self._hold_task = None
        self._text_unfinished = False
        self._turn_complete = True
        await self._maybe_trigger_user_turn_stopped()

    async def _maybe_trigger_user_turn_stopped(self):
        if self._text_unfinished:
            return  # the rest of the sentence is still to come (or the hold runs out)
        # The transcript overrules an "incomplete" verdict once the person has stopped talking
        # (the verdict may come before or after the transcript).
        if self._text_complete and self._vad_stopped and not self._vad_user_speaking:
            self._turn_complete = True
        await super()._maybe_trigger_user_turn_stopped()
