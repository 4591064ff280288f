"""The built-in face engine: a talking head from one portrait, real time on one CPU core.

At prepare time the face landmarks (processors.face.landmarks) drive a few blend fields, each
a smooth per-pixel displacement of the lower face or the eyes interpolated (thin-plate spline)
from displacements of landmark groups: `close` (derives a closed, neutral mouth from any
portrait, including a smile with teeth showing), `open` (jaw drop), `wide` (spread vs round
lips) and `blink`. They are kept on a coarse grid; per frame the weighted sum is inverted on
that grid, upsampled and applied with one cv2.remap over the face's bounding box only. The
mouth interior (skull-fixed upper teeth from the photo, dark throat, tongue) is drawn inside
the displaced inner-lip contour, and a small whole-frame affine adds breathing and head sway.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.interpolate import RBFInterpolator

from processors.face.base import Avatar
from processors.face.landmarks import (
    cached_landmarks,
    detect_landmarks,
    frame_face,
    load_image,
    to_rgb,
)
from processors.face.timeline import MouthShape, VisemeTimeline

# Mediapipe face-mesh indices (canonical 468/478 topology).
UPPER_INNER = (191, 80, 81, 82, 13, 312, 311, 310, 415)
LOWER_INNER = (95, 88, 178, 87, 14, 317, 402, 318, 324)
UPPER_OUTER = (185, 40, 39, 37, 0, 267, 269, 270, 409)
LOWER_OUTER = (146, 91, 181, 84, 17, 314, 405, 321, 375)
CORNERS = (61, 78, 291, 308)
INNER_CONTOUR = (78, *UPPER_INNER, 308, *reversed(LOWER_INNER))
CHIN = (18, 200, 199, 175, 152)
# Jaw line from chin outwards on both sides, with the share of the jaw drop each point takes.
JAW_LINE = {148: 0.85, 377: 0.85, 176: 0.7, 400: 0.7, 149: 0.55, 378: 0.55, 150: 0.4, 379: 0.4,
            136: 0.25, 365: 0.25, 172: 0.12, 397: 0.12, 58: 0.05, 288: 0.05}
MOUTH_ANCHORS = (1, 2, 98, 327, 94, 19, 4, 234, 454, 93, 323, 132, 361, 205, 425, 50, 280)
EYE_LIDS = (  # (upper lid, lower lid), outer corner to inner corner
    ((246, 161, 160, 159, 158, 157, 173), (7, 163, 144, 145, 153, 154, 155)),
    ((466, 388, 387, 386, 385, 384, 398), (249, 390, 373, 374, 380, 381, 382)),
)
EYE_ANCHORS = (70, 63, 105, 66, 107, 336, 296, 334, 293, 300, 33, 133, 263, 362, 6, 197, 195)
EYE_OUTER = (33, 263)

# Amplitudes in units of the outer-eye-corner distance.
JAW_DROP = 0.17
CORNER_SPREAD = 0.09
SMILE_RELAX = 0.03
MOUTH_NARROWING = 0.05
# Coarse grid step of the blend fields (pixels) and fixed-point iterations of the inversion.
GRID_STEP = 4
INVERT_ITERATIONS = 4
# Blink: mean spacing, duration (close, hold, open) in seconds.
BLINK_PERIOD_S = 3.6
BLINK_PHASES_S = (0.07, 0.03, 0.1)
THROAT_TOP, THROAT_BOTTOM = (78, 26, 32), (34, 8, 12)
TONGUE_RGB = (168, 78, 88)
SEAM_RGB = (96, 40, 44)


@dataclass(slots=True)
class _Region:
    """A bounding box with blend fields on a coarse grid and the maps to apply them."""

    x0: int
    y0: int
    x1: int
    y1: int
    fields: dict[str, np.ndarray]  # name -> (gh, gw, 2) float32 forward displacement
    coarse_xy: np.ndarray  # (gh, gw, 2) coarse grid positions in coarse-grid units
    fine_x: np.ndarray  # (h, w) fine pixel -> coarse coordinate
    fine_y: np.ndarray
    abs_x: np.ndarray  # (h, w) absolute pixel coordinates
    abs_y: np.ndarray

    def warp(self, src: np.ndarray, dst: np.ndarray, weights: dict[str, float]) -> None:
        """Write `src` displaced by the weighted fields into dst's box (backward mapping)."""
        disp = sum(self.fields[name] * w for name, w in weights.items() if w)
        if isinstance(disp, int):  # nothing to move: dst already holds src
            return
        back = -disp
        for _ in range(INVERT_ITERATIONS):  # B(x) = -D(x + B(x))
            at = self.coarse_xy + back / GRID_STEP
            # OpenCV's stubs reject scalar colours and uint8/int32 arrays cv2 accepts
            back = -cv2.remap(disp, at[..., 0], at[..., 1], cv2.INTER_LINEAR,  # type: ignore[assignment]
                              borderMode=cv2.BORDER_REPLICATE)
        fine = cv2.remap(back, self.fine_x, self.fine_y, cv2.INTER_LINEAR)
        dst[self.y0:self.y1, self.x0:self.x1] = cv2.remap(
            src, self.abs_x + fine[..., 0], self.abs_y + fine[..., 1], cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE)


