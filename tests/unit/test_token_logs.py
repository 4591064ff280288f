"""The token server logs one JSON object per line, with the bound fields."""

from __future__ import annotations

import json
import sys

from loguru import logger

from token_server.logs import configure_logging


def test_log_lines_are_json_with_extra_fields(capsys):
    try:
        configure_logging("INFO")
        logger.bind(room="lobby", status=200).info("http request")
        logger.debug("below the level")
    finally:
        logger.remove()
        logger.add(sys.stderr)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    record = json.loads(lines[0])["record"]
    assert record["message"] == "http request"
    assert record["extra"] == {"room": "lobby", "status": 200}
    assert record["level"]["name"] == "INFO"
