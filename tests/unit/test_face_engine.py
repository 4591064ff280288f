"""BuiltinFaceEngine on the real avatar and on bad or awkward images (real mediapipe face mesh)."""

from __future__ import annotations

import shutil
import sys

import cv2
import numpy as np
import pytest

from processors.face import landmarks as landmarks_module
from processors.face.base import (
    DEFAULT_AVATAR,
    FaceTooSmallError,
    NoFaceError,
    SeveralFacesError,
)
from processors.face.builtin import INNER_CONTOUR, BuiltinFaceEngine, blink_at
from processors.face.landmarks import AvatarPrepMissing, cache_path, load_image
from processors.face.timeline import MouthShape, VisemeTimeline
from processors.timing import VisemeTiming

OPEN = MouthShape(open=1.0, wide=0.2, teeth=0.7, tongue=0.1)


@pytest.fixture(scope="module")
def engine() -> BuiltinFaceEngine:
    return BuiltinFaceEngine()


@pytest.fixture(scope="module")
def avatar(engine):
    return engine.load_avatar(DEFAULT_AVATAR)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_image(DEFAULT_AVATAR)


def region_mask(shape, points) -> np.ndarray:
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [points.round().astype(np.int32)], 1)
    return mask.astype(bool)


def teeth_share(pixels: np.ndarray) -> float:
    """Share of bright, unsaturated (tooth-white, not lip-red) pixels."""
    px = pixels.astype(int)
    return float(((px.min(axis=1) > 140) & (px[:, 0] - px[:, 2] < 40)).mean())


def test_default_avatar_prepares_at_output_size(avatar):
    assert avatar.image.shape == (512, 512, 3) and avatar.image.dtype == np.uint8
    assert avatar.landmarks.shape == (478, 2)
    assert (avatar.landmarks >= 0).all() and (avatar.landmarks < 512).all()


def test_default_avatar_landmark_cache_is_present_and_current(photo, monkeypatch):
    # The committed cache means the bot never needs the detector for the default avatar: a
    # stale or unreadable cache would fall back to detection (and rewrite the tracked file).
    assert cache_path(DEFAULT_AVATAR).is_file()

    def no_detector(_):
        raise AssertionError("the committed landmark cache is stale: detection was needed")

    monkeypatch.setattr(landmarks_module, "detect_landmarks", no_detector)
    cached = landmarks_module.cached_landmarks(DEFAULT_AVATAR, photo)
    assert cached.shape == (478, 2)


def test_a_new_portrait_without_the_prep_extra_says_how_to_install_it(tmp_path, engine,
                                                                     monkeypatch):
    """Without mediapipe (the avatar-prep extra) the default avatar still loads from its cache;
    a new portrait fails with the command that installs the extra."""
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    assert engine.load_avatar(DEFAULT_AVATAR).landmarks.shape == (478, 2)
    image = tmp_path / "new.png"
    shutil.copy(DEFAULT_AVATAR, image)
    with pytest.raises(AvatarPrepMissing, match=r"uv sync --extra avatar-prep"):
        engine.load_avatar(image)


def test_cache_is_written_next_to_the_image_and_reused(tmp_path, engine, monkeypatch):
    image = tmp_path / "me.png"
    shutil.copy(DEFAULT_AVATAR, image)
    first = engine.load_avatar(image)
    assert cache_path(image).is_file()

    def no_detector(_):
        raise AssertionError("detector called although the cache is current")

    monkeypatch.setattr(landmarks_module, "detect_landmarks", no_detector)
    second = engine.load_avatar(image)
    np.testing.assert_allclose(first.landmarks, second.landmarks, atol=0.01)


def test_stale_cache_is_redetected(tmp_path, engine, photo, avatar):
    image = tmp_path / "me.png"
    shutil.copy(DEFAULT_AVATAR, image)
    engine.load_avatar(image)
    cv2.imwrite(str(image), cv2.cvtColor(cv2.flip(photo, 1), cv2.COLOR_RGB2BGR))
    mirrored = engine.load_avatar(image)
    nose_tip = 1
    assert mirrored.landmarks[nose_tip, 0] == pytest.approx(
        511 - avatar.landmarks[nose_tip, 0], abs=6
    )


def test_neutral_mouth_is_closed_although_the_photo_smiles_with_teeth(engine, avatar):
    gap = region_mask(avatar.image.shape, avatar.landmarks[list(INNER_CONTOUR)])
    neutral = engine.frame(avatar, MouthShape(), 0.0)
    assert engine.mouth_opening(avatar, MouthShape()) < 1.0
    # the white teeth between the photo's lips are covered by (red) lips in the neutral frame
    assert teeth_share(avatar.image[gap]) > 0.25
    assert teeth_share(neutral[gap]) < 0.08


