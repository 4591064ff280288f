"""Meetings: who said what, and whether it was said to the bot (ARCHITECTURE §7).

Sits between the STT and the user context aggregator, which runs Pipecat's external turn
strategies: this processor decides which utterances open a user turn. With one person in the
room every utterance is for the bot. With several, an utterance is for the bot when it says
the bot's name or an alias anywhere (matched by sound, since a small recogniser misspells a
rare name: "Ava" comes out as "Eva", "Ave", "Aba"), or when its speaker is the person the
bot is answering or just answered (a follow-up window, judged when they begin to speak).
Those utterances enter the LLM context as "Name: text" (without the name where it only calls
the bot: "Carol: Tell me, how many days are in a week?") and may interrupt the bot; the rest
of the meeting's talk neither gets an answer nor interrupts. When the VAD cut a sentence at a
short pause and only its second part names the bot, the first part goes with it.

A turn ends with its utterance unless its speaker already talks on (a short pause between two
sentences: "Wait, stop. What is the capital of Japan?"), or the transcript clearly stops
mid-sentence ("What is the capital of"): then the turn stays open for the same person's next
utterance (at most `turn_max_wait_secs` for an unfinished sentence they have not continued),
so the bot neither answers half a question nor talks over the rest of it.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable, Iterable

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from processors.turns.transcript_turn_stop import looks_unfinished

# Words that only lead into a name ("Hey Ava"): an alias written with one is matched by its
# name alone, so "hey" itself never addresses the bot.
_LEAD_INS = frozenset({"hey", "hi", "hello", "ok", "okay", "oh", "so", "and"})
# Short phrases that only lead into a call by name ("Tell me Ava. How many ..."; Whisper often
# drops the comma after them).
CALL_PHRASES = frozenset({"tell me", "excuse me", "sorry", "please", "listen", "look", "say"})
# Longest wait for the transcript of an utterance that continues a held turn while its speaker
# still talks, and once they stopped (the STT's time for one utterance, with room for load).
CONTINUATION_WAIT_SECS = 10.0
TRANSCRIPT_WAIT_SECS = 4.0
# A person who starts again within this long of their VAD's stop goes on with the same sentence
# (the VAD ended it at a pause about its stop time long, as at a comma): "What is the largest
# ocean, | Ava?" or "Tell me, | Ava, ...". If the part that names the bot follows a part that did
# not, the bot gets both.
FRAGMENT_GAP_SECS = 0.5
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def sound_key(word: str) -> str:
    """A small phonetic key: the word's consonant skeleton with look-alike sounds merged.

    Vowels collapse to one mark and the lip consonants (b, p, f, v, w) to one, since a small
    recogniser swaps them ("Ava" → "Eva", "Abba"); hard c/g/k/q and d/t and s/z merge; doubled
    letters and an "r" or "h" after a vowel drop ("Ever" keys like "Ava"; the spelling check in
    `_sounds_like` then tells them apart).
    """
    word = _undouble(word.lower().replace("'s", "").replace("'", "").replace("ph", "f"))
    word = re.sub(r"(?<=[aeiouy])[rh](?=[aeiouy]|$)", "", word)
    key = ""
    for ch in word:
        token = "*" if ch in "aeiouy" else _SOUNDS.get(ch, ch)
        if not key.endswith(token):
            key += token
    return key


_SOUNDS = {
    "b": "f",
    "p": "f",
    "v": "f",
    "w": "f",
    "d": "t",
    "g": "k",
    "c": "k",
    "q": "k",
    "z": "s",
    "x": "ks",
}


def _undouble(word: str) -> str:
    return re.sub(r"(.)\1+", r"\1", word)


def _edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


class NameMatcher:
    """Finds the bot's name or an alias anywhere in an utterance, by sound and spelling."""

    def __init__(self, *, names: Iterable[str]):
        """`names`: the bot's name and aliases ("Ava", "Eva", "Hey Ava"); case is ignored."""
        self._names: list[tuple[str, ...]] = []
        for name in names:
            words = tuple(_WORD.findall(name.lower()))
            while len(words) > 1 and words[0] in _LEAD_INS:
                words = words[1:]
            if words and words not in self._names:
                self._names.append(words)
        if not self._names:
            raise ValueError("the bot needs at least one name to be addressed by")

    def find(self, text: str) -> str | None:
        """The words of `text` heard as the bot's name, or None when it is not named."""
        span = self.locate(text)
        return None if span is None else " ".join(_WORD.findall(text[span[0]:span[1]].lower()))

    def locate(self, text: str) -> tuple[int, int] | None:
        """Where in `text` (start, end characters) the bot's name was first heard, or None."""
        found = list(_WORD.finditer(text.lower()))
        words = [m.group(0) for m in found]
        for name in self._names:
            for start in range(len(words) - len(name) + 1):
                heard = words[start : start + len(name)]
                if all(_sounds_like(h, n) for h, n in zip(heard, name, strict=True)):
                    return found[start].start(), found[start + len(name) - 1].end()
            # A name split by the recogniser: "Ava" heard as "A va".
            joined = "".join(name)
            for start in range(len(words) - 1):
                if _sounds_like(words[start] + words[start + 1], joined, strict=True):
                    return found[start].start(), found[start + 1].end()
        return None

    def only_name(self, text: str) -> bool:
        """Whether `text` says nothing but the bot's name ("Ava?", "Hey Ava.")."""
        span = self.locate(text)
        rest = f"{text[: span[0]]} {text[span[1] :]}" if span else text
        return span is not None and all(w in _LEAD_INS for w in _WORD.findall(rest.lower()))

    def without_vocative(self, text: str) -> str:
        """`text` without the name when it only calls the bot ("Ava, what is ...?", "Tell me,
        Ava, ...", "... ocean, Ava?"), so the LLM reads the question as asked of it.

        A small model given "Carol: Tell me, Ava, how many days are in a week?" answered "Carol,
        Ava!", "Ava tells Carol that ..." or repeated the question before the answer
        (bench/results/llm_answer_meeting.json). A name the sentence is about ("What does Ava
        mean?"), a possessive, and a name said alone (the whole message) stay.
        """
        span = self.locate(text)
        if span is None or text[span[0] : span[1]].lower().endswith("'s"):
            return text
        before, after = text[: span[0]], text[span[1] :].lstrip()
        if after and after[0] not in ",.!?;:-":
            return text  # the name goes on into the sentence: "Ava is ..."
        lead = " ".join(w for w in _WORD.findall(before.lower()) if w not in _LEAD_INS)
        if not lead or lead in CALL_PHRASES:  # "Ava, what ...", "Tell me Ava. How ..."
            rest = after.lstrip(" ,.!?;:-")
            if not _WORD.search(rest.lower()):
                return text
            if not lead:
                return rest[:1].upper() + rest[1:]
            if not re.match(r"I\b", rest):
                rest = rest[:1].lower() + rest[1:]
            return f"{before.rstrip(' ,.!?;:-')}, {rest}"
        head = before.rstrip()
        if not head.endswith((",", ".", "!", "?")):
            return text  # "I told Ava."
        if after.startswith(","):
            rest = after[1:].lstrip()
            if head.endswith(","):  # "Tell me, Ava, how ..."
                return f"{head} {rest}"
            return f"{head} {rest[:1].upper()}{rest[1:]}"  # "I see. Ava, what ..."
        if head.endswith(("!", "?")):
            return head  # "How many legs does a spider have? Ava."
        return head.rstrip(",.") + after  # "... ocean, Ava?", "... ocean. Ava?" (a VAD cut)


