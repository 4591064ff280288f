"""Uploaded audio: a WAV/MP3/OGG file decoded to mono float samples (bounded in length, whatever
the file claims), and samples written back as 16-bit WAV."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import av
import numpy as np
import soxr

from voices.errors import UnsupportedFormat, VoiceError

# Containers PyAV may open for an upload (WAV, MP3, OGG/Vorbis/Opus).
ACCEPTED_FORMATS = frozenset({"wav", "mp3", "ogg"})
# Highest sample rate a clip may declare (the decode buffer is sized from it).
MAX_SAMPLE_RATE = 192_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Clip:
    """Decoded upload: mono float32 at its own rate, plus where it came from."""

    samples: np.ndarray
    sample_rate: int
    filename: str

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    def at(self, rate: int) -> np.ndarray:
        if rate == self.sample_rate:
            return self.samples
        return soxr.resample(self.samples, self.sample_rate, rate).astype(np.float32)

    def between(self, start: float, end: float) -> Clip:
        """The part from start to end seconds."""
        rate = self.sample_rate
        return Clip(
            samples=self.samples[int(start * rate) : int(end * rate)],
            sample_rate=rate,
            filename=self.filename,
        )


def decode_clip(path: Path, filename: str, *, max_s: float) -> Clip:
    """WAV/MP3/OGG file → mono float32 at its own sample rate (PyAV), streamed: a clip longer
    than max_s is refused from its container's declared duration before any decoding, and
    while decoding as soon as its samples pass max_s, so memory stays bounded by max_s of audio
    whatever the file claims. A VoiceError if it is not such a file."""
    try:
        with av.open(str(path)) as container:
            formats = set(container.format.name.split(","))
            if not formats & ACCEPTED_FORMATS:
                raise UnsupportedFormat(
                    "unsupported_format",
                    f"{container.format.name} files are not accepted; send WAV, MP3 or OGG",
                )
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise VoiceError("not_audio", "the file has no audio stream")
            declared = _declared_seconds(container, stream)
            if declared is not None and declared > max_s + 1.0:
                raise VoiceError("too_long", f"the clip is {declared:.1f} s; at most {max_s:g} s")
            rate = cast(av.AudioStream, stream).rate
            if not rate or not 0 < rate <= MAX_SAMPLE_RATE:
                raise VoiceError("not_audio", f"unsupported sample rate {rate}")
            limit = int(max_s * rate) + 1
            buffer = np.empty(limit, np.float32)  # pages are only touched as samples arrive
            count = 0
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            for frame in _frames(container, stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    if count + len(chunk) > limit:
                        raise VoiceError("too_long", f"the clip is longer than {max_s:g} s")
                    buffer[count : count + len(chunk)] = chunk
                    count += len(chunk)
    except av.error.FFmpegError as e:
        raise VoiceError(
            "not_audio",
            f"the file could not be decoded as audio ({e.strerror or type(e).__name__})",
        ) from None
    return Clip(samples=buffer[:count], sample_rate=rate, filename=filename)


def _frames(container, stream):
    """The stream's decoded frames, then None (flushes the resampler)."""
    yield from container.decode(stream)
    yield None


def _declared_seconds(container, stream) -> float | None:
    """The duration the container or stream header declares, if any."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Mono float samples → 16-bit PCM WAV."""
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