def test_open_mouth_shows_a_dark_interior(engine, avatar):
    contour = engine.mouth_contour(avatar, OPEN)
    inside = region_mask(avatar.image.shape, contour)
    inside &= ~region_mask(
        avatar.image.shape, avatar.landmarks[list(INNER_CONTOUR)]
    )  # below the teeth
    frame = engine.frame(avatar, OPEN, 0.0)
    closed = engine.frame(avatar, MouthShape(), 0.0)
    assert engine.mouth_opening(avatar, OPEN) > 20
    assert frame[inside].mean() < closed[inside].mean() - 60


def test_round_mouth_is_narrower_than_spread(engine, avatar):
    def width(shape):
        c = engine.mouth_contour(avatar, shape)
        return c[:, 0].max() - c[:, 0].min()

    assert width(MouthShape(open=0.5, wide=-1.0)) < width(MouthShape(open=0.5, wide=1.0)) - 15


def test_render_gives_one_frame_per_video_frame_of_audio(engine, avatar):
    audio = np.zeros(24000 + 100, np.int16)  # 1 s + a bit: 26 frames at 25 fps
    timeline = VisemeTimeline.from_visemes([VisemeTiming("aa", 0.2, 0.5)]).with_audio(audio, 24000)
    frames = list(engine.render(avatar, audio, 24000, timeline))
    assert len(frames) == 26
    assert all(f.shape == (512, 512, 3) for f in frames)


def test_idle_moves_smoothly_and_blinks(engine, avatar):
    times = np.arange(0, 8, 0.04)
    blinks = [t for t in times if blink_at(t) > 0.9]
    assert blinks, "no blink in 8 s of idle"
    rig = avatar.rig
    eyes = (slice(rig.eyes.y0, rig.eyes.y1), slice(rig.eyes.x0, rig.eyes.x1))
    open_eyes = engine.idle(avatar, blinks[0] - 0.5)[eyes].astype(np.int16)
    shut_eyes = engine.idle(avatar, blinks[0])[eyes].astype(np.int16)
    assert np.abs(open_eyes - shut_eyes).mean() > 3
    frames = [engine.idle(avatar, t).astype(np.int16) for t in times[:50]]
    steps = [np.abs(a - b).mean() for a, b in zip(frames, frames[1:], strict=False)]
    assert min(steps) > 0.0, "idle video froze"
    assert max(steps) < 12, "idle video popped"


# -- bad and awkward images ------------------------------------------------------------------------


def test_no_face(engine):
    rng = np.random.default_rng(0)
    with pytest.raises(NoFaceError, match="no face"):
        engine.prepare(rng.integers(0, 255, (512, 512, 3), dtype=np.uint8))


def test_two_faces(engine, photo):
    with pytest.raises(SeveralFacesError, match="2 faces"):
        engine.prepare(np.hstack([photo, photo]))


def test_tiny_face(engine, photo):
    with pytest.raises(FaceTooSmallError, match="px wide"):
        engine.prepare(cv2.resize(photo, (120, 120), interpolation=cv2.INTER_AREA))


def test_grayscale(engine, photo):
    avatar = engine.prepare(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY))
    assert avatar.image.shape == (512, 512, 3)
    assert engine.frame(avatar, OPEN, 0.0).shape == (512, 512, 3)


def test_rgba_and_16_bit(engine, photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    assert engine.prepare(rgba).image.shape == (512, 512, 3)
    assert engine.prepare(photo.astype(np.uint16) * 257).image.shape == (512, 512, 3)


@pytest.mark.parametrize("size", [(512, 800), (900, 512)])  # (width, height): tall and wide
def test_non_square_is_framed_around_the_face(engine, photo, size):
    w, h = size
    canvas = cv2.copyMakeBorder(
        photo,
        (h - 512) // 2,
        h - 512 - (h - 512) // 2,
        (w - 512) // 2,
        w - 512 - (w - 512) // 2,
        cv2.BORDER_REPLICATE,
    )
    avatar = engine.prepare(canvas)
    assert avatar.image.shape == (512, 512, 3)
    centre = avatar.landmarks.mean(axis=0)
    assert 150 < centre[0] < 362 and 120 < centre[1] < 400


def test_huge_image(engine, photo):
    huge = cv2.resize(photo, (3000, 3000), interpolation=cv2.INTER_CUBIC)
    avatar = engine.prepare(huge)
    assert avatar.image.shape == (512, 512, 3)
    mouth_gap = np.linalg.norm(avatar.landmarks[14] - avatar.landmarks[13])
    assert mouth_gap < 40  # landmarks were scaled back into the framed image


def test_unreadable_file_is_a_clear_error(tmp_path, engine):
    bogus = tmp_path / "not-an-image.png"
    bogus.write_text("hello")
    with pytest.raises(ValueError, match="not an image"):
        engine.load_avatar(bogus)
    with pytest.raises(ValueError, match="does not exist"):
        engine.load_avatar(tmp_path / "missing.png")
