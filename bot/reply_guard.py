"""Makes sure every answered turn is heard, and heard in the conversation's language.

Placed right after the LLM service. It holds the reply's text one sentence at a time and
judges it before the voice speaks it (each judged sentence goes to the TTS whole, as a sentence
aggregation, so the voice starts on it at once instead of waiting for the next one):
- a reply drifting into another language (small models sometimes switch to French after a
  question that names France) or into a list (which sounds like a recited document) is not
  spoken: the LLM is asked once more with a short reminder, and when that reply drifts too,
  the person hears `off_track_notice`;
- a reply that starts with a speaker label ("Dana: ...", the format the meeting context uses for
  what people said) has the label dropped: the bot would otherwise read it out;
- when a response ends without any text, or the LLM reported an error during it (Ollama
  stopped, unreachable, model missing), the person hears a short notice instead of silence.
Notices are not added to the LLM context, and the next turn runs the LLM again as usual, so the
bot recovers on its own. `counts` tells how often each case fired.

The hold of a reply's first sentence is reported as Pipecat's text-aggregation metric: it is the
LLM writing that sentence, and the TTS's own aggregation, which starts only when the sentence is
released whole, would report it as next to nothing (the latency breakdown would then count the
writing as speech synthesis).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache

from loguru import logger
from pipecat.frames.frames import (
    AggregatedTextFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMMessagesAppendFrame,
    LLMTextFrame,
    TTSSpeakFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.utils.string import match_endofsentence
from pipecat.utils.text.base_text_aggregator import TextType

# Characters that may end a sentence in streamed reply text (Pipecat's matcher decides).
SENTENCE_END = re.compile(r"[.!?;:\n]")
# A list item at the start of a line: "- x", "* x", "• x", "1. x", "2) x".
LIST_ITEM = re.compile(r"(?:^|\n)\s*(?:[-*•]|\d+[.)])\s+\S")
# Letters of scripts other than Latin (Cyrillic, Greek, CJK, Arabic, ...).
NON_LATIN_LETTER = re.compile(r"[^\W\d_a-zA-Z\u00C0-\u024F]")
# langdetect guesses poorly below a few words ("Piano." → Italian), so shorter text is not judged.
MIN_WORDS_TO_JUDGE = 4
# Below this probability of the conversation's language (with the prior below), text is foreign.
MIN_LANGUAGE_PROBABILITY = 0.2
# Languages a reply is told apart from, and the weight the expected one gets before any evidence:
# small models drift into these (Dutch is left out: short English often reads as Dutch).
CANDIDATE_LANGUAGES = ("en", "fr", "es", "de", "it", "pt", "zh-cn", "ru", "ja")
EXPECTED_LANGUAGE_PRIOR = 0.6

# Function words: a text langdetect calls foreign is foreign only when it has at least as many of
# another candidate language's as of English's. Short English answers without them ("Nine plus
# one equals ten.") read as Dutch or German to langdetect; a sentence in French, Spanish, German,
# Italian or Portuguese hardly goes without its articles and prepositions (words that are also
# common English, such as "die", "son", "was", "come", "a", "in", are left out of these lists).
ENGLISH_FUNCTION_WORDS = frozenset(
    "the a an is are was were be been am i i'm i'd you you're he she it it's we they me my your "
    "his her its our their this that these those of to in on at by for from with about into and "
    "or but not no yes do does did have has had can could will would should what which who how "
    "why where when there here than very".split())
FOREIGN_FUNCTION_WORDS = frozenset(
    # French
    "le la les est et des du une un je vous nous il elle ils elles pour que qui pas avec dans sur "
    "sont c'est très mais ou au aux ce cette de l'on d'un d'une qu'il "
    # Spanish
    "el los las es y una del por para con está están muy pero como su sus se lo al hay también "
    "más "
    # German
    "der das ist und ein eine einen ich nicht zu mit sie dem des auf für von sind auch wir ihr "
    "wie oder aber bei nach noch im vom zum zur "
    # Italian
    "è di che non gli sono della delle degli anche molto questo questa nel nella "
    # Portuguese
    "é um uma não com os da dos das em mais muito são".split())
LANGUAGE = "language"
LIST = "list"
EMPTY = "empty"
LLM_ERROR = "llm_error"
REGENERATED = "regenerated"
NOTICE = "off_track_notice"
SPEAKER_LABEL = "speaker_label"
# Labels a chat model may put before its reply besides the names in the room.
GENERIC_SPEAKER_LABELS = ("Assistant", "Someone")


@lru_cache(maxsize=1)
def _language_factory():
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(0)  # the same verdict for the same text
    return factory


def warm_up_language_detector() -> None:
    """Load the language profiles now (about a second of blocking work on first use, which
    would otherwise fall on the first reply of a room)."""
    _language_factory()


def language_probability(text: str, language: str) -> float:
    """The probability (langdetect, with a prior for `language`) that text is in `language`."""
    detector = _language_factory().create()
    others = (1 - EXPECTED_LANGUAGE_PRIOR) / (len(CANDIDATE_LANGUAGES) - 1)
    detector.set_prior_map({lang: EXPECTED_LANGUAGE_PRIOR if lang == language else others
                            for lang in CANDIDATE_LANGUAGES})
    detector.append(text)
    return next((p.prob for p in detector.get_probabilities() if p.lang == language), 0.0)


def off_track(text: str, language: str = "en") -> str | None:
    """Why text should not be spoken in a `language` conversation (LIST, LANGUAGE) or None."""
    if LIST_ITEM.search(text):
        return LIST
    letters = re.findall(r"[^\W\d_]", text)
    if letters and len(NON_LATIN_LETTER.findall(text)) > len(letters) / 4:
        return LANGUAGE
    if len(re.findall(r"[^\W\d_]+", text)) < MIN_WORDS_TO_JUDGE:
        return None
    if language_probability(text, language) < MIN_LANGUAGE_PROBABILITY and (
            language != "en" or _reads_foreign(text)):
        return LANGUAGE
    return None


def _reads_foreign(text: str) -> bool:
    """Whether the text's function words are another language's rather than English's."""
    words = re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", text.lower())
    foreign = sum(w in FOREIGN_FUNCTION_WORDS for w in words)
    return foreign > 0 and foreign >= sum(w in ENGLISH_FUNCTION_WORDS for w in words)


