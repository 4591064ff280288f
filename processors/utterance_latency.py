"""Pipecat's user→bot latency breakdown, measured from the end of the person's utterance.

`UserBotLatencyObserver` anchors a turn at `VADUserStoppedSpeakingFrame` and clears its per-turn
state on every `InterruptionFrame` (to drop the metrics of a cancelled reply). In Pipecat's own
order the turn-opening interruption comes first, then the VAD stop. Here the utterance is whole
before the turn opens: `ParticipantSpeechSegmenter` emits the VAD stop with the audio, the STT
transcribes it, and only then does `Addressing` open the user turn, whose interruption cleared
the anchor. The breakdown then fell back to "from the client connecting": its `total_secs` grew
with every turn (6.9 s, 15.8 s, ... 245 s over 32 turns in bench/conversation_bench.py), a
"pipeline" share held all of it, and the STT's TTFB was dropped.

`UtteranceLatencyObserver` keeps the turn's anchor, its VAD-stop and transcript moments and the
TTFB measured since, across an interruption that comes after the utterance ended and before the
LLM was asked, which is the one that opens that turn. Everything else is the parent's.

This module is the one place that reads the parent's private state (`_user_stopped_time`,
`_user_turn_start_time`, `_moments`, `_ttfb`, `_seen`, `_MomentKind`);
tests/unit/test_utterance_latency_pipecat_1_14.py pins them and the behaviour worked around.

Upstream: anchoring at `UserStoppedSpeakingFrame`'s utterance end, or not clearing the anchor on
an interruption that opens a user turn, would remove this class.
"""

from __future__ import annotations

from pipecat.frames.frames import InterruptionFrame
from pipecat.observers.base_observer import FramePushed
from pipecat.observers.user_bot_latency_observer import UserBotLatencyObserver, _MomentKind
from pipecat.processors.frame_processor import FrameDirection

# The moments of the utterance itself, which its turn-opening interruption must not drop.
UTTERANCE_MOMENTS = frozenset({_MomentKind.VAD_STOP, _MomentKind.TRANSCRIPT})


class UtteranceLatencyObserver(UserBotLatencyObserver):
    """A `UserBotLatencyObserver` whose turn starts when the person stopped speaking, also when
    the user turn opens after the utterance was transcribed."""

    async def on_push_frame(self, data: FramePushed):
        """Let the parent see the frame; restore the utterance's state after the interruption
        that opens its turn."""
        anchor = self._anchor_of_the_turn_it_opens(data)
        if anchor is None:
            await super().on_push_frame(data)
            return
        moments = [m for m in self._moments if m.kind in UTTERANCE_MOMENTS]
        ttfb = [t for t in self._ttfb if t.start_time >= anchor]
        await super().on_push_frame(data)
        self._user_turn_start_time, self._moments, self._ttfb = anchor, moments, ttfb

    def _anchor_of_the_turn_it_opens(self, data: FramePushed) -> float | None:
        """The ended utterance's anchor when `data` is the interruption that opens its turn
        (after the utterance ended, before the LLM was asked), else None."""
        if (
            data.direction == FrameDirection.DOWNSTREAM
            and isinstance(data.frame, InterruptionFrame)
            and self._user_stopped_time is not None
            and not self._seen(_MomentKind.LLM_REQUEST)
        ):
            return self._user_turn_start_time
        return None