@dataclass(slots=True)
class _Rig:
    mouth: _Region
    eyes: _Region
    inner: dict[str, np.ndarray]  # field name -> (20, 2) displacement of INNER_CONTOUR
    inner_base: np.ndarray  # (20, 2) source positions of INNER_CONTOUR
    base: np.ndarray  # the framed photo with its lip gap filled in (the closed-mouth source)
    interior: np.ndarray  # mouth-box RGB float32: throat with skull-fixed upper teeth
    throat: np.ndarray  # mouth-box RGB float32: throat only


def _box(points: np.ndarray, pad_x: float, pad_y0: float, pad_y1: float, w: int, h: int):
    x0 = int(max(0, math.floor(points[:, 0].min() - pad_x)))
    x1 = int(min(w, math.ceil(points[:, 0].max() + pad_x)))
    y0 = int(max(0, math.floor(points[:, 1].min() - pad_y0)))
    y1 = int(min(h, math.ceil(points[:, 1].max() + pad_y1)))
    return x0, y0, x1, y1


def _region(box, controls: np.ndarray, fields: dict[str, np.ndarray]) -> _Region:
    """Thin-plate-spline fields from control displacements, zero on the box border."""
    x0, y0, x1, y1 = box
    gw, gh = (x1 - x0 - 1) // GRID_STEP + 2, (y1 - y0 - 1) // GRID_STEP + 2
    gx, gy = np.meshgrid(np.arange(gw, dtype=np.float32), np.arange(gh, dtype=np.float32))
    grid_px = np.stack([x0 + gx * GRID_STEP, y0 + gy * GRID_STEP], axis=-1).reshape(-1, 2)
    border = np.concatenate([
        np.stack([np.linspace(x0, x1, 16), np.full(16, y0)], 1),
        np.stack([np.linspace(x0, x1, 16), np.full(16, y1)], 1),
        np.stack([np.full(12, x0), np.linspace(y0, y1, 12)], 1),
        np.stack([np.full(12, x1), np.linspace(y0, y1, 12)], 1)])
    centres = np.concatenate([controls, border])
    coarse = {}
    for name, disp in fields.items():
        values = np.concatenate([disp, np.zeros_like(border)])
        rbf = RBFInterpolator(centres, values, kernel="thin_plate_spline", smoothing=1.0)
        coarse[name] = rbf(grid_px).reshape(gh, gw, 2).astype(np.float32)
    fx, fy = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    return _Region(x0, y0, x1, y1, coarse, np.stack([gx, gy], -1),
                   (fx - x0) / GRID_STEP, (fy - y0) / GRID_STEP, fx, fy)