class LLMReplyGuard(FrameProcessor):
    """Holds each reply sentence until it is judged; speaks notices instead of silence."""

    def __init__(
        self,
        *,
        llm: FrameProcessor,
        unreachable_notice: str,
        empty_notice: str,
        off_track_notice: str,
        reminder: str,
        language: str = "en",
        speaker_names: Callable[[], Iterable[str]] = tuple,
        **kwargs,
    ):
        """`llm` is the service right before this guard; its `on_error` events are watched.
        `reminder` is the system message added to the context when a reply is asked again.
        `speaker_names` gives the names a reply may wrongly start with as a label (the bot's
        and the people's in the room)."""
        super().__init__(**kwargs)
        self._speaker_names = speaker_names
        self._unreachable_notice = unreachable_notice
        self._empty_notice = empty_notice
        self._off_track_notice = off_track_notice
        self._reminder = reminder
        self._language = language
        self.counts: Counter[str] = Counter()
        self._in_response = False
        self._got_text = False
        self._llm_failed = False
        self._held = ""  # reply text not yet judged
        self._spoken = ""
        self._rejected: str | None = None
        self._retrying = False
        # The LLM pushes its ErrorFrame upstream, away from this guard, so listen to the event.
        llm.add_event_handler("on_error", self._on_llm_error)

    def can_generate_metrics(self) -> bool:
        return True  # the first sentence's hold, as text aggregation

    async def _on_llm_error(self, _llm: FrameProcessor, error: ErrorFrame):
        logger.warning(f"{self}: LLM error during the reply: {error.error}")
        self._llm_failed = True

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMTextFrame) and direction == FrameDirection.DOWNSTREAM:
            await self._hold(frame)
            return
        if isinstance(frame, LLMFullResponseEndFrame) and self._in_response:
            await self._release(final=True)
        await self.push_frame(frame, direction)

        if isinstance(frame, LLMFullResponseStartFrame):
            self._in_response, self._got_text, self._llm_failed = True, False, False
            self._held, self._spoken, self._rejected = "", "", None
        elif isinstance(frame, InterruptionFrame):
            self._in_response, self._retrying, self._held = False, False, ""
        elif isinstance(frame, LLMFullResponseEndFrame) and self._in_response:
            self._in_response = False
            await self._end_of_response()

    async def _hold(self, frame: LLMTextFrame):
        if not self._in_response or self._rejected:
            return  # the rest of a rejected or interrupted reply is never spoken unjudged
        if not self._held and not self._spoken:
            await self.start_text_aggregation_metrics()
        self._held += frame.text
        if SENTENCE_END.search(self._held):
            await self._release(final=False)

    def _complete_sentences(self) -> int:
        """How much of the held text is whole sentences: each ends where Pipecat's sentence
        matcher says, once some text follows it ("3." may go on as "3.5")."""
        end = 0
        while eos := match_endofsentence(self._held[end:], language=self._language):
            if not self._held[end + eos:].strip():
                break
            end += eos
        return end

    async def _release(self, *, final: bool):
        """Judge the held sentences (with what was spoken before them) and hand them to the TTS
        as one sentence aggregation, or reject them; the rest of the text stays held."""
        if self._rejected or not self._held:
            return
        if not self._spoken:
            self._drop_speaker_label()
        end = len(self._held) if final else self._complete_sentences()
        held, self._held = self._held[:end], self._held[end:]
        if not held:
            return
        reason = off_track(self._spoken + held, self._language) or off_track(held, self._language)
        if reason:
            self._rejected, self._held = reason, ""
            self.counts[reason] += 1
            logger.warning(f"{self}: reply not spoken ({reason}): {held!r}")
            return
        await self.stop_text_aggregation_metrics()  # only the first sentence's was started
        if text := held.strip():
            # Whole sentences: the TTS speaks them at once rather than wait, as it does for
            # streamed text, for the next sentence's first letter (which this guard holds).
            await self.push_frame(AggregatedTextFrame(text, TextType.SENTENCE))
        self._spoken += held
        self._got_text = self._got_text or bool(text)
        if final:
            self._spoken = ""

    def _drop_speaker_label(self) -> None:
        """Drop a leading "Name:" (and white space) from the held start of a reply."""
        names = {n.strip() for n in (*self._speaker_names(), *GENERIC_SPEAKER_LABELS)} - {""}
        pattern = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        label = re.match(rf"\s*(?:{pattern})\s*:\s*", self._held, re.IGNORECASE)
        if label:
            self.counts[SPEAKER_LABEL] += 1
            logger.debug(f"{self}: dropped the speaker label {label.group().strip()!r}")
        self._held = self._held[label.end():] if label else self._held.lstrip()

    async def _end_of_response(self):
        retrying, self._retrying = self._retrying, False
        notice = None
        if self._llm_failed:
            notice, key = self._unreachable_notice, LLM_ERROR
        elif self._rejected and not self._got_text and not retrying:
            self.counts[REGENERATED] += 1
            self._retrying = True
            logger.info(f"{self}: asking the LLM again with a reminder")
            message = {"role": "system", "content": self._reminder}
            await self.push_frame(LLMMessagesAppendFrame(messages=[message], run_llm=True),
                                  FrameDirection.UPSTREAM)
        elif self._rejected and not self._got_text:
            notice, key = self._off_track_notice, NOTICE
        elif not self._got_text:
            notice, key = self._empty_notice, EMPTY
        if notice:
            self.counts[key] += 1
            logger.info(f"{self}: speaking notice {notice!r}")
            await self.push_frame(TTSSpeakFrame(notice, append_to_context=False))
