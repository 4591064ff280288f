"""Inference runs lowered below the media loop, and so do the threads a model starts."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from avatar_core.priority import (
    INFERENCE_NICENESS,
    build_for_inference,
    run_inference,
    thread_niceness,
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux's")


def test_a_model_built_for_inference_starts_lowered_threads():
    base = thread_niceness()
    seen: list[int] = []

    def build():  # a model constructor that starts its own compute thread
        worker = threading.Thread(target=lambda: seen.append(thread_niceness()))
        worker.start()
        worker.join()
        return "model"

    assert build_for_inference(build) == "model"
    assert seen == [min(19, base + INFERENCE_NICENESS)]
    assert thread_niceness() == base  # the caller (the event loop's thread) is untouched


async def test_inference_is_lowered_but_other_threads_are_not():
    base = thread_niceness()
    assert await run_inference(thread_niceness) == min(19, base + INFERENCE_NICENESS)
    assert await asyncio.to_thread(thread_niceness) == base  # e.g. the face renderer's
