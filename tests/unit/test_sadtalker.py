"""The SadTalker face engine on CPU with STAND-IN checkpoints (tests/support/sadtalker_standin.py:
SadTalker's own model classes with random weights, since no registry ships the real ones): the
real code path renders a sentence to frames of the right size and count, rendering ahead of the
caller; missing checkpoints and an engine slower than its margin fall back to the builtin face
with a notice. Needs the `sadtalker` dependency group (`uv sync --group sadtalker`)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the SadTalker engine needs `uv sync --group sadtalker`")

from processors.face.base import DEFAULT_AVATAR  # noqa: E402
from processors.face.engines import FallbackFaceEngine, face_engine  # noqa: E402
from processors.face.sadtalker import (  # noqa: E402
    CACHE_VERSION,
    CHECKPOINT,
    SadTalkerFaceEngine,
    SadTalkerSettings,
    frame_rows,
)
from tests.support.sadtalker_standin import cached_standin  # noqa: E402

SIZE = 192  # output frame side: small, so resizing costs little next to the 256 model


@pytest.fixture(scope="session")
def standin() -> tuple[Path, Path]:
    return cached_standin()


@pytest.fixture
def avatar_path(tmp_path) -> Path:
    path = tmp_path / "avatar.png"
    shutil.copy(DEFAULT_AVATAR, path)
    return path


def settings(standin, **overrides) -> SadTalkerSettings:
    checkpoints, config = standin
    return SadTalkerSettings(**{"checkpoints": checkpoints, "config": config, "size": 256,
                                "device": "cpu", "batch": 5, "idle_s": 0.2} | overrides)


def tone(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
            ).astype(np.int16)


@pytest.mark.timeout(3600)  # CPU, random weights: minutes per second of video on 2 shared cores
def test_renders_a_two_second_sentence_ahead_to_frames_of_the_right_size_and_count(
        standin, avatar_path):
    engine = SadTalkerFaceEngine(settings=settings(standin), width=SIZE, height=SIZE, fps=25)
    avatar = engine.load_avatar(avatar_path)
    # Prepared once: coefficients cached next to the image, an idle loop without a seam.
    assert avatar.rig.coefficients.shape == (1, 73)
    assert list(avatar_path.parent.glob("avatar.png.sadtalker-256.json"))
    assert len(avatar.rig.idle) == 8 and engine.idle(avatar, 0.0).shape == (SIZE, SIZE, 3)
    audio = tone(2.0)
    ahead = engine.render_ahead(avatar, audio, 16000)
    frames = [ahead.frame(k) for k in range(ahead.count)]
    assert len(frames) == 50
    assert all(f.shape == (SIZE, SIZE, 3) and f.dtype == np.uint8 for f in frames)
    assert len({f.tobytes() for f in frames}) > 40  # the face moves frame by frame
    # The caller waited for the frames (CPU with random weights is slower than real time).
    assert ahead.held_s > 0 and ahead.slowdown > 1
    # At 30 fps the same 25 fps motion is shown on the audio clock.
    assert frame_rows(60, 30)[-1] == 49 and frame_rows(50, 25) == list(range(50))


def test_missing_checkpoints_fall_back_to_the_builtin_face_with_a_notice(standin, avatar_path,
                                                                         tmp_path):
    notices: list[str] = []
    empty = tmp_path / "no-checkpoints"
    empty.mkdir()
    engine = face_engine("sadtalker", width=SIZE, height=SIZE, fps=25,
                         sadtalker=settings(standin, checkpoints=empty), notify=notices.append)
    assert isinstance(engine, FallbackFaceEngine)
    assert len(notices) == 1 and CHECKPOINT.format(size=256) in notices[0]
    avatar = engine.load_avatar(avatar_path)
    assert not engine.renders_ahead
    frames = list(engine.render(avatar, tone(0.4), 16000, _timeline(tone(0.4))))
    assert len(frames) == 10 and frames[0].shape == (SIZE, SIZE, 3)
    assert engine.idle(avatar, 1.0).shape == (SIZE, SIZE, 3)


@pytest.mark.timeout(3600)
def test_an_engine_slower_than_its_margin_falls_back_with_a_notice(standin, avatar_path):
    notices: list[str] = []
    engine = face_engine("sadtalker", width=SIZE, height=SIZE, fps=25,
                         sadtalker=settings(standin, max_slowdown=1.0), notify=notices.append)
    assert engine.failure is None
    avatar = engine.load_avatar(avatar_path)  # the idle loop measures the speed
    assert engine.failure is not None and "per second of video" in engine.failure
    assert notices == [engine.failure]
    assert not engine.renders_ahead
    assert engine.idle(avatar, 0.0).shape == (SIZE, SIZE, 3)


def _timeline(audio):
    from processors.face.timeline import VisemeTimeline

    return VisemeTimeline.from_audio(audio, 16000)


@pytest.mark.timeout(1800)
def test_coefficients_cached_with_other_checkpoints_are_made_again(standin, avatar_path):
    """The coefficient cache next to the picture is keyed by the loaded 3DMM weights: a cache
    from other checkpoints (same picture) is recomputed and replaced; one from these is reused."""
    engine = SadTalkerFaceEngine(settings=settings(standin, idle_s=0.0), width=SIZE, height=SIZE)
    cache = avatar_path.with_name("avatar.png.sadtalker-256.json")
    picture = hashlib.sha256(avatar_path.read_bytes()).hexdigest()
    stale = {"version": CACHE_VERSION, "sha256": picture, "weights": "other-checkpoints",
             "coefficients": [0.0] * 73}
    cache.write_text(json.dumps(stale))
    made = engine.load_avatar(avatar_path).rig.coefficients
    assert np.abs(made).max() > 0
    written = json.loads(cache.read_text())
    assert written["weights"] not in ("other-checkpoints", "")
    cache.write_text(json.dumps(written | {"coefficients": [0.5] * 73}))
    assert np.all(engine.load_avatar(avatar_path).rig.coefficients == 0.5)