def _mouth_fields(lm: np.ndarray, s: float, down: np.ndarray, right: np.ndarray):
    """Control points of the lower face and their displacement per field."""
    centre = lm[[13, 14]].mean(axis=0)
    half_w = max(abs(float((lm[291] - lm[61]) @ right)) / 2, 1.0)
    idx = [*UPPER_INNER, *LOWER_INNER, *UPPER_OUTER, *LOWER_OUTER, *CORNERS, *CHIN,
           *JAW_LINE, *MOUTH_ANCHORS]
    pos = {i: n for n, i in enumerate(idx)}
    close, open_, wide = (np.zeros((len(idx), 2), np.float32) for _ in range(3))

    def centrality(i: int) -> float:
        return float(np.clip(1 - (((lm[i] - centre) @ right) / half_w) ** 2, 0, 1))

    def side(i: int) -> float:
        return float(np.clip(((lm[i] - centre) @ right) / half_w, -1, 1))

    jaw = JAW_DROP * s
    for up_in, lo_in, up_out, lo_out in zip(
        UPPER_INNER, LOWER_INNER, UPPER_OUTER, LOWER_OUTER, strict=False
    ):
        gap = lm[lo_in] - lm[up_in]
        close[pos[up_in]] = 0.4 * gap
        close[pos[lo_in]] = -0.6 * gap
        close[pos[up_out]] = 0.15 * gap
        close[pos[lo_out]] = -0.5 * gap
        for i in (lo_in, lo_out):
            open_[pos[i]] = jaw * (0.3 + 0.7 * centrality(i)) * down
        for i in (up_in, up_out):  # near the corners the upper lip follows them down
            open_[pos[i]] = jaw * (0.3 - 0.5 * centrality(i)) * down
        for i in (up_in, up_out, lo_in, lo_out):
            # The whole mouth narrows/widens in proportion, so the contour keeps its shape.
            open_[pos[i]] -= MOUTH_NARROWING * s * side(i) * right
            wide[pos[i]] = CORNER_SPREAD * s * side(i) * right
    mid_gap = lm[14] - lm[13]
    for i in CORNERS:
        inward = -np.sign(side(i)) * right
        close[pos[i]] = SMILE_RELAX * s * (inward + 0.6 * down)
        open_[pos[i]] = 0.3 * jaw * down + MOUTH_NARROWING * s * inward
        wide[pos[i]] = -CORNER_SPREAD * s * inward
    for i in CHIN:
        close[pos[i]] = -0.45 * mid_gap
        open_[pos[i]] = 0.95 * jaw * down
    for i, share in JAW_LINE.items():
        close[pos[i]] = -0.45 * share * mid_gap
        open_[pos[i]] = share * jaw * down
    return lm[idx], {"close": close, "open": open_, "wide": wide}, pos


def _interior(image: np.ndarray, lm: np.ndarray, box) -> tuple[np.ndarray, np.ndarray]:
    """The mouth interior: throat with the photo's upper teeth where its lips were apart, and
    the throat alone."""
    x0, y0, x1, y1 = box
    h, w = y1 - y0, x1 - x0
    ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    throat = (np.array(THROAT_TOP, np.float32) * (1 - ramp)
              + np.array(THROAT_BOTTOM, np.float32) * ramp) * np.ones((1, w, 1), np.float32)
    mask = np.zeros((h, w), np.uint8)
    contour = (lm[list(INNER_CONTOUR)] - [x0, y0]).round().astype(np.int32)
    # OpenCV's stubs reject scalar colours and uint8/int32 arrays cv2 accepts
    cv2.fillPoly(mask, [contour], 255, cv2.LINE_AA)  # type: ignore[call-overload]
    # Upper teeth only (they stay with the skull); the lower half of the gap fades out.
    top = float(lm[list(UPPER_INNER), 1].mean() - y0)
    bottom = float(lm[list(LOWER_INNER), 1].mean() - y0)
    rows = np.arange(h, dtype=np.float32)[:, None]
    fade = np.clip((bottom - rows) / max(0.3 * (bottom - top), 1.0), 0, 1)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (3, 3), 0) * fade
    teeth = image[y0:y1, x0:x1].astype(np.float32)
    interior = throat * (1 - alpha[..., None]) + teeth * alpha[..., None]
    return interior, throat


