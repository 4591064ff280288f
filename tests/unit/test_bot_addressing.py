"""Addressing: the name found by sound, follow-ups, and the user turns it opens."""

from __future__ import annotations

import asyncio

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    LLMContextFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies

import bot.addressing as addressing_module
from bot.addressing import MeetingAddressing, NameMatcher
from bot.settings import DEFAULT_NAME, DEFAULT_NAME_ALIASES

NAMES = {"u1": "Alice", "u2": "Bob"}
MATCHER = NameMatcher(names=(DEFAULT_NAME, *DEFAULT_NAME_ALIASES))

# What faster-whisper tiny.en wrote for "Ava, …" spoken by the test voices (embedded, Piper joe,
# espeak-ng m3/f2), with the bot's initial prompt and without it (tests/support/voices.py).
HEARD_ADDRESSED = [
    "Ava, What is the capital of France?",            # all voices, with the prompt
    "Hey Ava. How tall is Mount Everest?",            # piper, prompt
    "What do you think come out now, Ava?",           # espeak-m, prompt
    "Tell me Ava, what time mode is Paris in?",       # espeak-m, prompt
    "Ava.",                                           # every voice, prompt
    "Tell me, Abba, what time zone is Paris in?",     # piper, no prompt
    "Eva, can you help us?",                          # embedded, no prompt
    "Ava's idea was better, what do you think?",
]
# What people say to each other (and what tiny.en made of "Ava" with no prompt, which no
# matcher can recover: that is why the names go into the recogniser's prompt).
HEARD_NOT_ADDRESSED = [
    "Bob, Did you see the game last night?",
    "Have you ever been to Paris?",
    "I think it is over there, on the avatar screen.",
    "Hey man, how tall is mountain 10?",
    "Um, what is the capital of France?",
    "Tell me, Arthur, what time long is Paris in?",
    "It is one of a kind.",
    # espeak-ng live (Opus) with the prompt: "Ama" is not taken for "Ava", since folding m into
    # the lip sounds would also take "Emma" for the alias "Eva".
    "Ama. What is 2 plus 2?",
    "Emma, can you send me the notes?",
]


@pytest.mark.parametrize("text", HEARD_ADDRESSED)
def test_the_name_is_found_anywhere_as_tiny_en_wrote_it(text):
    assert MATCHER.find(text)


@pytest.mark.parametrize("text", HEARD_NOT_ADDRESSED)
def test_ordinary_talk_is_not_taken_for_the_name(text):
    assert MATCHER.find(text) is None


# The name only calls the bot: the LLM reads the message without it (a 0.5B model given
# "Carol: Tell me, Ava, how many ...?" answered "Carol, Ava!" or repeated the question).
CALLED = [
    ("Ava, what is the capital of France?", "What is the capital of France?"),
    ("Hey Ava. How tall is Mount Everest?", "How tall is Mount Everest?"),
    ("Tell me, Ava, how many days are in a week?", "Tell me, how many days are in a week?"),
    ("What is the largest ocean, Ava?", "What is the largest ocean?"),
    ("What is the largest ocean. Ava?", "What is the largest ocean?"),  # a VAD cut at the comma
    ("I see. Eva, what about Spain?", "I see. What about Spain?"),
    ("What is the capital, A va?", "What is the capital?"),
    ("How many legs does the spider have? Ava.", "How many legs does the spider have?"),
    ("Tell me Ava. How many days are in a week?", "Tell me, how many days are in a week?"),
]
# The name is part of what is said, or all of it: unchanged.
NAMED = ["Ava.", "Ava?", "What does Ava mean?", "Ava is great.", "I told Ava, she agreed.",
         "Ava's idea was better, what do you think?",
         "Bob, did you see the game?"]


@pytest.mark.parametrize(("text", "read"), CALLED)
def test_a_name_that_only_calls_the_bot_is_left_out(text, read):
    assert MATCHER.without_vocative(text) == read


@pytest.mark.parametrize("text", NAMED)
def test_a_name_the_message_needs_stays(text):
    assert MATCHER.without_vocative(text) == text


def test_a_matcher_needs_a_name():
    with pytest.raises(ValueError):
        NameMatcher(names=["hey", ""][1:])


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _said(user: str, text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text=text, user_id=user, timestamp="")


