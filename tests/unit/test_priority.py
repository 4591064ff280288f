"""A model built for inference runs its compute threads lowered below the media loop."""

from __future__ import annotations

import sys
import threading

import pytest

from avatar_core.priority import (
    INFERENCE_NICENESS,
    build_for_inference,
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

