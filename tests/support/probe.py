"""Reading what a room participant received from the bot: RTVI messages, speech, lip motion.

Used by the integration tests and the latency benchmark, which judge the bot only by what
arrives at a participant. Inputs are the plain records a participant keeps:
messages (arrival, sender, topic, payload bytes), audio (arrival, identity, int16 samples, rate)
and video (arrival, identity, RGB frame); arrival times are time.monotonic() seconds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

import cv2
import numpy as np

from processors.face.builtin import CORNERS, LOWER_OUTER, UPPER_OUTER
from processors.face.landmarks import detect_landmarks

RTVI_LABEL = "rtvi-ai"
# A received bot audio frame louder than this is speech (the voice peaks at -3 dBFS).
SPEECH_DBFS = -45.0

Message = tuple[float, str, str, bytes]
Audio = tuple[float, str, np.ndarray, int]
Video = tuple[float, str, np.ndarray]


def rtvi_messages(messages: Iterable[Message], kind: str | None = None,
                  since: float = 0.0) -> list[tuple[float, dict]]:
    """RTVI messages as (arrival, message), optionally only those of one `type`."""
    out = []
    for at, _sender, _topic, payload in list(messages):
        if at < since:
            continue
        try:
            message = json.loads(payload)
        except ValueError:
            continue
        if (isinstance(message, dict) and message.get("label") == RTVI_LABEL
                and kind in (None, message.get("type"))):
            out.append((at, message))
    return out


def user_transcripts(messages: Iterable[Message], since: float = 0.0) -> list[str]:
    """Final user transcriptions (RTVI `user-transcription`)."""
    return [m["data"]["text"] for _, m in rtvi_messages(messages, "user-transcription", since)
            if m["data"].get("final")]


def server_messages(messages: Iterable[Message], kind: str, since: float = 0.0) -> list[dict]:
    """Payloads of RTVI `server-message`s whose data has `type == kind`."""
    return [m["data"] for _, m in rtvi_messages(messages, "server-message", since)
            if isinstance(m.get("data"), dict) and m["data"].get("type") == kind]


def spoken_words(messages: Iterable[Message], since: float = 0.0,
                 until: float = float("inf")) -> list[str]:
    """The bot's words as it speaks them: RTVI `bot-tts-text`, one per word at playback time."""
    return [m["data"]["text"].strip() for at, m in rtvi_messages(messages, "bot-tts-text", since)
            if at <= until and m["data"]["text"].strip()]


def words_of(text: str) -> list[str]:
    """Lower-case words without punctuation, for comparing texts."""
    return re.findall(r"[a-z0-9']+", text.lower())


def level_dbfs(samples: np.ndarray) -> float:
    """RMS level of int16 audio in dBFS (-inf for digital silence)."""
    if len(samples) == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean((samples.astype(np.float64) / 32768.0) ** 2)))
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


def speech_times(audio: Iterable[Audio], identity: str, since: float = 0.0) -> list[float]:
    """Arrival times of `identity`'s audio frames that carry speech."""
    return [at for at, who, samples, _ in list(audio)
            if who == identity and at >= since and level_dbfs(samples) > SPEECH_DBFS]


def video_frames(video: Iterable[Video], identity: str, since: float = 0.0,
                 size: tuple[int, int] = (512, 512)) -> list[tuple[float, np.ndarray]]:
    """`identity`'s received frames as (arrival, RGB at `size`).

    LiveKit may deliver a lower simulcast layer for a while, so frames are scaled back to the
    published size before they are compared.
    """
    return [
        (
            at,
            img
            if img.shape[1::-1] == size
            else cv2.resize(img, size, interpolation=cv2.INTER_AREA),
        )
        for at, who, img in list(video)
        if who == identity and at >= since
    ]


def frames_per_second(
    times: list[float], start: float, end: float, *, window: float = 2.0
) -> list[float]:
    """Received frame rate over `window`-second windows stepping by one second, `start` to `end`.

    Two-second windows keep WebRTC's bursty delivery (19 frames in one second, 21 in the next)
    from reading as a drop, while a real drop still shows.
    """
    t = np.asarray(times)
    return [
        round(float(np.sum((t >= s) & (t < s + window))) / window, 1)
        for s in np.arange(start, end - window, 1.0)
    ]


def lip_box(frame: np.ndarray) -> tuple[slice, slice]:
    """The lip region (with room for an open jaw) of the avatar in a received frame."""
    points = detect_landmarks(frame)[list(UPPER_OUTER + LOWER_OUTER + CORNERS)]
    (x0, y0), (x1, y1) = points.min(axis=0).astype(int), points.max(axis=0).astype(int)
    pad = (y1 - y0) // 2 + 4
    return slice(max(0, y0 - pad), y1 + 2 * pad), slice(max(0, x0 - pad), x1 + pad)


def lip_motion(
    frames: list[tuple[float, np.ndarray]], box: tuple[slice, slice]
) -> list[tuple[float, float]]:
    """(arrival, mean absolute change of the lip region since the previous frame)."""
    return [
        (at, float(np.mean(np.abs(a[box].astype(np.int16) - b[box].astype(np.int16)))))
        for (_, a), (at, b) in zip(frames, frames[1:], strict=False)
    ]
