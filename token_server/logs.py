"""Structured JSON logging with loguru for the token server process."""

from __future__ import annotations

import sys

from loguru import logger


def configure_logging(level: str) -> None:
    """One JSON object per line on stderr (loguru `serialize`), extra fields included."""
    logger.remove()
    logger.add(sys.stderr, level=level, serialize=True)