def _fill_lip_gap(image: np.ndarray, lm: np.ndarray) -> np.ndarray:
    """The photo with whatever shows between its lips (teeth of a smile) painted over with lip
    colour, so squeezing the lips shut gives lips, not a line of teeth."""
    mask = np.zeros(image.shape[:2], np.uint8)
    # OpenCV's stubs reject scalar colours and uint8/int32 arrays cv2 accepts
    cv2.fillPoly(mask, [lm[list(INNER_CONTOUR)].round().astype(np.int32)], 255)  # type: ignore[call-overload]
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))  # type: ignore[assignment]
    return cv2.inpaint(image, mask, 4, cv2.INPAINT_TELEA)


def blink_at(t: float) -> float:
    """Eyelid closure 0..1 at idle time t: one blink per period at a hashed offset."""
    n = math.floor(t / BLINK_PERIOD_S)
    for k in (n - 1, n):
        offset = (math.sin(k * 12.9898 + 78.233) * 43758.5453) % 1.0
        u = t - (k * BLINK_PERIOD_S + 0.4 + offset * (BLINK_PERIOD_S - 1.0))
        close, hold, reopen = BLINK_PHASES_S
        if 0 <= u < close:
            return math.sin(0.5 * math.pi * u / close) ** 2
        if close <= u < close + hold:
            return 1.0
        if close + hold <= u < close + hold + reopen:
            return math.cos(0.5 * math.pi * (u - close - hold) / reopen) ** 2
    return 0.0


def head_motion(t: float, size: tuple[int, int]) -> np.ndarray:
    """2x3 affine of breathing and head sway at idle time t (smooth, never repeating exactly)."""
    w, h = size
    px = w / 512.0
    angle = 0.6 * math.sin(2 * math.pi * 0.13 * t) + 0.25 * math.sin(2 * math.pi * 0.29 * t + 1.3)
    dx = px * (
        1.2 * math.sin(2 * math.pi * 0.07 * t + 0.5) + 0.4 * math.sin(2 * math.pi * 0.31 * t)
    )
    breath = math.sin(2 * math.pi * 0.25 * t)
    m = cv2.getRotationMatrix2D((w / 2, h * 0.95), angle, 1.0 + 0.003 * breath)
    m[0, 2] += dx
    m[1, 2] += px * 0.8 * breath
    return m


