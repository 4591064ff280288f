"""The transcript turn-stop strategy (processors/turns/transcript_turn_stop.py) against the pinned
Pipecat 1.14: the parent's private turn state and hooks it builds on are checked on a real
strategy, so an upgrade that renames one fails here, by name."""

from __future__ import annotations

import inspect
from unittest.mock import Mock

import pipecat
from pipecat.audio.turn.base_turn_analyzer import BaseTurnAnalyzer
from pipecat.turns.user_stop.turn_analyzer_user_turn_stop_strategy import (
    TurnAnalyzerUserTurnStopStrategy as Parent,
)

from processors.turns.transcript_turn_stop import TranscriptTurnStopStrategy

PINNED = "1.14"
HOOKS = ("_reset", "_discard_pending_end_of_turn", "_handle_transcription",
         "_maybe_trigger_user_turn_stopped")
STATE = ("_turn_complete", "_vad_stopped", "_vad_user_speaking")


def test_the_pinned_version():
    assert pipecat.__version__.startswith(PINNED), (
        f"Pipecat {pipecat.__version__}: re-check processors/turns/transcript_turn_stop.py "
        f"against this version's TurnAnalyzerUserTurnStopStrategy and rename this test")


def test_the_parent_hooks_the_strategy_overrides():
    for hook in HOOKS:
        assert inspect.iscoroutinefunction(getattr(Parent, hook, None)), hook
    # A finalized transcript re-checks the end of the turn through the overridden hook.
    assert "self._maybe_trigger_user_turn_stopped()" in inspect.getsource(
        Parent._handle_transcription)


def test_the_parent_turn_state_the_strategy_reads_and_sets():
    strategy = TranscriptTurnStopStrategy(max_wait_secs=1.0,
                                          turn_analyzer=Mock(spec=BaseTurnAnalyzer))
    assert {name: getattr(strategy, name, None) for name in STATE} == dict.fromkeys(STATE, False)
    assert "if not self._turn_complete:" in inspect.getsource(
        Parent._maybe_trigger_user_turn_stopped)
