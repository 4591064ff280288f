"""`python -m bot worker`: a LiveKit agent worker (one avatar per dispatched room).
`python -m bot --room NAME`: run one talking avatar in a LiveKit room by hand until it empties."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import threading

from loguru import logger

from avatar_core.settings import load_settings
from bot.settings import BotSettings, WorkerSettings
from records.options import RecordsOptions

WORKER_COMMAND = "worker"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument("command", nargs="?", choices=[WORKER_COMMAND],
                        help="run as a LiveKit agent worker")
    parser.add_argument("--room", help="LiveKit room to join (without the worker)")
    args = parser.parse_args(argv)
    if (args.command is None) == (args.room is None):
        parser.error(f"give either '{WORKER_COMMAND}' or --room NAME")
    # INFO by default: at DEBUG Pipecat logs every transcript and LLM context into the log file.
    logger.remove()
    logger.add(sys.stderr, level=os.environ.get("LOGURU_LEVEL", "INFO"))
    # The one read of the environment (and the installed models) of this process.
    tree = load_settings()
    settings = BotSettings.from_tree(tree)
    records = RecordsOptions.from_settings(tree.records, cache=tree.stack.cache)
    if args.command == WORKER_COMMAND:
        from bot.worker import run

        # livekit-agents logs through the standard logging module (registration, jobs, drain).
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        asyncio.run(run(WorkerSettings.from_tree(tree), settings, records=records))
        return
    from bot.llm_warm_up import warm_up_llm
    from bot.pipeline import AvatarBot

    # As a worker's prewarmed process does: Ollama reads the system prompt while the bot joins,
    # not when the first question comes.
    threading.Thread(target=warm_up_llm, args=(settings,), name="llm-warm-up", daemon=True).start()
    logger.info(f"bot {settings.identity} joining room {args.room} at {settings.livekit_url}")
    asyncio.run(AvatarBot(settings=settings, room=args.room, records=records).run())


if __name__ == "__main__":
    main()