def _bot_answers() -> list:
    """The bot speaking an answer (system frames: the sleep keeps them after what came before)."""
    return [SleepFrame(sleep=0.05), BotStartedSpeakingFrame(), BotStoppedSpeakingFrame()]


def _addressing(humans: list[str], *, clock=None, only_when_addressed=True,
                call_reply="") -> MeetingAddressing:
    return MeetingAddressing(matcher=MATCHER, humans=lambda: humans, display_name=NAMES.get,
                             follow_up_secs=8.0, answer_only_when_addressed=only_when_addressed,
                             call_reply=call_reply, clock=clock or _Clock())


async def _turns(processor, frames) -> list[str]:
    """The text of each user turn opened (proposed start, transcript, proposed stop)."""
    down, _ = await run_test(processor, frames_to_send=frames)
    turns = []
    for i, frame in enumerate(down):
        if isinstance(frame, TranscriptionFrame):
            assert isinstance(down[i - 1], ProposedUserStartedSpeakingFrame)
            assert isinstance(down[i + 1], ProposedUserStoppedSpeakingFrame)
            turns.append(frame.text)
    return turns


# A turn of two transcripts, then a turn of one.
TWO_TURNS_THE_FIRST_OF_TWO_UTTERANCES = [
    "ProposedUserStartedSpeakingFrame", "TranscriptionFrame", "TranscriptionFrame",
    "ProposedUserStoppedSpeakingFrame", "ProposedUserStartedSpeakingFrame", "TranscriptionFrame",
    "ProposedUserStoppedSpeakingFrame"]


def _turn_kinds(down: list) -> list[str]:
    """The turn boundaries and transcripts pushed, by frame type."""
    kinds = (ProposedUserStartedSpeakingFrame, ProposedUserStoppedSpeakingFrame, TranscriptionFrame)
    return [type(f).__name__ for f in down if isinstance(f, kinds)]


async def test_one_person_is_always_answered_unchanged():
    turns = await _turns(_addressing(["u1"]), [_said("u1", " What time is it? ")])
    assert turns == [" What time is it? "]


async def test_group_talk_opens_a_turn_only_when_the_bot_is_named_and_names_the_speaker():
    turns = await _turns(_addressing(["u1", "u2"]), [
        _said("u1", " Bob, did you see the game? "),
        _said("u2", " What is the capital of France, Eva? "),
        _said("u1", "No, I missed it."),
    ])
    assert turns == ["Bob: What is the capital of France?"]


async def test_follow_up_inside_the_window_is_answered_and_outside_it_is_not():
    clock = _Clock()
    addressing = _addressing(["u1", "u2"], clock=clock)
    turns = await _turns(addressing, [
        _said("u1", "Ava, what is two plus two?"),
        *_bot_answers(),
        _said("u1", "And three plus three?"),      # just after the answer: a follow-up
        _said("u2", "I knew that one."),            # someone else: not
        *_bot_answers(),
    ])
    assert turns == ["Alice: What is two plus two?", "Alice: And three plus three?"]
    assert addressing.is_answering("u1") and not addressing.is_answering("u2")
    # Began to speak inside the window, transcribed after it: still a follow-up.
    clock.now += 7.0
    assert addressing.speech_started("u1")
    clock.now += 3.0
    addressing.speech_stopped("u1")  # the utterance ends; its transcript follows
    assert await _turns(addressing, [_said("u1", "And five plus five?"), *_bot_answers()]) == [
        "Alice: And five plus five?"]
    clock.now += 8.5
    assert not addressing.is_answering("u1") and not addressing.speech_started("u1")
    assert await _turns(addressing, [_said("u1", "What about four plus four?")]) == []


@pytest.mark.parametrize(("text", "only"), [
    ("Ava?", True), ("Hey Ava.", True), ("Eva!", True),
    ("Ava, what time is it?", False), ("What does Ava mean?", False), ("Hello.", False)])
def test_a_call_by_name_alone_is_told_apart(text, only):
    assert MATCHER.only_name(text) is only


