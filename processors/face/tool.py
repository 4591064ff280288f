"""The avatar tool: prepare a portrait (landmarks + mesh preview) and render speech to MP4.

    uv run python -m processors.face prepare IMAGE [--preview OUT.png]
    uv run python -m processors.face render --text "..." | --wav FILE -o out.mp4 [--image IMAGE]
        [--engine builtin|sadtalker] [--size 512] [--fps 25] [--strip strip.png]

`prepare` detects and caches the landmarks next to the image (what the bot reads at runtime)
and draws the face mesh and the engine's warp boxes on a preview. `render` (`make_video`, also
behind the token server's avatar-video API) speaks text with the embedded voice (exact visemes)
or takes a WAV (envelope fallback), draws it with the builtin engine or SadTalker (settings from
SADTALKER_*), and writes an H.264/AAC MP4 through PyAV as the frames come, optionally with a PNG
strip of frames for a quick look.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import cv2
import numpy as np
from loguru import logger

from avatar_core.settings import load_settings
from processors.face.base import DEFAULT_AVATAR, Avatar, AvatarImageError, FaceEngine
from processors.face.builtin import BuiltinFaceEngine
from processors.face.engines import BUILTIN, ENGINES, SADTALKER
from processors.face.landmarks import (
    cache_path,
    cached_landmarks,
    face_mesh_library,
    load_image,
)
from processors.face.sadtalker import SadTalkerSettings, SadTalkerUnavailable
from processors.face.timeline import VisemeTimeline
from processors.timing import VisemeTiming

MP4_VIDEO_CODEC = "libx264"
MP4_AUDIO_CODEC = "aac"
STRIP_FRAMES = 10


@dataclass(frozen=True, slots=True)
class VideoRequest:
    """One avatar video: speech from `text` (the embedded voice `voice` at `speed`) or a WAV
    file, the portrait, the engine (one of ENGINES), the square frame side and the rate."""

    out: Path
    text: str | None = None
    wav: Path | None = None
    image: Path = DEFAULT_AVATAR
    engine: str = BUILTIN
    size: int = 512
    fps: int = 25
    voice: str = "heart"
    speed: float = 1.0
    sadtalker: SadTalkerSettings | None = None


def make_video(request: VideoRequest, *, progress: Callable[[float], None] | None = None,
               on_frame: Callable[[np.ndarray], None] | None = None) -> float:
    """Render `request` to its MP4; `progress` hears the share of frames written. Returns the
    speech's duration in seconds. Raises ValueError / AvatarImageError / SadTalkerUnavailable
    with a reason for bad input or an engine that cannot run."""
    if request.engine not in ENGINES:
        raise ValueError(f"unknown face engine {request.engine!r}; choose one of "
                         f"{', '.join(ENGINES)}")
    if request.text is not None:
        audio, sr, visemes = speak(request.text, voice=request.voice, speed=request.speed)
        timeline = VisemeTimeline.from_visemes(visemes).with_audio(audio, sr)
    else:
        # a VideoRequest without text has a wav (checked when parsed)
        audio, sr = read_wav(request.wav)  # type: ignore[arg-type]
        timeline = VisemeTimeline.from_audio(audio, sr)
    engine: FaceEngine
    if request.engine == SADTALKER:
        from processors.face.sadtalker import SadTalkerFaceEngine

        engine = SadTalkerFaceEngine(settings=request.sadtalker or SadTalkerSettings(),
                                     width=request.size, height=request.size, fps=request.fps,
                                     idle_s=0.0)
    else:
        engine = BuiltinFaceEngine(width=request.size, height=request.size, fps=request.fps)
    avatar = engine.load_avatar(request.image)
    total = math.ceil(len(audio) * request.fps / sr - 1e-9)

    def frames() -> Iterable[np.ndarray]:
        for k, frame in enumerate(engine.render(avatar, audio, sr, timeline)):
            if on_frame:
                on_frame(frame)
            if progress:
                progress((k + 1) / total)
            yield frame

    write_mp4(request.out, frames(), request.fps, audio, sr)
    return len(audio) / sr


def speak(text: str, *, voice: str = "heart", speed: float = 1.0
          ) -> tuple[np.ndarray, int, list[VisemeTiming]]:
    """Text spoken by the embedded voice, sentence by sentence, with visemes on one clock."""
    from processors.tts.hibari_voice import HibariVoice

    tts = HibariVoice(voice=voice, speed=speed)
    pieces, visemes, offset = [], [], 0.0
    for sentence in tts.sentences(text):
        speech = tts.synthesize(sentence)
        pieces.append(speech.audio)
        visemes += [VisemeTiming(v.viseme, v.start + offset, v.duration) for v in speech.visemes]
        offset += speech.duration
    if not pieces:
        raise ValueError("nothing to say: the text has no words")
    return np.concatenate(pieces), tts.sample_rate, visemes


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV as int16 mono (channels averaged)."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
            data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
            channels, rate = w.getnchannels(), w.getframerate()
    except (wave.Error, EOFError, OSError) as e:
        raise ValueError(f"{path} is not a readable WAV file: {e}") from e
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return data, rate


def write_mp4(path: Path, frames: Iterable[np.ndarray], fps: int, audio: np.ndarray,
              sample_rate: int) -> None:
    """H.264 + AAC MP4 of RGB frames (written as they come) and int16 mono audio."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = iter(frames)
    first = next(frames)
    with av.open(str(path), "w") as out:
        vs = cast(av.VideoStream, out.add_stream(MP4_VIDEO_CODEC, rate=fps))
        vs.width, vs.height = first.shape[1], first.shape[0]
        vs.pix_fmt = "yuv420p"
        as_ = cast(av.AudioStream, out.add_stream(MP4_AUDIO_CODEC, rate=sample_rate))
        as_.layout = "mono"
        for img in itertools.chain([first], frames):
            out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(vs.encode())
        step = 1024
        for i in range(0, len(audio), step):
            chunk = audio[i:i + step]
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = sample_rate
            frame.pts = i
            frame.time_base = Fraction(1, sample_rate)
            out.mux(as_.encode(frame))
        out.mux(as_.encode())


