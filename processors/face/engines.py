"""Which face engine draws the avatar (FACE_ENGINE), and the fallback that keeps a call going.

`builtin` is the CPU engine; `sadtalker` runs SadTalker (processors.face.sadtalker) behind a
`FallbackFaceEngine`: when SadTalker cannot start (code or checkpoints missing, out of memory),
fails while rendering, or renders slower than real time by more than its margin, the builtin
engine takes over for good, with a log line and a notice to `notify` (the bot sends it to the
client over RTVI). The room keeps talking.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
from loguru import logger

from processors.face.base import Avatar, FaceEngine, RenderedAhead, RendersAhead
from processors.face.builtin import BuiltinFaceEngine
from processors.face.timeline import VisemeTimeline

BUILTIN = "builtin"
SADTALKER = "sadtalker"
ENGINES = (BUILTIN, SADTALKER)


def face_engine(name: str, *, width: int, height: int, fps: int, sadtalker=None,
                notify: Callable[[str], None] | None = None) -> FaceEngine:
    """The engine `name` (one of ENGINES) at this size and rate; `sadtalker` is a
    SadTalkerSettings (needed for "sadtalker")."""
    if name not in ENGINES:
        raise ValueError(f"unknown face engine {name!r}; choose one of {', '.join(ENGINES)}")
    builtin = BuiltinFaceEngine(width=width, height=height, fps=fps)
    if name == BUILTIN:
        return builtin
    from processors.face.sadtalker import (
        SadTalkerFaceEngine,
        SadTalkerSettings,
        SadTalkerUnavailable,
    )

    settings = sadtalker or SadTalkerSettings()
    fallback = FallbackFaceEngine(backup=builtin, max_slowdown=settings.max_slowdown, notify=notify)
    try:
        fallback.primary = SadTalkerFaceEngine(settings=settings, width=width, height=height,
                                               fps=fps)
    except SadTalkerUnavailable as e:
        fallback.fail(str(e))
    return fallback


@dataclass(slots=True)
class _Pair:
    """One avatar prepared by both engines (the primary's None once it failed)."""

    primary: Avatar | None
    backup: Avatar


class FallbackFaceEngine:
    """`primary` while it works, then `backup` for good (see the module docstring).

    `max_slowdown`: seconds of compute per second of video above which the primary is too slow
    for a live call (measured on its idle loop and on each sentence). `failure` says why the
    backup took over (None while the primary runs).
    """

    def __init__(self, *, backup: FaceEngine, primary: FaceEngine | None = None,
                 max_slowdown: float = float("inf"),
                 notify: Callable[[str], None] | None = None) -> None:
        self.primary = primary
        self.backup = backup
        self.fps = backup.fps
        self.max_slowdown = max_slowdown
        self.failure: str | None = None
        self._notify = notify

    @property
    def renders_ahead(self) -> bool:
        return self.failure is None and getattr(self.primary, "renders_ahead", False)

    def fail(self, reason: str) -> None:
        """Hand over to the backup engine (once), saying why."""
        if self.failure is not None:
            return
        self.failure = reason
        logger.warning(f"face engine: {reason}; the builtin face takes over")
        if self._notify:
            self._notify(reason)

    def prepare(self, image: np.ndarray, *, source: Path | None = None) -> Avatar:
        return self._paired(self.backup.prepare(image, source=source),
                            # the primary is set whenever failure is None
                            lambda: self.primary.prepare(image, source=source))  # type: ignore[union-attr]

    def load_avatar(self, path: Path) -> Avatar:
        return self._paired(self.backup.load_avatar(path), lambda: self.primary.load_avatar(path))  # type: ignore[union-attr]

    def _paired(self, backup: Avatar, primary: Callable[[], Avatar]) -> Avatar:
        first = None
        if self.failure is None:
            try:
                first = primary()
                slowdown = getattr(first.rig, "slowdown", 0.0)
                if slowdown > self.max_slowdown:
                    self.fail(f"SadTalker renders {slowdown:.1f} s per second of video here, "
                              f"more than the allowed {self.max_slowdown:g}")
            except Exception as e:  # noqa: BLE001 - any failure of the optional engine
                self.fail(f"SadTalker could not prepare the avatar: {e}")
        return Avatar(image=backup.image, landmarks=backup.landmarks, source=backup.source,
                      rig=_Pair(None if self.failure else first, backup))

    def render_ahead(self, avatar: Avatar, audio: np.ndarray, sample_rate: int) -> _GuardedAhead:
        return _GuardedAhead(self, avatar.rig, audio, sample_rate)

    def render(self, avatar: Avatar, audio: np.ndarray, sample_rate: int,
               timeline: VisemeTimeline, *, start: float = 0.0,
               clock: float = 0.0) -> Iterator[np.ndarray]:
        pair: _Pair = avatar.rig
        if self.failure is None and pair.primary is not None:
            ahead = self.render_ahead(avatar, audio, sample_rate)
            try:
                for k in range(ahead.count):
                    yield ahead.frame(k)
            finally:
                ahead.close()
        else:
            yield from self.backup.render(pair.backup, audio, sample_rate, timeline, start=start,
                                          clock=clock)

    def idle(self, avatar: Avatar, clock: float) -> np.ndarray:
        pair: _Pair = avatar.rig
        if self.failure is None and pair.primary is not None:
            # the primary is set whenever failure is None
            return self.primary.idle(pair.primary, clock)  # type: ignore[union-attr]
        return self.backup.idle(pair.backup, clock)


class _GuardedAhead:
    """The primary's render-ahead of one sentence; on an error (or when it proves too slow)
    the engine fails over and the rest of the sentence is drawn by the backup (its mouth
    following the audio envelope)."""

    def __init__(self, engine: FallbackFaceEngine, pair: _Pair, audio: np.ndarray,
                 sample_rate: int) -> None:
        self._engine, self._pair = engine, pair
        self._audio, self._rate = audio, sample_rate
        self.count = int(np.ceil(len(audio) * engine.fps / sample_rate - 1e-9))
        self._inner: RenderedAhead | None = None
        self._backup: list[np.ndarray] | None = None
        if engine.failure is None and pair.primary is not None:
            try:
                primary = cast(RendersAhead, engine.primary)  # the primary is SadTalker
                self._inner = primary.render_ahead(pair.primary, audio, sample_rate)
            except Exception as e:  # noqa: BLE001
                engine.fail(f"SadTalker failed: {e}")

    @property
    def held_s(self) -> float:
        return self._inner.held_s if self._inner else 0.0

    def ready(self, k: int) -> bool:
        """The primary's frame k is rendered (or the backup draws it, which it does at once)."""
        return self._inner is None or self._backup is not None or self._inner.ready(k)

    def frame(self, k: int) -> np.ndarray:
        if self._inner is not None and self._backup is None:
            try:
                image = self._inner.frame(k)
                slowdown = self._inner.slowdown
                if slowdown > self._engine.max_slowdown:
                    self._engine.fail(f"SadTalker renders {slowdown:.1f} s per second of speech "
                                      f"here, more than the allowed {self._engine.max_slowdown:g}")
                return image
            except Exception as e:  # noqa: BLE001 - out of memory, a model error
                self._engine.fail(f"SadTalker failed while rendering: {e}")
        if self._backup is None:
            backup = self._engine.backup
            timeline = VisemeTimeline.from_audio(self._audio, self._rate)
            self._backup = list(backup.render(self._pair.backup, self._audio, self._rate, timeline))
        return self._backup[min(k, len(self._backup) - 1)]

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