class BuiltinFaceEngine:
    """Landmark-mesh warping engine (see module docstring); CPU only, no model at runtime."""

    def __init__(self, *, width: int = 512, height: int = 512, fps: int = 25) -> None:
        self.width, self.height, self.fps = width, height, fps

    def prepare(
        self, image: np.ndarray, *, source: Path | None = None, landmarks: np.ndarray | None = None
    ) -> Avatar:
        """Frame the portrait to the output size and build the rig (landmarks detected when not
        given; pass cached ones to skip the detector)."""
        rgb = to_rgb(image)
        lm = detect_landmarks(rgb) if landmarks is None else np.asarray(landmarks, np.float32)
        framed, lm = frame_face(rgb, lm, self.width, self.height)
        framed = np.ascontiguousarray(framed)
        return Avatar(
            image=framed,
            landmarks=lm.astype(np.float32),
            source=source,
            rig=self._rig(framed, lm.astype(np.float32)),
        )

    def load_avatar(self, path: Path) -> Avatar:
        """Prepare an image file with its cached landmarks (detected and cached on first use)."""
        path = Path(path)
        rgb = load_image(path)
        return self.prepare(rgb, source=path, landmarks=cached_landmarks(path, rgb))

    def _rig(self, image: np.ndarray, lm: np.ndarray) -> _Rig:
        h, w = image.shape[:2]
        eyes = lm[list(EYE_OUTER)]
        s = float(np.linalg.norm(eyes[1] - eyes[0]))
        right = (eyes[1] - eyes[0]) / s
        down = np.array([-right[1], right[0]], np.float32)
        controls, fields, pos = _mouth_fields(lm, s, down, right)
        jaw_pts = lm[[*CHIN, *JAW_LINE, *CORNERS]]
        mouth_box = _box(jaw_pts, 0.15 * s, 0.0, 0.3 * s, w, h)
        nose_bottom = float(lm[2, 1])
        mouth_box = (mouth_box[0], int(max(0, nose_bottom)), mouth_box[2], mouth_box[3])
        mouth = _region(mouth_box, controls, fields)

        lid_idx, lid_disp = [], []
        for upper, lower in EYE_LIDS:
            for u, lo in zip(upper, lower, strict=False):
                gap = lm[lo] - lm[u]
                lid_idx += [u, lo]
                lid_disp += [0.8 * gap, -0.2 * gap]
        eye_idx = [*lid_idx, *EYE_ANCHORS]
        eye_disp = np.concatenate(
            [np.array(lid_disp, np.float32), np.zeros((len(EYE_ANCHORS), 2), np.float32)]
        )
        eye_box = _box(lm[eye_idx], 0.12 * s, 0.12 * s, 0.05 * s, w, h)
        eye_box = (*eye_box[:3], min(eye_box[3], mouth_box[1]))
        eyes_region = _region(eye_box, lm[eye_idx], {"blink": eye_disp})

        inner = {name: disp[[pos[i] for i in INNER_CONTOUR]] for name, disp in fields.items()}
        interior, throat = _interior(image, lm, mouth_box)
        return _Rig(
            mouth,
            eyes_region,
            inner,
            lm[list(INNER_CONTOUR)],
            _fill_lip_gap(image, lm),
            interior,
            throat,
        )

    def mouth_contour(self, avatar: Avatar, shape: MouthShape) -> np.ndarray:
        """Inner-lip contour (20, 2) for a pose, before head motion."""
        rig: _Rig = avatar.rig
        return (
            rig.inner_base
            + rig.inner["close"]
            + shape.open * rig.inner["open"]
            + shape.wide * rig.inner["wide"]
        )

    def mouth_opening(self, avatar: Avatar, shape: MouthShape) -> float:
        """Lip gap at the centre in pixels (13 to 14) for a pose."""
        c = self.mouth_contour(avatar, shape)
        mid_up, mid_lo = INNER_CONTOUR.index(13), INNER_CONTOUR.index(14)
        return float(np.linalg.norm(c[mid_lo] - c[mid_up]))

    def frame(self, avatar: Avatar, shape: MouthShape, clock: float) -> np.ndarray:
        """One RGB frame for a mouth pose at idle-motion time `clock`."""
        rig: _Rig = avatar.rig
        src = rig.base
        out = src.copy()
        rig.mouth.warp(src, out, {"close": 1.0, "open": shape.open, "wide": shape.wide})
        blink = blink_at(clock)
        if blink > 0.01:
            rig.eyes.warp(src, out, {"blink": blink})
        self._draw_interior(rig, out, self.mouth_contour(avatar, shape), shape)
        return cv2.warpAffine(
            out,
            head_motion(clock, avatar.size),
            avatar.size,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )

    @staticmethod
    def _draw_interior(rig: _Rig, out: np.ndarray, contour: np.ndarray, shape: MouthShape) -> None:
        top, bottom = contour[INNER_CONTOUR.index(13)], contour[INNER_CONTOUR.index(14)]
        gap = float(bottom[1] - top[1])
        if gap < 1.0:
            BuiltinFaceEngine._draw_seam(out, contour)
            return
        box = rig.mouth
        bx0, by0 = np.floor(contour.min(axis=0)).astype(int) - 2
        bx1, by1 = np.ceil(contour.max(axis=0)).astype(int) + 3
        bx0, by0 = max(bx0, box.x0), max(by0, box.y0)
        bx1, by1 = min(bx1, box.x1), min(by1, box.y1)
        if bx1 <= bx0 or by1 <= by0:
            return
        mask = np.zeros((by1 - by0, bx1 - bx0), np.uint8)
        poly = ((contour - [bx0, by0]) * 4).round().astype(np.int32)
        # OpenCV's stubs reject scalar colours and uint8/int32 arrays cv2 accepts
        cv2.fillPoly(mask, [poly], 255, cv2.LINE_AA, shift=2)  # type: ignore[call-overload]
        m = (mask.astype(np.float32) / 255.0)[..., None]
        ix0, iy0 = bx0 - box.x0, by0 - box.y0
        sl = (slice(iy0, iy0 + mask.shape[0]), slice(ix0, ix0 + mask.shape[1]))
        colour = rig.throat[sl] + shape.teeth * (rig.interior[sl] - rig.throat[sl])
        if shape.tongue > 0.05:
            tongue = np.zeros(mask.shape, np.uint8)
            centre = (bottom - [bx0, by0] - [0, 0.3 * gap]) * 4
            half_w = 0.3 * float(np.linalg.norm(contour[-1] - contour[0])) + 1
            axes = (int(half_w * 4), int(max(0.35 * gap, 1) * 4))
            # OpenCV's stubs reject scalar colours and uint8/int32 arrays cv2 accepts
            cv2.ellipse(  # type: ignore[call-overload]
                tongue,
                tuple(centre.round().astype(int)),
                axes,
                0,
                180,
                360,
                255,
                -1,
                cv2.LINE_AA,
                shift=2,
            )
            a = (tongue.astype(np.float32) / 255.0 * min(shape.tongue, 1.0) * 0.85)[..., None]
            colour = colour * (1 - a) + np.array(TONGUE_RGB, np.float32) * a
        patch = out[by0:by1, bx0:bx1].astype(np.float32)
        out[by0:by1, bx0:bx1] = (patch * (1 - m) + colour * m).astype(np.uint8)

    @staticmethod
    def _draw_seam(out: np.ndarray, contour: np.ndarray) -> None:
        """A soft dark line where closed lips meet."""
        n = len(UPPER_INNER)
        upper = contour[1 : n + 1]
        lower = contour[n + 2 :][::-1]
        seam = np.concatenate([contour[:1], (upper + lower) / 2, contour[n + 1 : n + 2]])
        x0, y0 = np.floor(seam.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(seam.max(axis=0)).astype(int) + 3
        x0, y0 = max(x0, 0), max(y0, 0)
        patch = out[y0:y1, x0:x1]
        if patch.size == 0:
            return
        line = np.zeros(patch.shape[:2], np.uint8)
        # OpenCV's stubs reject scalar colours and uint8/int32 arrays cv2 accepts
        cv2.polylines(  # type: ignore[call-overload]
            line,
            [((seam - [x0, y0]) * 4).round().astype(np.int32)],
            False,
            255,
            1,
            cv2.LINE_AA,
            shift=2,
        )
        a = (line.astype(np.float32) / 255.0 * 0.45)[..., None]
        out[y0:y1, x0:x1] = (patch * (1 - a) + np.array(SEAM_RGB, np.float32) * a).astype(np.uint8)

    def poses(
        self, audio: np.ndarray, sample_rate: int, timeline: VisemeTimeline, start: float = 0.0
    ) -> list[MouthShape]:
        """The mouth pose of each frame of `audio`: the timeline at the frame's centre time."""
        n = math.ceil(len(audio) * self.fps / sample_rate - 1e-9)
        return [timeline.shape_at(start + (k + 0.5) / self.fps) for k in range(n)]

    def render(
        self,
        avatar: Avatar,
        audio: np.ndarray,
        sample_rate: int,
        timeline: VisemeTimeline,
        *,
        start: float = 0.0,
        clock: float = 0.0,
    ) -> Iterator[np.ndarray]:
        """One frame per 1/fps of audio (see `poses`); the mouth follows the timeline, which
        carries the audio level when built `with_audio`."""
        for k, shape in enumerate(self.poses(audio, sample_rate, timeline, start)):
            yield self.frame(avatar, shape, clock + k / self.fps)

    def idle(self, avatar: Avatar, clock: float) -> np.ndarray:
        """A silent frame with closed mouth, blinks, breathing and sway."""
        return self.frame(avatar, MouthShape(), clock)
