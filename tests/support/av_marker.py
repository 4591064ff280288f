"""A/V sync marker: probe audio of clicks, and a corner square that flashes with them.

Test instrumentation for measuring the A/V offset at a receiver (given to the face processor
by tests/support/av_probe.py and tests/support/probe_bot.py): `probe_signal` makes
audio of one-frame 1 kHz clicks on video-frame boundaries; `AVSyncMarker`, the face processor's
frame marker, paints a square in the top-left corner of each picture, white when the picture's
audio holds a click and black otherwise; `probe_marker_on` reads it back from a received frame.
"""

from __future__ import annotations

import numpy as np

from processors.face.base import frame_bounds

# Marker square (top-left, side as a share of the frame width), the audio peak (share of full
# scale) that counts as a click, and the click's tone.
PROBE_MARKER_SHARE = 0.125
PROBE_CLICK_LEVEL = 0.25
PROBE_TONE_HZ = 1000.0


def probe_signal(duration_s: float, sample_rate: int, fps: int, *, period_s: float = 0.52,
                 first_s: float = 0.2) -> tuple[np.ndarray, list[int]]:
    """Probe audio: one-frame 1 kHz clicks starting on frame boundaries every ~period_s.

    Returns int16 samples and the clicks' first sample indices.
    """
    audio = np.zeros(int(duration_s * sample_rate), np.int16)
    starts = []
    k = round(first_s * fps)
    while True:
        a, b = frame_bounds(k, sample_rate, fps)
        if b > len(audio):
            break
        t = np.arange(b - a) / sample_rate
        audio[a:b] = (0.6 * 32767 * np.sin(2 * np.pi * PROBE_TONE_HZ * t)).astype(np.int16)
        starts.append(a)
        k += round(period_s * fps)
    return audio, starts


def draw_probe_marker(image: np.ndarray, on: bool) -> None:
    """Paint the probe square in the top-left corner: white for a click frame, else black."""
    side = max(8, int(image.shape[1] * PROBE_MARKER_SHARE))
    image[:side, :side] = 255 if on else 0


def probe_marker_on(image: np.ndarray) -> bool:
    """Whether a received frame shows the white probe square (robust to video coding)."""
    side = max(8, int(image.shape[1] * PROBE_MARKER_SHARE))
    inner = image[side // 4: 3 * side // 4, side // 4: 3 * side // 4]
    return float(inner.mean()) > 128


class AVSyncMarker:
    """The face processor's frame marker in probe mode: the square is white in exactly the
    pictures whose audio holds a click, black in all others (idle pictures included)."""

    def mark(self, image: np.ndarray, audio: np.ndarray | None) -> None:
        peak = 0.0 if audio is None else float(np.abs(audio).max(initial=0))
        draw_probe_marker(image, peak >= PROBE_CLICK_LEVEL * 32767)
