"""STAND-IN for the avatar bot in token-server tests: a plain LiveKit participant, no pipeline.

It follows the real bot's process contract (`python -m bot --room NAME`, env LIVEKIT_URL, BOT_TOKEN,
BOT_IDENTITY): joins with the token it is given, publishes a small audio and video track so people in
the room can see and hear "the bot", exits 0 on SIGTERM or when LiveKit disconnects it, and writes
its pid to $STANDIN_PID_DIR/<room>.<pid> so tests can find and kill it, and on exit appends
"<pid> <why>" (sigterm, or disconnected:<LiveKit reason>) to $STANDIN_PID_DIR/<room>.exits.
Used as AVATAR_BOT_COMMAND by the supervision tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

import numpy as np
from livekit import rtc

SAMPLE_RATE = 48000
FRAME_SAMPLES = 480  # 10 ms
WIDTH = HEIGHT = 64
FPS = 5
TONE_HZ = 220.0


async def publish(room: rtc.Room, stop: asyncio.Event) -> None:
    audio = rtc.AudioSource(SAMPLE_RATE, 1)
    video = rtc.VideoSource(WIDTH, HEIGHT)
    await room.local_participant.publish_track(rtc.LocalAudioTrack.create_audio_track("standin-audio", audio))
    await room.local_participant.publish_track(rtc.LocalVideoTrack.create_video_track("standin-video", video))
    rgba = np.full((HEIGHT, WIDTH, 4), (40, 160, 90, 255), dtype=np.uint8).tobytes()
    t = np.arange(FRAME_SAMPLES) / SAMPLE_RATE
    n = 0
    while not stop.is_set():
        tone = (0.2 * 32767 * np.sin(2 * np.pi * TONE_HZ * (t + n * FRAME_SAMPLES / SAMPLE_RATE))).astype(np.int16)
        await audio.capture_frame(rtc.AudioFrame(tone.tobytes(), SAMPLE_RATE, 1, FRAME_SAMPLES))
        if n % (100 // FPS) == 0:
            video.capture_frame(rtc.VideoFrame(WIDTH, HEIGHT, rtc.VideoBufferType.RGBA, rgba))
        n += 1


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--room", required=True)
    args = parser.parse_args()
    pid_file = Path(os.environ["STANDIN_PID_DIR"]) / f"{args.room}.{os.getpid()}"
    pid_file.write_text(os.environ["BOT_IDENTITY"])
    stop = asyncio.Event()
    why: list[str] = []

    def end(reason: str) -> None:
        why.append(reason)
        stop.set()

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, end, "sigterm")
    room = rtc.Room()
    room.on("disconnected", lambda reason: end(f"disconnected:{rtc.DisconnectReason.Name(reason)}"))
    await room.connect(os.environ["LIVEKIT_URL"], os.environ["BOT_TOKEN"])
    publisher = asyncio.create_task(publish(room, stop))
    await stop.wait()
    publisher.cancel()
    await room.disconnect()
    pid_file.unlink(missing_ok=True)
    with open(pid_file.with_name(f"{args.room}.exits"), "a") as exits:
        exits.write(f"{os.getpid()} {why[0]}\n")


if __name__ == "__main__":
    asyncio.run(main())
