"""The browser client's protocol names (client/src/protocol.js) are the server's."""

from __future__ import annotations

import re
from pathlib import Path

import pipecat.processors.frameworks.rtvi.models as RTVI

from bot.pipeline import FACE_FALLBACK_MESSAGE_TYPE, LATENCY_MESSAGE_TYPE
from processors.timing import TTS_TIMING_MESSAGE_TYPE

PROTOCOL_JS = Path(__file__).resolve().parents[2] / "client" / "src" / "protocol.js"


def js_constants() -> dict[str, str]:
    return dict(re.findall(r'^export const (\w+) = "([^"]*)";$', PROTOCOL_JS.read_text(), re.M))


def test_client_protocol_names_match_the_server():
    assert js_constants() == {
        "BOT_TTS_TIMING": TTS_TIMING_MESSAGE_TYPE,
        "BOT_LATENCY": LATENCY_MESSAGE_TYPE,
        "FACE_ENGINE_FALLBACK": FACE_FALLBACK_MESSAGE_TYPE,
        "BOT_INTERRUPTED": RTVI.BotInterruptedMessage.model_fields["type"].default,
    }