def _sounds_like(heard: str, name: str, *, strict: bool = False) -> bool:
    """Same word, or the same sound key with a spelling at most ~a third different."""
    heard = heard.removesuffix("'s")
    if heard == name:
        return True
    if strict or sound_key(heard) != sound_key(name):
        return False
    return _edit_distance(_undouble(heard), _undouble(name)) <= max(1, len(name) // 3)


class MeetingAddressing(FrameProcessor):
    """Turns utterances meant for the bot into user turns; drops group talk not meant for it."""

    def __init__(
        self,
        *,
        matcher: NameMatcher,
        humans: Callable[[], list[str]],
        display_name: Callable[[str], str],
        follow_up_secs: float,
        turn_max_wait_secs: float = 1.5,
        answer_only_when_addressed: bool = True,
        call_reply: str = "",
        clock: Callable[[], float] = time.monotonic,
        **kwargs,
    ):
        """Create the addressing stage.

        Args:
            matcher: Finds the bot's name in a transcript.
            humans: Lists the people (not agents) in the room.
            display_name: The name a participant's identity is shown with.
            follow_up_secs: How long after the bot stops answering a person that person may go
                on without the name.
            turn_max_wait_secs: How long a turn whose transcript stops mid-sentence waits for
                the rest of the sentence.
            answer_only_when_addressed: False answers everyone in a group too (names kept).
            call_reply: Said instead of asking the LLM when someone in a group only says the
                bot's name while it is quiet ("Yes, {name}?"; empty: the LLM answers).
            clock: Monotonic seconds (tests pass their own).
        """
        super().__init__(**kwargs)
        self._matcher = matcher
        self._humans = humans
        self._display_name = display_name
        self._follow_up_secs = follow_up_secs
        self._turn_max_wait_secs = turn_max_wait_secs
        # The person whose turn is open (held for the rest of a sentence), and its text so far.
        self._open_turn: str | None = None
        self._turn_text = ""
        self._hold_task: asyncio.Task | None = None
        self._only_when_addressed = answer_only_when_addressed
        self._call_reply = call_reply
        self._bot_speaking = False
        self._clock = clock
        self._answering: str | None = None
        self._follow_up_until = 0.0
        # How many people were in the room when the window began: someone joining ends it (a
        # person answered one-to-one may now be talking to the newcomer).
        self._follow_up_people = 0
        # Whether each person's utterance in progress began inside their follow-up window.
        self._began_as_follow_up: dict[str, bool] = {}
        # The people talking now (between their VAD's start and stop).
        self._speaking: set[str] = set()
        # When each person's last utterance ended, whether the one in progress began right after
        # it (FRAGMENT_GAP_SECS), and the text of their last utterance not for the bot.
        self._stopped_at: dict[str, float] = {}
        self._goes_on: dict[str, bool] = {}
        self._unaddressed: dict[str, str] = {}

    def is_answering(self, identity: str) -> bool:
        """Whether `identity` is the person the bot answers now or within the follow-up window
        (which someone joining ends); in a 1:1 call the one person always is."""
        humans = self._humans()
        if len(humans) <= 1:
            return identity in humans
        return (identity == self._answering and self._clock() < self._follow_up_until
                and len(humans) <= self._follow_up_people)

    def _open_follow_up(self, until: float) -> None:
        self._follow_up_until = until
        self._follow_up_people = len(self._humans())

    def speech_started(self, identity: str) -> bool:
        """A person began to speak: notes whether they began inside their follow-up window (the
        transcript comes later) and returns whether they may interrupt the bot now."""
        answering = self.is_answering(identity)
        self._began_as_follow_up[identity] = answering
        self._speaking.add(identity)
        gap = self._clock() - self._stopped_at.get(identity, -math.inf)
        self._goes_on[identity] = gap <= FRAGMENT_GAP_SECS
        if not self._goes_on[identity]:
            self._unaddressed.pop(identity, None)  # a new sentence: the last one stays apart
        if identity == self._open_turn and self._hold_task is not None:
            # They go on with the sentence: the turn waits for this utterance's transcript.
            self._hold_turn(CONTINUATION_WAIT_SECS)
        if answering:
            logger.debug(f"{self}: {identity} speaks as the person the bot answers")
        return answering

    def speech_stopped(self, identity: str) -> None:
        """A person's utterance ended: a turn held for it waits only for its transcript now."""
        self._speaking.discard(identity)
        self._stopped_at[identity] = self._clock()
        if identity == self._open_turn and self._hold_task is not None:
            self._hold_turn(TRANSCRIPT_WAIT_SECS)

    def addressed(self, identity: str, text: str) -> bool:
        """Whether an utterance is for the bot (and why, in the log)."""
        if len(self._humans()) <= 1 or not self._only_when_addressed:
            return True
        if (heard := self._matcher.find(text)) is not None:
            logger.info(f"{self}: {identity} named the bot ({heard!r})")
            return True
        if self._began_as_follow_up.pop(identity, False) or self.is_answering(identity):
            logger.info(f"{self}: follow-up from {identity}")
            return True
        return False

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Open a user turn for each utterance meant for the bot, named in a group."""
        await super().process_frame(frame, direction)
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
            self._open_follow_up(math.inf)
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
            self._open_follow_up(self._clock() + self._follow_up_secs)
        if not isinstance(frame, TranscriptionFrame) or not frame.text.strip():
            await self.push_frame(frame, direction)
            return
        if not self.addressed(frame.user_id, frame.text):
            logger.debug(f"{self}: not for the bot: {frame.user_id}: {frame.text.strip()!r}")
            self._unaddressed[frame.user_id] = frame.text.strip()
            return
        self._answering = frame.user_id
        self._open_follow_up(math.inf)
        if len(self._humans()) > 1:
            name = self._display_name(frame.user_id) if frame.user_id else "Someone"
            text = frame.text.strip()
            before = self._unaddressed.pop(frame.user_id, None)
            if before and self._goes_on.get(frame.user_id):
                logger.info(f"{self}: {frame.user_id} went on from {before!r}")
                text = f"{before} {text}"
            if await self._answered_call(frame.user_id, name, text):
                return
            frame = TranscriptionFrame(
                text=f"{name}: {self._matcher.without_vocative(text)}",
                user_id=frame.user_id,
                timestamp=frame.timestamp,
                language=frame.language,
                finalized=frame.finalized,
            )
        await self._cancel_hold()
        if self._open_turn != frame.user_id:
            await self._close_turn()
            await self.push_frame(ProposedUserStartedSpeakingFrame(), direction)
            self._open_turn, self._turn_text = frame.user_id, ""
        self._turn_text = f"{self._turn_text} {frame.text}".strip()
        await self.push_frame(frame, direction)
        if frame.user_id in self._speaking:
            # They already talk on: what they are saying belongs to this turn.
            self._hold_turn(CONTINUATION_WAIT_SECS)
        elif looks_unfinished(self._turn_text):
            self._hold_turn(self._turn_max_wait_secs)
        else:
            await self._close_turn()

    async def _answered_call(self, identity: str, name: str, text: str) -> bool:
        """Answer someone who only called the bot by name ("Ava?") with the call reply, without
        the LLM, when the bot is quiet and they did not go on talking; their next words are then
        a follow-up. (A small model answered "Bob: Ava." with "Bob confirms that Ava's answer is
        correct", and copied that from its history into the replies after it.)"""
        if (not self._call_reply or self._bot_speaking or self._open_turn is not None
                or identity in self._speaking or not self._matcher.only_name(text)):
            return False
        logger.info(f"{self}: {identity} called the bot by name; answering the call")
        await self.push_frame(TTSSpeakFrame(self._call_reply.format(name=name),
                                            append_to_context=False))
        return True

    async def _close_turn(self) -> None:
        """End the open user turn, if any."""
        if self._open_turn is not None:
            self._open_turn = None
            await self.push_frame(ProposedUserStoppedSpeakingFrame())

    def _hold_turn(self, delay_s: float) -> None:
        """Keep the open turn open `delay_s` more seconds (replacing any earlier hold)."""
        if self._hold_task is not None:
            self._hold_task.cancel()
        self._hold_task = self.create_task(self._close_turn_later(delay_s), f"{self}::hold")

    async def _close_turn_later(self, delay_s: float) -> None:
        """A sentence left unfinished: wait for its rest, then end the turn all the same."""
        await asyncio.sleep(delay_s)
        self._hold_task = None
        await self._close_turn()

    async def _cancel_hold(self) -> None:
        if self._hold_task is not None:
            task, self._hold_task = self._hold_task, None
            await self.cancel_task(task)

    async def cleanup(self):
        """Stop a pending hold with the pipeline."""
        await self._cancel_hold()
        await super().cleanup()
