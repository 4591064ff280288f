"""Who may appear as whom: the identity and display-name policy shared by the token server and
the bot.

A person must not be able to look like the avatar (its identity, its name, or a homoglyph or
punctuation variant such as ``Avа`` with a Cyrillic a, ``avatar_bot`` or ``avatar.bot``), and a
display name must not carry text that changes how the LLM reads the conversation: line breaks,
bidirectional overrides, invisible characters, or chat-template tokens such as ``<|im_start|>``.
The token server refuses such names (400); the bot cleans any name before it enters the LLM
context, because names can also come from tokens minted elsewhere.

Agents (the bot, recorders, probes) are told from people by the same rule on both sides: the
bot's identity, or an identity under an agent prefix in any case (LiveKit identities are
case-sensitive, so ``Agent-x`` must count as much as ``agent-x``). The bot joins a room under the
name it answers to, so that name is reserved like its identity.
"""

from __future__ import annotations

import re
import unicodedata

# Identity prefixes of agent participants even when their token carries no agent kind; a
# person's token may not use them (compared case-insensitively, see `agent_prefix`).
DEFAULT_AGENT_PREFIXES = ("agent-", "bot-", "avatar-")
# Words that name the avatar whatever its configured name (compared as skeletons).
RESERVED_WORDS = ("avatar", "avatarbot", "bot", "assistant", "system")
# Characters that look like Latin letters or digits in common fonts, mapped to what they imitate
# (after NFKC and casefold). Cyrillic and Greek lookalikes plus digit/letter swaps.
_CONFUSABLES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
    "ɡ": "g", "һ": "h", "ӏ": "l", "ν": "v", "α": "a", "ο": "o", "ρ": "p", "τ": "t", "ι": "i",
    "κ": "k", "χ": "x", "υ": "u", "ε": "e", "β": "b", "η": "n", "μ": "u", "ω": "w",
    "0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s",
    "!": "i", "|": "l", "ı": "i", "ł": "l", "ø": "o", "đ": "d",
})
# Chat-template control tokens of common model families (ChatML, Llama 2/3, Gemma, Mistral).
TEMPLATE_TOKENS = re.compile(
    r"<\|[^|<>]{0,40}\|>|\[/?INST\]|<</?SYS>>|</?s>|<(?:start|end)_of_turn>|<\|?eot_id\|?>",
    re.IGNORECASE,
)
# Unicode categories never allowed in a name: controls, format characters (bidi overrides,
# zero-width joiners), line/paragraph separators, surrogates, private use, unassigned.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})
MAX_NAME_LENGTH = 64


def skeleton(text: str) -> str:
    """What a name looks like, for comparisons: NFKC, casefolded, accents and separators removed,
    lookalike letters and digits mapped to the Latin letters they imitate."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return "".join(ch for ch in folded.translate(_CONFUSABLES) if ch.isalnum())


def reserved_skeletons(*names: str) -> frozenset[str]:
    """The skeletons of the avatar's own identity and name plus the generic reserved words."""
    return frozenset(s for s in map(skeleton, (*names, *RESERVED_WORDS)) if s)


def impersonates(name: str, reserved: frozenset[str]) -> bool:
    """Whether `name` looks like one of the reserved names (see `reserved_skeletons`)."""
    return skeleton(name) in reserved


def agent_prefix(identity: str, *, prefixes: tuple[str, ...]) -> str | None:
    """The agent prefix `identity` starts with, in any letter case, or None."""
    lowered = identity.lower()
    return next((p for p in prefixes if p and lowered.startswith(p.lower())), None)


def is_agent_identity(identity: str, *, bot_identity: str, prefixes: tuple[str, ...]) -> bool:
    """Whether `identity` alone marks an agent: the bot's own, or under an agent prefix (a
    participant whose LiveKit kind is agent is one too; callers that see the kind add it)."""
    return identity == bot_identity or agent_prefix(identity, prefixes=prefixes) is not None


def name_problem(name: str) -> str | None:
    """Why `name` is not acceptable as a display name or identity, or None when it is."""
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in name):
        return "must not contain control, invisible or text-direction characters"
    if TEMPLATE_TOKENS.search(name):
        return "must not contain chat-template tokens"
    return None


def safe_display_name(name: str, *, fallback: str = "Someone") -> str:
    """`name` made safe to put in an LLM context: forbidden characters and template tokens
    removed, whitespace collapsed, at most MAX_NAME_LENGTH characters; `fallback` when empty."""
    text = unicodedata.normalize("NFKC", name)
    text = "".join(" " if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES else ch for ch in text)
    while (cleaned := TEMPLATE_TOKENS.sub(" ", text)) != text:
        text = cleaned
    text = " ".join(text.replace(":", " ").split())[:MAX_NAME_LENGTH].strip()
    return text or fallback
