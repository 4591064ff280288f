"""`python -m bot worker`: a LiveKit agent worker (one avatar per dispatched room).
`python -m bot --room NAME`: run one talking avatar in a LiveKit room by hand until it empties."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING

from loguru import logger

from avatar_core.settings import AvatarSettings, load_settings
from bot.settings import BotSettings, WorkerSettings
from records.options import RecordsOptions

if TYPE_CHECKING:
    from processors.face.video import FrameMarker

WORKER_COMMAND = "worker"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument("command", nargs="?", choices=[WORKER_COMMAND],
                        help="run as a LiveKit agent worker")
    parser.add_argument("--room", help="LiveKit room to join (without the worker)")
    args = parser.parse_args(argv)
    if (args.command is None) == (args.room is None):
        parser.error(f"give either '{WORKER_COMMAND}' or --room NAME")
    if args.command == WORKER_COMMAND:
        from bot.worker import run

        tree = _read_settings()
        # livekit-agents logs through the standard logging module (registration, jobs, drain).
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        asyncio.run(run(WorkerSettings.from_tree(tree), BotSettings.from_tree(tree),
                        records=_records(tree)))
        return
    run_room(args.room)


def run_room(room: str, *, face_marker: FrameMarker | None = None) -> None:
    """One talking avatar in `room` until it empties (`face_marker`: see AvatarBot)."""
    from bot.llm_warm_up import warm_up_llm
    from bot.pipeline import AvatarBot

    tree = _read_settings()
    settings = BotSettings.from_tree(tree)
    # As a worker's prewarmed process does: Ollama reads the system prompt while the bot joins,
    # not when the first question comes.
    threading.Thread(target=warm_up_llm, args=(settings,), name="llm-warm-up", daemon=True).start()
    logger.info(f"bot {settings.identity} joining room {room} at {settings.livekit_url}")
    asyncio.run(AvatarBot(settings=settings, room=room, records=_records(tree),
                          face_marker=face_marker).run())


def _read_settings() -> AvatarSettings:
    """Logging set up, then the one read of the environment (and the installed models) of this
    process."""
    # INFO by default: at DEBUG Pipecat logs every transcript and LLM context into the log file.
    logger.remove()
    logger.add(sys.stderr, level=os.environ.get("LOGURU_LEVEL", "INFO"))
    return load_settings()


def _records(tree: AvatarSettings) -> RecordsOptions:
    return RecordsOptions.from_settings(tree.records, cache=tree.stack.cache)


if __name__ == "__main__":
    main()