async def test_a_call_by_name_alone_gets_the_call_reply_and_opens_the_follow_up():
    """"Ava?" in a group while the bot is quiet: "Yes, Bob?" without a user turn (no LLM), and
    Bob's next words, without the name, are a follow-up."""
    clock = _Clock()
    addressing = _addressing(["u1", "u2"], clock=clock, call_reply="Yes, {name}?")
    down, _ = await run_test(addressing, frames_to_send=[
        _said("u2", " Ava? "), *_bot_answers(), _said("u2", "Which animal says moo?")])
    spoken = [f.text for f in down if isinstance(f, TTSSpeakFrame)]
    assert spoken == ["Yes, Bob?"]
    assert not spoken[0].startswith("Bob:")
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == [
        "Bob: Which animal says moo?"]
    assert _turn_kinds(down) == ["ProposedUserStartedSpeakingFrame", "TranscriptionFrame",
                                 "ProposedUserStoppedSpeakingFrame"]


async def test_a_call_by_name_while_the_bot_speaks_or_going_on_is_a_turn():
    """While the bot speaks, "Ava?" interrupts it as a turn; someone who already talks on after
    the name ("Ava. | What is ...") gets one turn with both."""
    addressing = _addressing(["u1", "u2"], call_reply="Yes, {name}?")
    down, _ = await run_test(addressing, frames_to_send=[
        SleepFrame(sleep=0.05), BotStartedSpeakingFrame(), _said("u1", "Ava?")])
    assert not [f for f in down if isinstance(f, TTSSpeakFrame)]
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == ["Alice: Ava?"]
    clock = _Clock()
    addressing = _addressing(["u1", "u2"], clock=clock, call_reply="Yes, {name}?")
    _utterance(addressing, clock, "u1", after=1.0, lasting=0.5)
    addressing.speech_started("u1")  # on with the question
    down, _ = await run_test(addressing, frames_to_send=[
        _said("u1", "Ava."), _said("u1", "What is two plus two?")])
    assert not [f for f in down if isinstance(f, TTSSpeakFrame)]
    # (the turn stays open while Alice still talks: no stop frame yet)
    assert _turn_kinds(down) == ["ProposedUserStartedSpeakingFrame", "TranscriptionFrame",
                                 "TranscriptionFrame"]
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == [
        "Alice: Ava.", "Alice: What is two plus two?"]


async def test_the_person_being_answered_may_interrupt_while_the_bot_speaks():
    clock = _Clock()
    addressing = _addressing(["u1", "u2"], clock=clock)
    await _turns(addressing, [_said("u2", "Hey Ava, tell me a story."), *_bot_answers()[:2]])
    clock.now += 60  # a long answer: the window stays open while the bot speaks
    assert addressing.is_answering("u2") and not addressing.is_answering("u1")


async def test_group_without_addressing_rule_names_every_speaker():
    turns = await _turns(_addressing(["u1", "u2"], only_when_addressed=False),
                         [_said("u1", "Hello all."), _said("u2", "Hi.")])
    assert turns == ["Alice: Hello all.", "Bob: Hi."]


async def test_a_named_utterance_becomes_one_user_turn_in_pipecats_aggregator():
    """With the user aggregator the bot runs (external turn strategies): the proposed turn
    frames open and close a turn whose text is the named utterance, and the LLM is asked."""
    context = LLMContext()
    aggregator = LLMContextAggregatorPair(context, user_params=LLMUserAggregatorParams(
        user_turn_strategies=ExternalUserTurnStrategies())).user()
    down, _ = await run_test(Pipeline([_addressing(["u1", "u2"]), aggregator]), frames_to_send=[
        _said("u1", "Bob, lunch?"),
        _said("u2", "Ava, what is the capital of France?"),
        SleepFrame(sleep=0.3),
        _said("u1", "Ava, and of Spain?"),
        SleepFrame(sleep=0.3),
    ])
    users = [m["content"] for m in context.get_messages() if m["role"] == "user"]
    assert users == ["Bob: What is the capital of France?", "Alice: And of Spain?"]
    assert sum(isinstance(f, LLMContextFrame) for f in down) == 2



async def test_a_sentence_cut_by_a_pause_stays_one_turn_and_a_trailing_one_still_ends():
    """A transcript that stops mid-sentence holds the turn open for the same person's next
    utterance; a sentence that never goes on still ends its turn when the hold runs out."""
    addressing = MeetingAddressing(matcher=MATCHER, humans=lambda: ["u1"], display_name=NAMES.get,
                                   follow_up_secs=8.0, turn_max_wait_secs=0.3, clock=_Clock())
    down, _ = await run_test(addressing, frames_to_send=[
        _said("u1", "What is the capital of"),
        SleepFrame(sleep=0.1),
        _said("u1", "Japan?"),
        SleepFrame(sleep=0.5),
        _said("u1", "Tell me about"),
        SleepFrame(sleep=0.6),
    ])
    assert _turn_kinds(down) == TWO_TURNS_THE_FIRST_OF_TWO_UTTERANCES


