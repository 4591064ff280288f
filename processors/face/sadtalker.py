"""The SadTalker face engine: a GPU talking head driven by SadTalker's own models.

SadTalker (Apache-2.0) comes from the user's install: the `sadtalker` package (`sadtalker-z` on
PyPI, SadTalker's code without weights) or a checkout of github.com/OpenTalker/SadTalker (its
`src` package), and a checkpoint folder with `SadTalker_V0.0.2_{256,512}.safetensors` and
`mapping_00229-model.pth.tar` from SadTalker's releases, plus its config folder (a checkout's
`src/config`: the model yamls and `similarity_Lm3D_all.mat`). No enhancer runs.

Prepare (once per avatar, cached next to the image): the portrait is framed around the face
with the project's mediapipe landmarks (SadTalker's own face detector weights are not needed),
five of them place it for SadTalker's 3DMM reconstruction network, and the 73 coefficients are
cached next to the picture, keyed by the picture and by a digest of the 3DMM weights that made
them (other checkpoints never reuse them); the keypoints of the source picture and a short idle loop
(SadTalker's zero-audio "idle mode") are rendered once. Speech: audio -> mel windows ->
Audio2Coeff (expression + head pose per 25 fps frame) -> frames in batches through the mapping
net, keypoint transform and generator. `render_ahead` runs that in a worker thread and hands
frames out as they are ready, so a caller can hold each piece of audio until its picture exists.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import soundfile
from loguru import logger

from avatar_core.files import file_sha256
from processors.face.base import Avatar
from processors.face.landmarks import cached_landmarks, detect_landmarks, frame_face, load_image
from processors.face.timeline import VisemeTimeline

# SadTalker's audio models work on 16 kHz audio at 25 coefficient frames per second.
SADTALKER_FPS = 25
SADTALKER_RATE = 16000
SIZES = (256, 512)
# Frames of context on each side of a target frame in the mapping net's input (SadTalker's).
SEMANTIC_RADIUS = 13
# The 257 outputs of the 3DMM reconstruction net: identity, expression, texture, angles,
# lighting, translation; SadTalker keeps expression, angles and translation.
EXP_SLICE, ANGLE_SLICE, TRANS_SLICE = slice(80, 144), slice(224, 227), slice(254, 257)
# Mediapipe indices of SadTalker's five alignment points: eye centres (corner pairs), nose tip,
# mouth corners, in its order (image-left eye first).
FIVE_POINTS = ((33, 133), (362, 263), (1,), (61,), (291,))
# The 3DMM net's input: the face aligned to SadTalker's 5-point template at this scale and size.
ALIGN_RESCALE, ALIGN_SIZE = 102.0, 224.0
CHECKPOINT = "SadTalker_V0.0.2_{size}.safetensors"
MAPPING_CHECKPOINT = "mapping_00229-model.pth.tar"
CONFIG_FILES = ("auido2exp.yaml", "auido2pose.yaml", "facerender.yaml", "similarity_Lm3D_all.mat")
CACHE_SUFFIX = ".sadtalker-{size}.json"
CACHE_VERSION = 2  # 2: keyed by the 3DMM weights too
DEFAULT_IDLE_S = 2.0
DEFAULT_BATCH = 8
# A live call falls back to the builtin face when rendering takes longer than this many
# seconds per second of video (the call would hold audio for longer than it plays).
DEFAULT_MAX_SLOWDOWN = 3.0


class SadTalkerUnavailable(RuntimeError):
    """SadTalker cannot run here (code, config or checkpoints missing, out of memory, too slow);
    the message says why and what to do."""


class SadTalkerTooSlow(SadTalkerUnavailable):
    """Rendering is slower than real time by more than the allowed margin."""


@dataclass(frozen=True, slots=True)
class SadTalkerSettings:
    """Where SadTalker's code, config and checkpoints are, and how it runs."""

    checkpoints: Path = Path("checkpoints")
    config: Path | None = None  # default: the checkout's src/config
    code: Path | None = None  # a SadTalker checkout; None: the installed `sadtalker` package
    size: int = 256
    device: str = ""  # "" = cuda when available, else cpu
    batch: int = DEFAULT_BATCH
    max_slowdown: float = DEFAULT_MAX_SLOWDOWN
    idle_s: float = DEFAULT_IDLE_S

    @property
    def config_folder(self) -> Path | None:
        return self.config or (self.code / "src" / "config" if self.code else None)


