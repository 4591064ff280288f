"""STAND-IN for the avatar bot in client e2e tests: a Python LiveKit participant (agent kind) that
plays the bot's side of the client contract without a pipeline.

It publishes an audio track (the embedded voice's sentences) and a 25 fps video track whose
"mouth" opens with the audio envelope of what it is saying, and speaks RTVI on the data channel
exactly as the real bot does: bot-ready in reply to client-ready, user-transcription of what it
heard from the page's microphone (transcribed by the caller's real faster-whisper), bot-output
(new + per-word progress), bot-tts-text per word, and one `bot-tts-timing` server-message per
sentence a little ahead of its audio. It lets the page be checked against a real livekit-server
before (or without) the real bot.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable

import numpy as np
from livekit import rtc
from loguru import logger

from processors.timing import tts_timing_message
from processors.tts.hibari_voice import HibariVoice
from tests.support.human import HumanParticipant

RTVI_LABEL = "rtvi-ai"
WIDTH, HEIGHT, FPS = 320, 240, 25
# Level (int16 RMS) above which the page's microphone counts as someone speaking.
HEARD_RMS = 300.0
# The page's utterance is over after this long below HEARD_RMS; padding kept around it.
UTTERANCE_END_S = 0.8
PAD_S = 0.3


def rtvi(type_: str, data: dict, id_: str | None = None) -> bytes:
    return json.dumps({"label": RTVI_LABEL, "type": type_, "id": id_ or uuid.uuid4().hex[:8],
                       "data": data}).encode()


class StandInBot:
    """Drive a HumanParticipant (joined with an agent token) as the bot."""

    def __init__(self, *, participant: HumanParticipant, voice: HibariVoice, reply: str,
                 transcribe: Callable[[np.ndarray, int], str], cut_after_s: float | None = None):
        """`transcribe(int16 samples, rate)` turns what the page's microphone said into text."""
        self.p = participant
        self.voice = voice
        self.reply = reply
        self.transcribe = transcribe
        # Barge-in: this long into the reply, cut its audio and send bot-interrupted.
        self.cut_after_s = cut_after_s
        self.video = rtc.VideoSource(WIDTH, HEIGHT)
        self.envelope: np.ndarray | None = None  # mouth opening per video frame of the reply
        self.reply_started_at: float | None = None
        self._face = self._draw_face()
        self.frame_times: list[float] = []  # when each video frame was handed to LiveKit

    async def run(self, *, timeout: float) -> None:  # noqa: ASYNC109 (poll deadline)
        """Publish the face video (it runs until the task is cancelled), then converse once."""
        await self.p.room.local_participant.publish_track(
            rtc.LocalVideoTrack.create_video_track("standin-face", self.video),
            rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_CAMERA))
        video_task = asyncio.create_task(self._video_loop())
        try:
            await self._converse(timeout)
            await asyncio.Event().wait()  # keep the face live until the test is done
        finally:
            video_task.cancel()

    async def _converse(self, timeout: float) -> None:  # noqa: ASYNC109 (poll deadline)
        ready = await self.p.wait_for(
            lambda: self._message("client-ready"), timeout, what="client-ready"
        )
        sender, msg = ready
        await self.p.send_data(
            rtvi("bot-ready", {"version": "2.2.0", "about": {"library": "stand-in"}}, msg.get("id"))
        )
        await self.p.wait_for(
            lambda: self._heard(sender), timeout, what="the page's microphone audio"
        )
        samples, rate = await self.p.wait_for(
            lambda: self._utterance(sender), timeout, what="the end of the page's utterance"
        )
        text = await asyncio.to_thread(self.transcribe, samples, rate)
        await self.p.send_data(
            rtvi(
                "user-transcription",
                {"text": text, "final": True, "user_id": sender, "timestamp": "now"},
            )
        )
        await self._speak()

    # -- speaking -------------------------------------------------------------------------------
    async def _speak(self) -> None:
        sentences = [self.voice.synthesize(s) for s in self.voice.sentences(self.reply)]
        rate = sentences[0].sample_rate
        offsets = np.cumsum([0] + [len(s.audio) for s in sentences[:-1]]) / rate
        audio = np.concatenate([s.audio for s in sentences])
        hop = rate // FPS
        frames = len(audio) // hop
        rms = np.sqrt(
            np.mean(audio[: frames * hop].astype(np.float64).reshape(frames, hop) ** 2, axis=1)
        )
        self.envelope = np.clip(rms / (rms.max() or 1.0), 0, 1)
        await self.p.publish_audio(audio, rate, wait=False)
        start = await self.p.wait_for(
            lambda: self.p.speech_started_at, 10, what="reply audio to start"
        )
        self.reply_started_at = start
        events: list[tuple[float, bytes]] = []
        for seq, (speech, offset) in enumerate(zip(sentences, offsets, strict=False), start=1):
            seg = 100 + seq
            words = [w.word for w in speech.words]
            # Each sentence's timing goes out with its first audio, as the real bot's output
            # transport releases it (played_ms 0).
            events.append(
                (
                    offset,
                    rtvi(
                        "server-message",
                        tts_timing_message(seq, speech.text, speech.words, speech.visemes),
                    ),
                )
            )
            events.append(
                (
                    offset,
                    rtvi(
                        "bot-output",
                        {
                            "text": speech.text,
                            "will_be_spoken": True,
                            "aggregated_by": "sentence",
                            "output_type": "sentence",
                            "segment_id": seg,
                            "spoken_status": "new",
                            "spoken_progress": {
                                "accumulated_text": "",
                                "remaining_text": speech.text,
                            },
                        },
                    ),
                )
            )
            for i, w in enumerate(speech.words):
                done = " ".join(words[: i + 1])
                rest = " ".join(words[i + 1 :])
                events.append(
                    (
                        offset + w.start,
                        rtvi(
                            "bot-output",
                            {
                                "text": w.word,
                                "will_be_spoken": True,
                                "aggregated_by": "sentence",
                                "output_type": "sentence",
                                "segment_id": seg,
                                "spoken_status": "completed" if not rest else "in-progress",
                                "spoken_progress": {
                                    "accumulated_text": done,
                                    "remaining_text": rest,
                                },
                            },
                        ),
                    )
                )
                events.append((offset + w.start, rtvi("bot-tts-text", {"text": w.word})))
        if self.cut_after_s is not None:
            events = [e for e in events if e[0] < self.cut_after_s]
            events.append((self.cut_after_s, rtvi("bot-interrupted", {})))
        for at, payload in sorted(events, key=lambda e: e[0]):
            delay = start + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if at == self.cut_after_s:
                self.p.stop_audio()
            await self.p.send_data(payload)
        await self.p.wait_for(lambda: self.p.speech_ended_at, 30, what="reply audio to end")
        logger.info(f"stand-in bot said {len(sentences)} sentences ({len(audio) / rate:.1f} s)")

    # -- video ----------------------------------------------------------------------------------
    def _draw_face(self) -> np.ndarray:
        img = np.zeros((HEIGHT, WIDTH, 4), np.uint8)
        img[..., :3] = (30, 40, 60)
        img[..., 3] = 255
        yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
        face = ((xx - WIDTH / 2) / 80) ** 2 + ((yy - HEIGHT / 2) / 105) ** 2 <= 1
        img[face, :3] = (220, 180, 150)
        for ex in (WIDTH / 2 - 30, WIDTH / 2 + 30):
            img[((xx - ex) ** 2 + (yy - 95) ** 2) <= 64, :3] = (40, 30, 20)
        return img

    def _frame(self, opening: float) -> bytes:
        img = self._face.copy()
        h = int(3 + 30 * opening)
        cy = int(HEIGHT * 0.68)
        img[cy - h // 2 : cy + h // 2 + 1, WIDTH // 2 - 28 : WIDTH // 2 + 28, :3] = (90, 20, 30)
        return img.tobytes()

    async def _video_loop(self) -> None:
        t0 = time.monotonic()
        n = 0
        while True:
            opening = 0.0
            if self.envelope is not None and self.reply_started_at is not None:
                k = int((time.monotonic() - self.reply_started_at) * FPS)
                if 0 <= k < len(self.envelope):
                    opening = float(self.envelope[k])
            self.video.capture_frame(
                rtc.VideoFrame(WIDTH, HEIGHT, rtc.VideoBufferType.RGBA, self._frame(opening))
            )
            self.frame_times.append(time.monotonic())
            n += 1
            await asyncio.sleep(max(0.0, t0 + n / FPS - time.monotonic()))

    def sent_fps(self, window_s: float = 10.0) -> float:
        """Frames per second sent over the last `window_s` (the host may be too busy for 25)."""
        recent = [t for t in self.frame_times if t >= self.frame_times[-1] - window_s]
        return (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 else 0.0

    # -- listening ------------------------------------------------------------------------------
    def _message(self, type_: str):
        for _, sender, _, payload in self.p.messages:
            try:
                msg = json.loads(payload)
            except ValueError:
                continue
            if msg.get("label") == RTVI_LABEL and msg.get("type") == type_:
                return sender, msg
        return None

    def _utterance(self, identity: str) -> tuple[np.ndarray, int] | None:
        """The first utterance received from `identity` (int16, rate) once it is over."""
        frames = [(at, a, sr) for at, who, a, sr in list(self.p.audio) if who == identity]
        loud = [at for at, a, _ in frames
                if np.sqrt(np.mean(a.astype(np.float64) ** 2)) > HEARD_RMS]
        if not loud:
            return None
        start, end = loud[0], loud[0]
        for at in loud[1:]:
            if at - end > UTTERANCE_END_S:
                break
            end = at
        if frames[-1][0] - end < UTTERANCE_END_S:
            return None  # still talking
        kept = [a for at, a, _ in frames if start - PAD_S <= at <= end + PAD_S]
        return np.concatenate(kept), frames[0][2]

    def _heard(self, identity: str) -> str | None:
        loud = [
            a
            for _, who, a, _ in self.p.audio[-200:]
            if who == identity and np.sqrt(np.mean(a.astype(np.float64) ** 2)) > HEARD_RMS
        ]
        return identity if len(loud) >= 5 else None