def write_strip(path: Path, frames: list[np.ndarray], count: int = STRIP_FRAMES,
                crop: tuple[int, int, int, int] | None = None) -> None:
    """A row of `count` evenly spaced frames (optionally cropped x0, y0, x1, y1) as PNG."""
    idx = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    tiles = [
        frames[i] if crop is None else frames[i][crop[1] : crop[3], crop[0] : crop[2]] for i in idx
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.hstack(tiles), cv2.COLOR_RGB2BGR))


def draw_preview(avatar: Avatar) -> np.ndarray:
    """The framed avatar with the face mesh, and the engine's warp boxes."""
    mp = face_mesh_library()

    img = avatar.image.copy()
    pts = avatar.landmarks.round().astype(int)
    for a, b in mp.solutions.face_mesh.FACEMESH_TESSELATION:
        cv2.line(img, tuple(pts[a]), tuple(pts[b]), (80, 220, 120), 1, cv2.LINE_AA)
    for region, colour in ((avatar.rig.mouth, (230, 80, 60)), (avatar.rig.eyes, (60, 120, 230))):
        cv2.rectangle(img, (region.x0, region.y0), (region.x1 - 1, region.y1 - 1), colour, 1)
    return img


def prepare(image: Path, preview: Path | None) -> Path:
    rgb = load_image(image)
    landmarks = cached_landmarks(image, rgb)
    engine = BuiltinFaceEngine()
    avatar = engine.prepare(rgb, source=image, landmarks=landmarks)
    preview = preview or image.with_name(image.stem + ".preview.png")
    cv2.imwrite(str(preview), cv2.cvtColor(draw_preview(avatar), cv2.COLOR_RGB2BGR))
    logger.info(f"landmarks: {cache_path(image)}; preview: {preview}")
    return preview


def render(request: VideoRequest, strip: Path | None) -> None:
    kept: list[np.ndarray] = []
    duration = make_video(request, on_frame=kept.append if strip else None)
    logger.info(f"wrote {request.out}: {duration:.2f} s at {request.fps} fps")
    if strip:
        write_strip(strip, kept)
        logger.info(f"wrote {strip}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m processors.face", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="detect + cache landmarks, write a mesh preview PNG")
    p.add_argument("image", type=Path)
    p.add_argument("--preview", type=Path, help="preview PNG (default: IMAGE_STEM.preview.png)")
    r = sub.add_parser("render", help="speak text or a WAV with the avatar into an MP4")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--text")
    src.add_argument("--wav", type=Path)
    r.add_argument("-o", "--out", type=Path, required=True)
    r.add_argument("--image", type=Path, default=DEFAULT_AVATAR)
    r.add_argument("--strip", type=Path, help="also write a PNG strip of frames")
    r.add_argument("--fps", type=int, default=25)
    r.add_argument("--size", type=int, default=512, help="square frame side in pixels")
    r.add_argument(
        "--engine",
        choices=ENGINES,
        default=BUILTIN,
        help="face engine (sadtalker reads SADTALKER_* settings)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            prepare(args.image, args.preview)
        else:
            sadtalker = (SadTalkerSettings(**load_settings().bot.sadtalker.given())
                         if args.engine == SADTALKER else None)
            render(
                VideoRequest(
                    out=args.out,
                    text=args.text,
                    wav=args.wav,
                    image=args.image,
                    engine=args.engine,
                    size=args.size,
                    fps=args.fps,
                    sadtalker=sadtalker,
                ),
                args.strip,
            )
    except (AvatarImageError, ValueError, SadTalkerUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