def load_sadtalker(code: Path | None = None) -> types.SimpleNamespace:
    """SadTalker's modules that the engine uses, from a checkout (`code`) or the package.

    The package's own `__init__` imports its demo app (face enhancer, task scheduler), so the
    package folder is registered without running it and only the model modules are imported.
    """
    if code is not None:
        name, folder = "src", code / "src"
        if not (folder / "facerender").is_dir():
            raise SadTalkerUnavailable(f"{code} is not a SadTalker checkout (no src/facerender)")
    else:
        name = "sadtalker"
        loaded = getattr(sys.modules.get(name), "__path__", None)
        spec = None if loaded else importlib.util.find_spec(name)
        if not loaded and (spec is None or not spec.submodule_search_locations):
            raise SadTalkerUnavailable(
                "SadTalker is not installed: `uv sync --extra avatar-prep --group sadtalker` "
                "(or set SADTALKER_DIR to a checkout)"
            )
        # spec is checked above whenever the module is not loaded
        folder = Path(list(loaded or spec.submodule_search_locations)[0])  # type: ignore[arg-type, union-attr]
    if getattr(sys.modules.get(name), "__path__", None) != [str(folder)]:
        package = types.ModuleType(name)
        package.__path__ = [str(folder)]
        sys.modules[name] = package

    def module(path: str):
        return importlib.import_module(f"{name}.{path}")

    try:
        return types.SimpleNamespace(
            audio2coeff=module("test_audio2coeff"),
            batch=module("generate_batch"),
            render_batch=module("generate_facerender_batch"),
            networks=module("face3d.models.networks"),
            align=module("face3d.util.preprocess"),
            mats=module("face3d.util.load_mats"),
            generator=module("facerender.modules.generator"),
            keypoints=module("facerender.modules.keypoint_detector"),
            mapping=module("facerender.modules.mapping"),
            animation=module("facerender.modules.make_animation"),
            paths=module("utils.init_path"),
            safetensors=module("utils.safetensor_helper"),
        )
    except ImportError as e:
        raise SadTalkerUnavailable(f"SadTalker's code needs a package that is missing: {e} "
                                   f"(`uv sync --extra avatar-prep --group sadtalker`)") from e


@dataclass(slots=True)
class _Rig:
    """What the engine precomputed for one avatar (tensors on the engine's device)."""

    coefficients: np.ndarray  # (1, 73) 3DMM coefficients of the source picture
    source: object  # (1, 3, S, S) picture
    source_semantics: object  # (1, 70, 27)
    kp_canonical: dict
    kp_source: dict
    idle: list[np.ndarray] = field(default_factory=list)  # the idle loop, frames at output size
    slowdown: float = 0.0  # seconds of compute per second of video, measured on the idle loop


