"""`python -m bot --room NAME`: run one talking avatar in a LiveKit room until it empties."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from loguru import logger

from bot.pipeline import AvatarBot
from bot.settings import BotSettings
from records.options import RecordsOptions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument("--room", required=True, help="LiveKit room to join")
    args = parser.parse_args(argv)
    # INFO by default: at DEBUG Pipecat logs every transcript and LLM context into the log file.
    logger.remove()
    logger.add(sys.stderr, level=os.environ.get("LOGURU_LEVEL", "INFO"))
    settings = BotSettings.from_env()
    logger.info(f"bot {settings.identity} joining room {args.room} at {settings.livekit_url}")
    records = RecordsOptions.from_env()
    asyncio.run(AvatarBot(settings=settings, room=args.room, records=records).run())


if __name__ == "__main__":
    main()
