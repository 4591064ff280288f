"""What every face engine offers, the prepared avatar it works on, and its typed errors.

A face engine turns one portrait into video frames: `prepare` once per avatar (slow parts,
cached), then `render` frames for sentence audio along a `VisemeTimeline` and `idle` frames
between turns. Frame k of a render covers audio samples k*sr/fps ... (k+1)*sr/fps, so audio
and pictures stay locked to the audio sample clock (ARCHITECTURE §5).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from processors.face.timeline import VisemeTimeline

# The project's default portrait (its landmark cache sits next to it), package data of this
# package, so a wheel install finds it too (wheels install as folders: the resource is a path).
DEFAULT_AVATAR = Path(str(resources.files("processors.face") / "assets" / "avatar.png"))


def frame_bounds(k: int, sample_rate: int, fps: int) -> tuple[int, int]:
    """Samples [start, end) that video frame k covers on the audio sample clock."""
    return round(k * sample_rate / fps), round((k + 1) * sample_rate / fps)


class AvatarImageError(ValueError):
    """The avatar image cannot be used; the message says why and what to do."""


class NoFaceError(AvatarImageError):
    """No face was found in the image."""


class SeveralFacesError(AvatarImageError):
    """More than one face was found; the avatar must show exactly one."""


class FaceTooSmallError(AvatarImageError):
    """The face is too small for a usable mouth and eyes."""


@dataclass(slots=True)
class Avatar:
    """A prepared avatar: the framed RGB image at output size and its face landmarks.

    `landmarks` are (478, 2) pixel coordinates in `image`; `rig` holds what the engine
    precomputed from them (meshes, warp fields) and is private to that engine.
    """

    image: np.ndarray
    landmarks: np.ndarray
    source: Path | None = None
    rig: Any = field(default=None, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames this avatar renders."""
        return self.image.shape[1], self.image.shape[0]


class FaceEngine(Protocol):
    """Turns a portrait plus speech into frames at `fps`."""

    fps: int

    def prepare(self, image: np.ndarray, *, source: Path | None = None) -> Avatar:
        """Find the face and precompute everything per-frame rendering needs."""
        ...

    def load_avatar(self, path: Path) -> Avatar:
        """`prepare` an image file, reusing what is cached next to it (landmarks)."""
        ...

    def render(self, avatar: Avatar, audio: np.ndarray, sample_rate: int,
               timeline: VisemeTimeline, *, start: float = 0.0,
               clock: float = 0.0) -> Iterator[np.ndarray]:
        """One RGB frame per 1/fps of `audio` (int16 mono); `audio[0]` sits at `start` seconds
        of `timeline`; `clock` is the idle-motion time of the first frame."""
        ...

    def idle(self, avatar: Avatar, clock: float) -> np.ndarray:
        """A silent frame at idle-motion time `clock` (blinks, breathing, sway)."""
        ...


class RenderedAhead(Protocol):
    """One sentence's frames rendered ahead in a worker, handed out in order."""

    count: int

    @property
    def held_s(self) -> float:
        """Seconds the sentence's audio waited for its frames."""
        ...

    @property
    def slowdown(self) -> float:
        """Seconds of compute per second of video so far."""
        ...

    def ready(self, k: int) -> bool:
        """Whether frame `k` is rendered (`frame(k)` returns without waiting)."""
        ...

    def frame(self, k: int) -> np.ndarray:
        """Frame `k`, waiting until it is rendered."""
        ...

    def close(self) -> None:
        """Stop rendering (the rest of the sentence is not needed)."""
        ...


class RendersAhead(FaceEngine, Protocol):
    """A FaceEngine that renders a whole sentence ahead (SadTalker; see FaceVideoProcessor)."""

    @property
    def renders_ahead(self) -> bool: ...

    def render_ahead(self, avatar: Avatar, audio: np.ndarray, sample_rate: int) -> RenderedAhead:
        """Start rendering `audio`'s frames."""
        ...
