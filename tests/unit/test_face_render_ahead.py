"""FaceVideoProcessor with an engine that renders ahead and is slower than real time (as SadTalker
on a weak GPU): each piece of audio leaves with its own picture, never before it, and the time
held goes out as an RTVI processing metric.

The slow engine here is a named STAND-IN built on the builtin engine (the SadTalker engine itself
is tested in test_sadtalker.py): it draws the builtin's frames but hands each out only after
SLOW_S, like an engine that needs 1.5x real time."""

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


class SlowAheadStandIn(BuiltinFaceEngine):
    """STAND-IN render-ahead engine: builtin frames, each ready only SLOW_S after the last."""

    renders_ahead = True

    def render_ahead(self, avatar, audio, sample_rate):
        return _SlowAhead(self, avatar, audio, sample_rate)


class _SlowAhead:
    def __init__(self, engine, avatar, audio, rate):
        timeline = VisemeTimeline.from_audio(audio, rate)
        self.frames = list(engine.render(avatar, audio, rate, timeline))
        self.count, self.held_s, self.closed = len(self.frames), 0.0, False

    def frame(self, k):
        started = time.perf_counter()
        time.sleep(SLOW_S)
        self.held_s += time.perf_counter() - started
        image = self.frames[k].copy()
        image[:64, :64] = 255 if k % 2 else 0  # a mark a test can read back: frame parity
        return image

    def close(self):
        self.closed = True


async def test_slow_render_ahead_engine_holds_audio_and_pictures_together():
    processor = FaceVideoProcessor(engine=SlowAheadStandIn(fps=FPS), fps=FPS, audio_lead_frames=2,
                                   video_delay_ms=0)
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


def _marked(frame: OutputImageRawFrame) -> int | None:
    w, h = frame.size
    corner = np.frombuffer(frame.image, np.uint8).reshape(h, w, 3)[8:56, 8:56]
    if corner.min() == 255:
        return 1
    if corner.max() == 0:
        return 0
    return None

