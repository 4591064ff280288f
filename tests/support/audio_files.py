"""Audio files for upload tests, encoded with PyAV: speech clips and hostile recordings."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import av
import numpy as np

OPUS_RATE = 48000
OPUS_FRAME = 960  # 20 ms


def encode(samples: np.ndarray, rate: int, container: str, codec: str) -> bytes:
    """int16 mono samples → a file in `container`."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            samples.astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buffer.getvalue()


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """int16 mono samples → a 16-bit PCM WAV file's bytes."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype(np.int16).tobytes())
    return buffer.getvalue()


def write_wav(path: Path | str, samples: np.ndarray, rate: int) -> Path:
    """int16 mono samples → a 16-bit PCM WAV file at `path` (returned)."""
    path = Path(path)
    path.write_bytes(wav_bytes(samples, rate))
    return path


def silent_opus(seconds: float) -> bytes:
    """An Ogg/Opus file of `seconds` of silence, small (one 20 ms packet repeated: ~4 MB for
    3 hours, like the audit's upload), made in about a second."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=OPUS_RATE, layout="mono")
        stream.bit_rate = 6000
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, OPUS_FRAME), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = OPUS_RATE
        packets = []
        for n in range(3):  # past the encoder's start-up packets
            frame.pts = n * OPUS_FRAME
            packets += stream.encode(frame)
        packet = packets[-1]
        for n in range(int(seconds * OPUS_RATE / OPUS_FRAME)):
            packet.pts = packet.dts = n * OPUS_FRAME
            out.mux(packet)
    return buffer.getvalue()
