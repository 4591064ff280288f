"""FaceVideoProcessor with an engine that renders ahead and is slower than real time (as SadTalker
on a weak GPU): each piece of audio leaves with its own picture, never before it, and the time
held goes out as an RTVI processing metric.

The slow engine here is a named STAND-IN built on the builtin engine (the SadTalker engine itself
is tested in test_sadtalker.py): it draws the builtin's frames but has each ready only SLOW_S
after the last, like an engine that needs 1.5x real time."""

from __future__ import annotations

import time

import numpy as np
from pipecat.frames.frames import (
    MetricsFrame,
    OutputImageRawFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from processors.face.builtin import BuiltinFaceEngine
from processors.face.timeline import VisemeTimeline
from processors.face.video import HELD_METRIC_SUFFIX, FaceVideoProcessor
from tests.unit.test_face_video import sentence, speech

FPS = 25
SLOW_S = 1.5 / FPS
# A batch renderer (SadTalker renders SADTALKER_BATCH frames at a time) that is behind: the first
# BATCH frames are ready at once, the rest only BATCH_WAIT_S later.
BATCH, BATCH_WAIT_S = 8, 1.0


class SlowAheadStandIn(BuiltinFaceEngine):
    """STAND-IN render-ahead engine: builtin frames, frame k ready `due(k)` seconds after the
    sentence starts rendering (by default (k + 1) * SLOW_S)."""

    renders_ahead = True

    def __init__(self, *, due=lambda k: (k + 1) * SLOW_S, **kwargs):
        super().__init__(**kwargs)
        self.due = due

    def render_ahead(self, avatar, audio, sample_rate):
        return _SlowAhead(self, avatar, audio, sample_rate)


class _SlowAhead:
    def __init__(self, engine, avatar, audio, rate):
        timeline = VisemeTimeline.from_audio(audio, rate)
        self.frames = list(engine.render(avatar, audio, rate, timeline))
        self.count, self.held_s, self.closed = len(self.frames), 0.0, False
        started = time.perf_counter()
        self._due = [started + engine.due(k) for k in range(self.count)]

    def ready(self, k):
        return time.perf_counter() >= self._due[k]

    def frame(self, k):
        started = time.perf_counter()
        time.sleep(max(0.0, self._due[k] - started))
        self.held_s += time.perf_counter() - started
        image = self.frames[k].copy()
        image[:64, :64] = 255 if k % 2 else 0  # a mark a test can read back: frame parity
        return image

    def close(self):
        self.closed = True


async def test_slow_render_ahead_engine_holds_audio_and_pictures_together():
    processor = FaceVideoProcessor(engine=SlowAheadStandIn(fps=FPS), fps=FPS)
    audio = speech(0.6)  # 15 frames
    down, _ = await run_test(processor, frames_to_send=[*sentence(audio), TTSStoppedFrame(),
                                                        SleepFrame(sleep=2.5)])
    pieces = [i for i, f in enumerate(down) if isinstance(f, TTSAudioRawFrame)]
    assert len(pieces) == 15
    joined = np.frombuffer(b"".join(down[i].audio for i in pieces), np.int16)
    np.testing.assert_array_equal(joined[:len(audio)], audio)
    # The k-th speaking picture carries parity mark k % 2, and it leaves after its audio piece.
    speaking = [i for i, f in enumerate(down) if isinstance(f, OutputImageRawFrame)
                and _marked(f) is not None][:15]
    assert [_marked(down[i]) for i in speaking] == [k % 2 for k in range(15)]
    assert all(pieces[k] < speaking[k] for k in range(15))
    held = [d for f in down if isinstance(f, MetricsFrame) for d in f.data
            if d.processor.endswith(HELD_METRIC_SUFFIX)]
    assert len(held) == 1 and held[0].value >= 15 * SLOW_S * 0.9


async def test_pictures_already_queued_keep_their_ticks_while_the_next_batch_renders():
    """The pictures whose audio went out are shown on their ticks while the engine renders the
    next batch, not after it: else the sound plays on and its pictures come seconds late."""
    engine = SlowAheadStandIn(fps=FPS, due=lambda k: 0.0 if k < BATCH else BATCH_WAIT_S)
    processor = FaceVideoProcessor(engine=engine, fps=FPS)
    audio = speech(0.6)  # 15 frames
    down, _ = await run_test(processor, frames_to_send=[*sentence(audio), TTSStoppedFrame(),
                                                        SleepFrame(sleep=BATCH_WAIT_S + 1.0)])
    pieces = [i for i, f in enumerate(down) if isinstance(f, TTSAudioRawFrame)]
    speaking = [i for i, f in enumerate(down) if isinstance(f, OutputImageRawFrame)
                and _marked(f) is not None][:15]
    assert len(pieces) == 15 and len(speaking) == 15
    assert speaking[BATCH - 1] < pieces[BATCH], "the first batch's pictures waited for the next"
    held = [d.value for f in down if isinstance(f, MetricsFrame) for d in f.data
            if d.processor.endswith(HELD_METRIC_SUFFIX)]
    assert len(held) == 1 and held[0] >= BATCH_WAIT_S - BATCH / FPS - 0.1


def _marked(frame: OutputImageRawFrame) -> int | None:
    w, h = frame.size
    corner = np.frombuffer(frame.image, np.uint8).reshape(h, w, 3)[8:56, 8:56]
    if corner.min() == 255:
        return 1
    if corner.max() == 0:
        return 0
    return None

