"""Speech recognition runs at a lower CPU priority than the media loop.

A bot is real-time work (audio chunks, video frames, VAD every few milliseconds) sharing a small
CPU with Whisper decoding, which can take whole cores for a second. When both want the CPU, the
media must win, or the video stutters while a question is transcribed. Ollama already runs
niced (stack/services.py); this does the same inside the bot.

On Linux a nice value belongs to a thread, and a thread it creates inherits it. So the model is
built in a thread lowered by INFERENCE_NICENESS, and the compute threads it starts
(CTranslate2's workers) keep that priority. The voice is not lowered: the first sentence's
synthesis is on the reply's critical path, competing with Ollama generating the rest.
Where threads cannot be reniced (other systems), everything runs at normal priority.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from loguru import logger

T = TypeVar("T")

# Lower than the media loop by this much (Linux weights: a nice-5 thread gets about a quarter
# of a core's time while a nice-0 thread wants it, and all of it otherwise).
INFERENCE_NICENESS = 5


def lower_this_thread(by: int = INFERENCE_NICENESS) -> None:
    """Raise the calling thread's nice value by `by` (capped at 19); no-op where unsupported."""
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + by))
    except (AttributeError, OSError) as exc:  # not Linux: threads keep the process priority
        logger.debug(f"inference threads keep normal priority ({exc})")


def thread_niceness() -> int:
    """The calling thread's nice value (the process's where threads have none of their own)."""
    try:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    except (AttributeError, OSError):
        return os.getpriority(os.PRIO_PROCESS, 0)


def build_for_inference(build: Callable[[], T]) -> T:
    """Call `build` (a model constructor) in a fresh, lowered thread and wait for it: the
    threads the model starts inherit the lower priority."""

    def lowered() -> T:
        lower_this_thread()
        return build()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference") as pool:
        return pool.submit(lowered).result()