async def test_a_speaker_who_talks_on_keeps_the_turn_until_the_rest_is_heard(monkeypatch):
    """'Wait, stop please.' is a whole sentence, but its speaker already talks on: the turn
    waits for that utterance's transcript instead of answering (and talking over) the first
    part; once they stop, it waits only for the STT (here shortened to 1 s)."""
    monkeypatch.setattr(addressing_module, "TRANSCRIPT_WAIT_SECS", 1.0)
    addressing = MeetingAddressing(matcher=MATCHER, humans=lambda: ["u1"], display_name=NAMES.get,
                                   follow_up_secs=8.0, turn_max_wait_secs=0.3, clock=_Clock())
    addressing.speech_started("u1")  # the second utterance began before the first's transcript
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, addressing.speech_stopped, "u1")
    loop.call_later(0.9, addressing.speech_started, "u1")  # talks on after "Thanks."...
    loop.call_later(1.3, addressing.speech_stopped, "u1")  # ...but that gives no transcript
    down, _ = await run_test(addressing, frames_to_send=[
        _said("u1", "Wait, stop please."),
        SleepFrame(sleep=0.5),
        _said("u1", "What is the capital of Japan?"),
        SleepFrame(sleep=0.5),
        _said("u1", "Thanks."),
        SleepFrame(sleep=1.6),
    ])
    assert _turn_kinds(down) == TWO_TURNS_THE_FIRST_OF_TWO_UTTERANCES


async def test_someone_joining_ends_the_follow_up_window():
    humans = ["u1"]
    addressing = _addressing(humans)
    turns = await _turns(addressing, [_said("u1", "What is two plus two?"), *_bot_answers()])
    assert turns == ["What is two plus two?"]
    humans.append("u2")  # Bob joins right after Alice's one-to-one answer
    assert not addressing.is_answering("u1")
    assert await _turns(addressing, [_said("u1", "Good morning, shall we start?")]) == []
    assert await _turns(addressing, [_said("u1", "Ava, what is three plus three?"),
                                     *_bot_answers(), _said("u1", "And four plus four?")]) == [
        "Alice: What is three plus three?", "Alice: And four plus four?"]
    humans.append("u3")
    assert not addressing.is_answering("u1")
    assert await _turns(addressing, [_said("u1", "Ava, and five plus five?"),
                                     *_bot_answers()]) == ["Alice: And five plus five?"]
    humans.remove("u3")  # someone leaving keeps the window
    assert addressing.is_answering("u1")


def _utterance(addressing: MeetingAddressing, clock: _Clock, who: str, *, after: float,
               lasting: float) -> None:
    """`who`'s VAD starts `after` seconds from now and stops `lasting` seconds later."""
    clock.now += after
    addressing.speech_started(who)
    clock.now += lasting
    addressing.speech_stopped(who)


async def test_a_sentence_the_vad_cut_before_the_name_reaches_the_bot_whole():
    """"What is the largest ocean, | Ava?": the VAD ended the utterance at the comma's pause, and
    only the second part names the bot; the bot gets both. A part said after a longer pause is
    another sentence and stays out."""
    clock = _Clock()
    addressing = _addressing(["u1", "u2"], clock=clock)
    _utterance(addressing, clock, "u2", after=1.0, lasting=1.5)
    _utterance(addressing, clock, "u2", after=0.15, lasting=0.6)  # on after the comma
    assert await _turns(addressing, [_said("u2", " What is the largest ocean. "),
                                     _said("u2", " Ava? ")]) == [
        "Bob: What is the largest ocean?"]
    _utterance(addressing, clock, "u1", after=20.0, lasting=1.0)
    _utterance(addressing, clock, "u1", after=1.2, lasting=1.5)  # a new sentence
    assert await _turns(addressing, [_said("u1", "I like the sea."),
                                     _said("u1", "Ava, what is two plus two?")]) == [
        "Alice: What is two plus two?"]