class SadTalkerFaceEngine:
    """FaceEngine for SadTalker (see the module docstring); `renders_ahead` frames per sentence."""

    renders_ahead = True

    def __init__(self, *, settings: SadTalkerSettings, width: int = 512, height: int = 512,
                 fps: int = SADTALKER_FPS, idle_s: float | None = None) -> None:
        if settings.size not in SIZES:
            raise ValueError(f"SadTalker size must be one of {SIZES}, not {settings.size}")
        import torch

        self.fps = fps
        self._width, self._height = width, height
        self._size = settings.size
        self._batch = max(1, settings.batch)
        self._idle_s = settings.idle_s if idle_s is None else idle_s
        self.max_slowdown = settings.max_slowdown
        self._torch = torch
        self.device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._st = load_sadtalker(settings.code)
        self._paths = self._checked_paths(settings)
        self._lock = threading.Lock()  # one render at a time on the device
        self._work = Path(tempfile.mkdtemp(prefix="sadtalker-"))
        try:
            self._load_models()
        except torch.cuda.OutOfMemoryError as e:
            raise SadTalkerUnavailable(f"out of GPU memory loading SadTalker: {e}") from e
        except (RuntimeError, KeyError, OSError) as e:
            raise SadTalkerUnavailable(f"SadTalker checkpoints do not load: {e}") from e
        logger.info(f"SadTalker {self._size} on {self.device} from "
                    f"{settings.code or 'the sadtalker package'}")

    def _checked_paths(self, settings: SadTalkerSettings) -> dict:
        config = settings.config_folder
        if config is None:
            raise SadTalkerUnavailable("SadTalker needs its config folder: set SADTALKER_CONFIG "
                                       "to a checkout's src/config (or SADTALKER_DIR)")
        wanted = [config / name for name in CONFIG_FILES]
        wanted += [settings.checkpoints / CHECKPOINT.format(size=self._size),
                   settings.checkpoints / MAPPING_CHECKPOINT]
        missing = [str(p) for p in wanted if not p.is_file()]
        if missing:
            raise SadTalkerUnavailable(f"SadTalker files missing: {', '.join(missing)} (README: "
                                       f"GPU engines)")
        paths = self._st.paths.init_path(str(settings.checkpoints), str(config), self._size,
                                         False, "crop")
        return paths

    def _load_models(self) -> None:
        import safetensors.torch
        import yaml

        torch, st, device = self._torch, self._st, self.device
        self._audio2coeff = st.audio2coeff.Audio2Coeff(self._paths, device)
        weights = safetensors.torch.load_file(self._paths["checkpoint"])

        def part(prefix: str) -> dict:
            return st.safetensors.load_x_from_safetensor(weights, prefix)

        recon = st.networks.define_net_recon(net_recon="resnet50", use_last_fc=False, init_path="")
        recon_weights = part("face_3drecon")
        recon.load_state_dict(recon_weights)
        self._recon_digest = weights_digest(recon_weights)
        with open(self._paths["facerender_yaml"]) as f:
            params = yaml.safe_load(f)["model_params"]
        common = params["common_params"]
        generator = st.generator.OcclusionAwareSPADEGenerator(
            **params["generator_params"], **common
        )
        generator.load_state_dict(part("generator"))
        kp_detector = st.keypoints.KPDetector(**params["kp_detector_params"], **common)
        kp_detector.load_state_dict(part("kp_extractor"))
        mapping = st.mapping.MappingNet(**params["mapping_params"])
        mapping.load_state_dict(
            torch.load(self._paths["mappingnet_checkpoint"], map_location="cpu", weights_only=True)[
                "mapping"
            ]
        )
        self._recon, self._generator = recon.to(device).eval(), generator.to(device).eval()
        self._kp_detector, self._mapping = kp_detector.to(device).eval(), mapping.to(device).eval()
        self._lm3d = st.mats.load_lm3d(self._paths["dir_of_BFM_fitting"])

    # -- prepare -----------------------------------------------------------------------------------
    def prepare(
        self, image: np.ndarray, *, source: Path | None = None, landmarks: np.ndarray | None = None
    ) -> Avatar:
        """Frame the portrait, find its 3DMM coefficients (or take them from the cache next to
        `source`), and render the source keypoints and the idle loop."""
        landmarks = detect_landmarks(image) if landmarks is None else landmarks
        framed, lm = frame_face(image, landmarks, self._width, self._height)
        coefficients = self._cached_coefficients(source, framed, lm)
        avatar = Avatar(image=framed, landmarks=lm, source=source)
        avatar.rig = self._rig(framed, coefficients)
        if self._idle_s <= 0:  # offline videos need no idle loop
            return avatar
        started = time.perf_counter()
        avatar.rig.idle = self._idle_loop(avatar)
        avatar.rig.slowdown = (time.perf_counter() - started) / max(self._idle_s, 1e-6)
        logger.info(
            f"SadTalker: idle loop of {len(avatar.rig.idle)} frames rendered, "
            f"{avatar.rig.slowdown:.2f} s of compute per second of video"
        )
        return avatar

    def load_avatar(self, path: Path) -> Avatar:
        rgb = load_image(path)
        return self.prepare(rgb, source=path, landmarks=cached_landmarks(path, rgb))

    def _cached_coefficients(
        self, source: Path | None, framed: np.ndarray, lm: np.ndarray
    ) -> np.ndarray:
        if source is None:
            return self.coefficients(framed, lm)
        return cached_coefficients(source, size=self._size, weights=self._recon_digest,
                                   compute=lambda: self.coefficients(framed, lm))

    def coefficients(self, framed: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The (1, 73) coefficients SadTalker keeps of a picture: expression, angles,
        translation and the alignment's scale and shift (as SadTalker's CropAndExtract)."""
        from PIL import Image

        torch, s = self._torch, self._size
        scale = np.array([s / framed.shape[1], s / framed.shape[0]])
        picture = cv2.resize(framed, (s, s), interpolation=cv2.INTER_AREA)
        five = np.array([landmarks[list(i)].mean(axis=0) for i in FIVE_POINTS]) * scale
        five[:, 1] = s - 1 - five[:, 1]  # SadTalker's alignment counts y upwards
        # SadTalker's align_img, minus its array construction that numpy >= 1.24 rejects.
        shift, scale = self._st.align.POS(five.T, self._lm3d.T)
        scale = ALIGN_RESCALE / scale
        aligned, _, _ = self._st.align.resize_n_crop_img(
            Image.fromarray(picture), five, shift, scale, target_size=ALIGN_SIZE
        )
        params = np.array([s, s, scale, shift[0, 0], shift[1, 0]], np.float32)
        tensor = torch.tensor(np.array(aligned) / 255.0, dtype=torch.float32)
        with self._lock, torch.no_grad():
            full = self._recon(tensor.permute(2, 0, 1)[None].to(self.device)).cpu().numpy()
        return np.concatenate(
            [full[:, EXP_SLICE], full[:, ANGLE_SLICE], full[:, TRANS_SLICE], params[None, 2:]],
            axis=1,
        ).astype(np.float32)

    def _rig(self, framed: np.ndarray, coefficients: np.ndarray) -> _Rig:
        torch, s = self._torch, self._size
        picture = cv2.resize(framed, (s, s), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        source = torch.tensor(picture).permute(2, 0, 1)[None].to(self.device)
        semantics = self._st.render_batch.transform_semantic_1(
            coefficients[:1, :70], SEMANTIC_RADIUS
        )
        semantics = torch.tensor(semantics, dtype=torch.float32)[None].to(self.device)
        with self._lock, torch.no_grad():
            kp_canonical = self._kp_detector(source)
            kp_source = self._st.animation.keypoint_transformation(
                kp_canonical, self._mapping(semantics)
            )
        return _Rig(coefficients, source, semantics, kp_canonical, kp_source)

    def _idle_loop(self, avatar: Avatar) -> list[np.ndarray]:
        """SadTalker's idle mode (no audio: blinks and head motion), played forth and back so
        the loop has no seam."""
        motion = self.motion(avatar, None, SADTALKER_RATE, seconds=self._idle_s)
        frames = [f for batch in self._frames(avatar, motion) for f in batch]
        return frames + frames[-2:0:-1]

    # -- speech ------------------------------------------------------------------------------------
    def motion(
        self, avatar: Avatar, audio: np.ndarray | None, sample_rate: int, *, seconds: float = 0.0
    ) -> np.ndarray:
        """(T, 70) expression + pose coefficients at 25 fps for `audio` (int16 mono), or for
        `seconds` of silence in SadTalker's idle mode when `audio` is None."""
        import scipy.io

        rig: _Rig = avatar.rig
        with tempfile.TemporaryDirectory(dir=self._work) as folder:
            first = Path(folder) / "source.mat"
            scipy.io.savemat(first, {"coeff_3dmm": rig.coefficients})
            wav = Path(folder) / "speech.wav"
            if audio is not None:
                frames = max(1, int(np.ceil(len(audio) * SADTALKER_FPS / sample_rate)))
                padded = np.zeros(round(frames * sample_rate / SADTALKER_FPS), np.int16)
                padded[: len(audio)] = audio[: len(padded)]
                soundfile.write(wav, padded, sample_rate, subtype="PCM_16")
            batch = self._st.batch.get_data(
                str(first),
                str(wav),
                self.device,
                None,
                still=False,
                idlemode=audio is None,
                length_of_audio=seconds,
                use_blink=True,
            )
            with self._lock:
                path = self._audio2coeff.generate(batch, folder, 0)
            return scipy.io.loadmat(path)["coeff_3dmm"].astype(np.float32)

    def _frames(self, avatar: Avatar, motion: np.ndarray) -> Iterator[list[np.ndarray]]:
        """Frames (output size, RGB uint8) of `motion`'s rows, `batch` consecutive rows at once."""
        torch, rig = self._torch, avatar.rig
        window = self._st.render_batch.transform_semantic_target
        transform = self._st.animation.keypoint_transformation
        for first in range(0, len(motion), self._batch):
            rows = range(first, min(first + self._batch, len(motion)))
            target = torch.tensor(
                np.stack([window(motion, k, SEMANTIC_RADIUS) for k in rows]), dtype=torch.float32
            ).to(self.device)
            n = len(rows)
            canonical = {"value": rig.kp_canonical["value"].expand(n, -1, -1)}
            source = {"value": rig.kp_source["value"].expand(n, -1, -1)}
            with self._lock, torch.no_grad():
                driving = transform(canonical, self._mapping(target))
                out = self._generator(
                    rig.source.expand(n, -1, -1, -1), kp_source=source, kp_driving=driving
                )["prediction"]
            pictures = (out.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
            yield [
                cv2.resize(p, (self._width, self._height), interpolation=cv2.INTER_LINEAR)
                for p in pictures
            ]

    def render_ahead(self, avatar: Avatar, audio: np.ndarray, sample_rate: int) -> RenderAhead:
        """Start rendering `audio`'s frames in a worker thread; see RenderAhead."""
        return RenderAhead(self, avatar, audio, sample_rate)

    def render(
        self,
        avatar: Avatar,
        audio: np.ndarray,
        sample_rate: int,
        timeline: VisemeTimeline | None = None,
        *,
        start: float = 0.0,
        clock: float = 0.0,
    ) -> Iterator[np.ndarray]:
        """One frame per 1/fps of `audio` (the timeline is not needed: SadTalker hears the
        audio itself), rendered ahead in a worker while the caller consumes them."""
        ahead = self.render_ahead(avatar, audio, sample_rate)
        try:
            for k in range(ahead.count):
                yield ahead.frame(k)
        finally:
            ahead.close()

    def idle(self, avatar: Avatar, clock: float) -> np.ndarray:
        """The cached idle loop's frame at `clock` (the still portrait without a loop)."""
        loop = avatar.rig.idle
        if not loop:
            return avatar.image.copy()
        return loop[int(clock * SADTALKER_FPS) % len(loop)].copy()


def frame_rows(count: int, fps: int) -> list[int]:
    """The 25 fps motion row each of `count` frames at `fps` shows (by its centre time)."""
    return [int((k + 0.5) * SADTALKER_FPS / fps) for k in range(count)]


class RenderAhead:
    """Frames of one sentence rendered in a worker thread, handed out in order.

    `frame(k)` blocks until frame k exists (the caller holds that frame's audio meanwhile) and
    adds the wait to `held_s`; a render error is raised there. `slowdown` is compute seconds
    per second of video so far.
    """

    def __init__(
        self, engine: SadTalkerFaceEngine, avatar: Avatar, audio: np.ndarray, sample_rate: int
    ) -> None:
        self.count = int(np.ceil(len(audio) * engine.fps / sample_rate - 1e-9))
        self.held_s = 0.0
        self.compute_s = 0.0
        self._rows = frame_rows(self.count, engine.fps)
        self._ready: list[np.ndarray] = []  # by motion row
        self._error: BaseException | None = None
        self._done = False
        self._closed = False
        self._changed = threading.Condition()
        self._worker = threading.Thread(
            target=self._run,
            args=(engine, avatar, audio, sample_rate),
            name="sadtalker-render",
            daemon=True,
        )
        self._worker.start()

    @property
    def slowdown(self) -> float:
        with self._changed:
            done = len(self._ready)
        return self.compute_s / max(done / SADTALKER_FPS, 1e-6)

    def _run(self, engine, avatar, audio, sample_rate) -> None:
        started = time.perf_counter()
        try:
            motion = engine.motion(avatar, audio, sample_rate)
            for batch in engine._frames(avatar, motion):
                with self._changed:
                    if self._closed:
                        return
                    self._ready += batch
                    self.compute_s = time.perf_counter() - started
                    self._changed.notify_all()
            with self._changed:
                self._done = True
                self._changed.notify_all()
        except BaseException as e:  # handed to the consumer, which decides
            with self._changed:
                self._error = e
                self._changed.notify_all()

    def ready(self, k: int) -> bool:
        with self._changed:
            return (len(self._ready) > self._rows[k] or self._done or self._closed
                    or self._error is not None)

    def frame(self, k: int) -> np.ndarray:
        row = self._rows[k]
        waited = time.perf_counter()
        with self._changed:
            while (
                len(self._ready) <= row
                and not self._done
                and self._error is None
                and not self._closed
            ):
                self._changed.wait()
            self.held_s += time.perf_counter() - waited
            if self._error is not None:
                raise self._error
            if self._closed:
                raise RuntimeError("frame asked of a closed render")
            return self._ready[min(row, len(self._ready) - 1)].copy()

    def close(self) -> None:
        """Stop rendering (an interruption); frames already rendered are dropped."""
        with self._changed:
            self._closed = True
            self._ready = []
            self._changed.notify_all()


def cached_coefficients(source: Path, *, size: int, weights: str,
                        compute: Callable[[], np.ndarray]) -> np.ndarray:
    """The coefficients of the picture `source`, from the cache next to it when both the picture
    and the 3DMM weights that made them (`weights`, their digest) are unchanged, else computed
    and cached: coefficients made with other checkpoints are never reused."""
    cache = source.with_name(source.name + CACHE_SUFFIX.format(size=size))
    key = {"version": CACHE_VERSION, "sha256": file_sha256(source),
           "weights": weights}
    try:
        data = json.loads(cache.read_text())
        if all(data.get(name) == value for name, value in key.items()):
            return np.array(data["coefficients"], np.float32).reshape(1, -1)
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    coefficients = compute()
    try:
        cache.write_text(json.dumps(key | {"coefficients": coefficients.ravel().tolist()}))
    except OSError as e:
        logger.warning(f"could not write the SadTalker cache {cache}: {e}")
    return coefficients


def weights_digest(tensors: Mapping[str, Any]) -> str:
    """sha256 of named torch tensors (names, dtypes, shapes and values), as a cache key for what
    a network with these weights computes."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()
