"""Face landmarks for an avatar image: found once with mediapipe's face mesh, cached next to it.

mediapipe 0.10.21 ships the legacy face mesh model (478 landmarks) inside the wheel, so this
runs offline. The result is written to `<image>.landmarks.json` (keyed by the image's SHA-256),
so a running bot never loads the detector. Also frames any portrait (grayscale, RGBA,
non-square, huge) into the square-ish output size around the face.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from loguru import logger

from avatar_core.files import file_sha256
from processors.face.base import (
    AvatarImageError,
    FaceTooSmallError,
    NoFaceError,
    SeveralFacesError,
)

# The package extra (pyproject.toml) that holds the face-mesh library.
PREP_EXTRA = "avatar-prep"
CACHE_SUFFIX = ".landmarks.json"
CACHE_VERSION = 1
NUM_LANDMARKS = 478
# Images are downscaled to this longest side before detection (the mesh model runs at 192 px).
DETECT_MAX_SIDE = 1280
# Narrowest usable face, in source pixels (cheek to cheek).
MIN_FACE_WIDTH_PX = 80
# Framing: the output square spans this many face widths (capped by the image itself).
FRAME_FACE_WIDTHS = 2.6
# Face oval indices at the cheeks (mediapipe face mesh topology).
CHEEK_LEFT, CHEEK_RIGHT = 234, 454


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Any 8/16-bit grayscale, RGB or RGBA array as RGB uint8 (alpha composited on white)."""
    img = np.asarray(image)
    if img.dtype == np.uint16:
        img = (img / 257).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.ndim == 3 and img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    if img.ndim == 3 and img.shape[2] == 4:
        alpha = img[:, :, 3:4].astype(np.float32) / 255.0
        return (img[:, :, :3] * alpha + 255.0 * (1 - alpha)).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 3:
        return np.ascontiguousarray(img)
    raise AvatarImageError(
        f"unsupported image array shape {img.shape}; expected HxW, HxWx3 or HxWx4"
    )


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8; a clear error when it is missing or not an image."""
    path = Path(path)
    if not path.is_file():
        raise AvatarImageError(f"avatar image {path} does not exist")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise AvatarImageError(f"{path} is not an image OpenCV can read (use PNG or JPEG)")
    if raw.ndim == 3 and raw.shape[2] == 3:
        raw = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
    elif raw.ndim == 3 and raw.shape[2] == 4:
        raw = cv2.cvtColor(raw, cv2.COLOR_BGRA2RGBA)
    return to_rgb(raw)


class AvatarPrepMissing(RuntimeError):
    """Preparing a new portrait needs mediapipe, which is in the `avatar-prep` extra."""


def face_mesh_library() -> Any:
    """mediapipe, imported only when a portrait is prepared (a running bot reads the cache), or
    AvatarPrepMissing saying how to install it."""
    try:
        import mediapipe
    except ImportError as exc:
        raise AvatarPrepMissing(
            f"preparing a new avatar image (its face landmarks) needs mediapipe, which is in the "
            f"`{PREP_EXTRA}` extra: run `./avatar setup` in the checkout (it installs it), or "
            f"`uv sync --extra {PREP_EXTRA}` / `pip install 'talking-avatar[{PREP_EXTRA}]'`"
        ) from exc
    return mediapipe


def detect_landmarks(rgb: np.ndarray) -> np.ndarray:
    """(478, 2) pixel landmarks of the one face in `rgb`, or a typed AvatarImageError."""
    mp = face_mesh_library()

    h, w = rgb.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = (
        cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        if scale < 1
        else rgb
    )
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=4, refine_landmarks=True, min_detection_confidence=0.5
    ) as mesh:
        result = mesh.process(np.ascontiguousarray(small))
    faces = result.multi_face_landmarks or []
    if not faces:
        raise NoFaceError(
            "no face found in the avatar image; use a frontal, well-lit portrait "
            "in which the face fills a good part of the picture"
        )
    if len(faces) > 1:
        raise SeveralFacesError(
            f"{len(faces)} faces found in the avatar image; it must show exactly one"
        )
    sh, sw = small.shape[:2]
    pts = np.array([(p.x * sw, p.y * sh) for p in faces[0].landmark], dtype=np.float32) / scale
    width = float(np.linalg.norm(pts[CHEEK_RIGHT] - pts[CHEEK_LEFT]))
    if width < MIN_FACE_WIDTH_PX:
        raise FaceTooSmallError(
            f"the face is {width:.0f} px wide; at least {MIN_FACE_WIDTH_PX} px are needed "
            "(use a larger or closer portrait)"
        )
    return pts


def cache_path(image_path: str | Path) -> Path:
    """Where the landmarks of `image_path` are cached (next to the image)."""
    image_path = Path(image_path)
    return image_path.with_name(image_path.name + CACHE_SUFFIX)


def cached_landmarks(image_path: str | Path, rgb: np.ndarray) -> np.ndarray:
    """Landmarks of the image file, from its cache when the image is unchanged, else detected
    and cached (a read-only folder only costs the cache, with a warning)."""
    image_path = Path(image_path)
    cache = cache_path(image_path)
    digest = file_sha256(image_path)
    if cache.is_file():
        try:
            data = json.loads(cache.read_text())
            if data.get("version") == CACHE_VERSION and data.get("sha256") == digest:
                pts = np.array(data["landmarks"], dtype=np.float32)
                if pts.shape == (NUM_LANDMARKS, 2):
                    return pts
        except (ValueError, KeyError) as e:
            logger.warning(f"ignoring unreadable landmark cache {cache}: {e}")
    pts = detect_landmarks(rgb)
    payload = {
        "version": CACHE_VERSION,
        "sha256": digest,
        "width": rgb.shape[1],
        "height": rgb.shape[0],
        "landmarks": np.round(pts, 2).tolist(),
    }
    try:
        cache.write_text(json.dumps(payload, separators=(",", ":")))
        logger.info(f"cached face landmarks in {cache}")
    except OSError as e:
        logger.warning(f"could not write landmark cache {cache}: {e}")
    return pts


def frame_face(
    rgb: np.ndarray, landmarks: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Crop (padding with the border when needed) and scale the image around the face to
    width x height; returns the framed image and the landmarks moved along with it."""
    h, w = rgb.shape[:2]
    if (w, h) == (width, height):
        return rgb, landmarks
    face_w = float(np.linalg.norm(landmarks[CHEEK_RIGHT] - landmarks[CHEEK_LEFT]))
    aspect = width / height
    crop_h = max(min(face_w * FRAME_FACE_WIDTHS / aspect, h, w / aspect), 1.5 * face_w / aspect)
    s = height / crop_h
    if s < 1:  # shrink first with area averaging, so huge images do not alias
        rgb = cv2.resize(
            rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA
        )
        landmarks = landmarks * [rgb.shape[1] / w, rgb.shape[0] / h]
        h, w = rgb.shape[:2]
        crop_h, s = float(height), 1.0
    crop_w = crop_h * aspect
    cx, cy = landmarks.mean(axis=0)
    x0 = float(np.clip(cx - crop_w / 2, min(0, w - crop_w), max(0, w - crop_w)))
    y0 = float(np.clip(cy - 0.45 * crop_h, min(0, h - crop_h), max(0, h - crop_h)))
    m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], dtype=np.float32)
    framed = cv2.warpAffine(
        rgb, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return framed, (landmarks - [x0, y0]) * s
