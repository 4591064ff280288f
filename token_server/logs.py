"""Structured JSON logging with loguru for the token server process."""

from __future__ import annotations

import logging
import sys

from aiohttp.http_exceptions import HttpProcessingError
from loguru import logger


class _StdlibToLoguru(logging.Handler):
    """Standard-library log records (aiohttp's) into loguru. A request that is not valid HTTP
    (bad header bytes, over-long lines) is the client's mistake, answered with a 400: it is
    logged at INFO without a traceback, not as a server ERROR."""

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            logger.bind(source=record.name).info("malformed HTTP request refused: {}", exc.message)
            return
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(exception=record.exc_info).bind(source=record.name).log(
            level, record.getMessage()
        )


def configure_logging(level: str) -> None:
    """One JSON object per line on stderr (loguru `serialize`), extra fields included; the
    standard library's loggers (aiohttp) go through the same sink."""
    logger.remove()
    logger.add(sys.stderr, level=level, serialize=True)
    logging.basicConfig(handlers=[_StdlibToLoguru()], level=logging.INFO, force=True)
