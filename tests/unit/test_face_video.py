"""FaceVideoProcessor in a real Pipecat pipeline: audio in video-frame pieces, each picture after
its audio, rendering bounded ahead of playout, idle frames, interruption, the A/V sync marker and
frame ordering."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pipecat.frames.frames import (
    InterruptionFrame,
    OutputImageRawFrame,
    TextFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from avatar_core.settings import load_settings
from processors.face.base import frame_bounds
from processors.face.builtin import BuiltinFaceEngine
from processors.face.video import FaceSettings, FaceVideoProcessor
from processors.frames import SentenceTimingFrame
from processors.timing import VisemeTiming
from tests.support.av_marker import AVSyncMarker, probe_marker_on, probe_signal

SR = 24000
SAMPLES_PER_FRAME = SR // 25


def speech(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    wave = np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (0.4 * 32767 * wave).astype(np.int16)


def audio_frames(audio: np.ndarray, chunk: int = 480) -> list[TTSAudioRawFrame]:
    return [TTSAudioRawFrame(audio=audio[i:i + chunk].tobytes(), sample_rate=SR, num_channels=1)
            for i in range(0, len(audio), chunk)]


def sentence(audio: np.ndarray, visemes=None) -> list:
    visemes = visemes if visemes is not None else [VisemeTiming("aa", 0.05, len(audio) / SR - 0.1)]
    return [
        SentenceTimingFrame(seq=0, text="test", sample_rate=SR, visemes=visemes),
        *audio_frames(audio),
    ]


def audio_out(frames) -> list[TTSAudioRawFrame]:
    return [f for f in frames if isinstance(f, TTSAudioRawFrame)]


def images(frames) -> list[OutputImageRawFrame]:
    return [f for f in frames if isinstance(f, OutputImageRawFrame)]


def pixels(frame: OutputImageRawFrame) -> np.ndarray:
    w, h = frame.size
    return np.frombuffer(frame.image, np.uint8).reshape(h, w, 3)


@pytest.fixture
def processor():
    return FaceVideoProcessor()


async def test_audio_is_re_emitted_in_video_frame_pieces(processor):
    audio = speech(1.01)  # 24240 samples: 25 whole frames + 240 samples
    down, _ = await run_test(processor, frames_to_send=[*sentence(audio), SleepFrame(sleep=1.6)])
    out = audio_out(down)
    assert len(out) == 26
    assert all(len(f.audio) == 2 * SAMPLES_PER_FRAME for f in out)
    joined = np.frombuffer(b"".join(f.audio for f in out), np.int16)
    np.testing.assert_array_equal(joined[: len(audio)], audio)
    assert not joined[len(audio) :].any()  # the last frame is padded with silence
    assert not any(isinstance(f, SentenceTimingFrame) for f in down)  # consumed here


async def test_every_picture_is_synced_and_full_size(processor):
    down, _ = await run_test(
        processor, frames_to_send=[*sentence(speech(0.4)), SleepFrame(sleep=0.8)]
    )
    pics = images(down)
    assert len(pics) >= len(audio_out(down))
    assert all(p.size == (512, 512) and p.format == "RGB" and p.sync_with_audio for p in pics)
    assert all(len(p.image) == 512 * 512 * 3 for p in pics)


async def test_idle_frames_when_nothing_is_said(processor):
    down, _ = await run_test(processor, frames_to_send=[SleepFrame(sleep=0.8)])
    assert not audio_out(down)
    pics = images(down)
    assert len(pics) >= 4  # ~6 at the idle rate (8 fps): the face stays alive without speech
    first, last = pixels(pics[0]).astype(int), pixels(pics[-1]).astype(int)
    assert np.abs(first - last).mean() > 0  # breathing / sway: not a frozen picture


class CountingEngine(BuiltinFaceEngine):
    """The builtin engine, counting the idle pictures it renders."""

    idle_renders = 0

    def idle(self, avatar, clock):
        self.idle_renders += 1
        return super().idle(avatar, clock)


async def test_a_still_face_is_rendered_and_sent_at_the_idle_rate_only():
    engine = CountingEngine()
    processor = FaceVideoProcessor(engine=engine, idle_fps=5)  # every 5th tick at 25 fps
    down, _ = await run_test(processor, frames_to_send=[SleepFrame(sleep=1.2)])
    pics = images(down)
    # ~6 in 1.2 s: each idle picture is sent once (the transport keeps showing it), not 25 a second
    assert 3 <= len(pics) <= 9, len(pics)
    assert engine.idle_renders <= len(pics) + 2
    assert all(p.image != q.image for p, q in zip(pics, pics[1:], strict=False))


async def test_mouth_moves_while_speaking(processor):
    down, _ = await run_test(
        processor, frames_to_send=[*sentence(speech(0.8)), SleepFrame(sleep=1.3)]
    )
    assert mouth_change(processor, down) > 8


async def test_interruption_stops_audio_and_pictures_at_once(processor):
    frames = [
        *sentence(speech(4.0)),
        SleepFrame(sleep=0.4),
        InterruptionFrame(),
        SleepFrame(sleep=0.8),
    ]
    down, _ = await run_test(processor, frames_to_send=frames)
    cut = next(i for i, f in enumerate(down) if isinstance(f, InterruptionFrame))
    before, after = down[:cut], down[cut + 1 :]
    assert 0 < len(audio_out(before)) < 100  # far less than the 4 s (100 frames) sent
    assert not audio_out(after)
    rig = processor.avatar.rig
    box = (slice(rig.mouth.y0, rig.mouth.y1), slice(rig.mouth.x0, rig.mouth.x1))
    after_pics = images(after)
    assert len(after_pics) >= 3  # idle frames keep coming (at the idle rate)
    # the speaking pictures queued behind the audio were dropped too: closed, idle mouths only
    idle = processor._engine.idle(processor.avatar, 0.0)[box].astype(int)
    assert all(np.abs(pixels(p)[box].astype(int) - idle).mean() < 6 for p in after_pics[1:])


async def test_after_an_interruption_the_resting_face_goes_out_at_once():
    # The transport drops the audio it queued, so the closed mouth must not wait for the speech
    # already sent to "play", nor for the next idle tick.
    processor = FaceVideoProcessor()
    events: list[tuple[str, float]] = []
    send_idle, interrupt = processor._send_idle, processor._interrupt

    async def idle(now):
        events.append(("idle", time.monotonic()))
        await send_idle(now)

    def interrupted():
        events.append(("interrupted", time.monotonic()))
        interrupt()

    processor._send_idle, processor._interrupt = idle, interrupted
    frames = [*sentence(speech(2.0)), SleepFrame(sleep=0.4), InterruptionFrame(),
              SleepFrame(sleep=0.3)]
    await run_test(processor, frames_to_send=frames)
    cut = events.index(next(e for e in events if e[0] == "interrupted"))
    kind, at = events[cut + 1]
    assert kind == "idle" and at - events[cut][1] < 0.03


async def test_speech_is_sent_at_most_the_a_v_queue_ahead_of_playout():
    processor = FaceVideoProcessor(ahead_ms=200)
    pushed: list[float] = []
    send = processor._send_speech_frame

    async def send_speech_frame(*args):
        out = await send(*args)
        pushed.append(time.monotonic())
        return out

    processor._send_speech_frame = send_speech_frame
    await run_test(processor, frames_to_send=[*sentence(speech(2.0)), SleepFrame(sleep=2.3)])
    assert len(pushed) == 50
    # 40 ms of audio per piece: piece k is handed over about k * 40 ms - 200 ms after the first
    lead = [k * 0.04 - (t - pushed[0]) for k, t in enumerate(pushed)]
    assert max(lead) <= 0.24 and min(lead[10:]) >= 0.1, [round(x, 3) for x in lead]


async def test_frames_after_speech_stay_behind_its_audio(processor):
    frames = [
        *sentence(speech(0.3)),
        TextFrame(text="after"),
        TTSStoppedFrame(),
        SleepFrame(sleep=0.7),
    ]
    down, _ = await run_test(processor, frames_to_send=frames)
    last_audio = max(i for i, f in enumerate(down) if isinstance(f, TTSAudioRawFrame))
    text_at = next(i for i, f in enumerate(down) if isinstance(f, TextFrame))
    stopped_at = next(i for i, f in enumerate(down) if isinstance(f, TTSStoppedFrame))
    assert last_audio < text_at < stopped_at


def mouth_change(processor: FaceVideoProcessor, down) -> float:
    """How far the mouth region moved from the first (resting) picture, at most."""
    rig = processor.avatar.rig
    box = (slice(rig.mouth.y0, rig.mouth.y1), slice(rig.mouth.x0, rig.mouth.x1))
    mouths = [pixels(p)[box].astype(int) for p in images(down)]
    return max(float(np.abs(m - mouths[0]).mean()) for m in mouths)


@pytest.mark.parametrize("words_first", [False, True], ids=["alone", "words between"])
async def test_the_sentences_visemes_shape_the_mouth_with_its_word_frames_before_its_audio(
        words_first):
    # Pipecat's TTS sends a sentence's word frames between its timing frame and its audio (the
    # words wait for the first audio chunk, then go before it). They closed the sentence, so its
    # audio began a new one without visemes: every picture of the bot came from the audio
    # envelope. Lips pressed (PP) through loud audio show whether the visemes are used.
    audio = speech(0.8)
    processor = FaceVideoProcessor()
    words = [TTSTextFrame(text=w, aggregated_by="word") for w in ("mm", "hmm")]
    frames = [
        SentenceTimingFrame(seq=0, text="mm hmm", sample_rate=SR,
                            visemes=[VisemeTiming("PP", 0.0, len(audio) / SR)]),
        *(words if words_first else []),
        *audio_frames(audio),
        SleepFrame(sleep=1.3),
    ]
    down, _ = await run_test(processor, frames_to_send=frames)
    assert mouth_change(processor, down) < 4
    if words_first:  # still ahead of the audio, in order
        at = [i for i, f in enumerate(down) if isinstance(f, TTSTextFrame)]
        first_audio = next(i for i, f in enumerate(down) if isinstance(f, TTSAudioRawFrame))
        assert [down[i].text for i in at] == ["mm", "hmm"] and at[-1] < first_audio


async def test_envelope_fallback_without_timings(processor):
    audio = np.concatenate([np.zeros(SR // 4, np.int16), speech(0.5)])
    down, _ = await run_test(
        processor, frames_to_send=[*audio_frames(audio), SleepFrame(sleep=1.0)]
    )
    joined = np.frombuffer(b"".join(f.audio for f in audio_out(down)), np.int16)
    np.testing.assert_array_equal(joined[: len(audio)], audio)


async def test_probe_marker_flashes_exactly_with_the_clicks():
    processor = FaceVideoProcessor(marker=AVSyncMarker())
    audio, clicks = probe_signal(2.0, SR, 25, period_s=0.48)
    down, _ = await run_test(
        processor, frames_to_send=[*audio_frames(audio, 960 * 5), SleepFrame(sleep=2.6)]
    )
    # position of each picture in the stream, counted in audio frames sent before it
    sent, marked = 0, []
    for f in down:
        if isinstance(f, TTSAudioRawFrame):
            sent += 1
        elif isinstance(f, OutputImageRawFrame) and probe_marker_on(pixels(f)):
            marked.append(sent)
    click_frames = [c // SAMPLES_PER_FRAME for c in clicks]
    # each click starts on a video frame's first sample and fills exactly that one frame
    assert clicks == [frame_bounds(k, SR, 25)[0] for k in click_frames]
    assert sorted({i // SAMPLES_PER_FRAME for i in np.flatnonzero(audio)}) == click_frames
    # picture k comes right after audio piece k (the transport's synchronizer paces both)
    assert marked == [k + 1 for k in click_frames]


class RecordingEngine(BuiltinFaceEngine):
    """The builtin engine, keeping a copy of every picture it renders (before any marking)."""

    def __init__(self) -> None:
        super().__init__()
        self.rendered: set[bytes] = set()

    def render(self, *args, **kwargs):
        for image in super().render(*args, **kwargs):
            self.rendered.add(image.tobytes())
            yield image

    def idle(self, avatar, clock):
        image = super().idle(avatar, clock)
        self.rendered.add(image.tobytes())
        return image


@pytest.mark.parametrize("marker", [None, AVSyncMarker()], ids=["no marker", "AVSyncMarker"])
async def test_only_a_marker_changes_the_engines_pictures(marker):
    engine = RecordingEngine()
    processor = FaceVideoProcessor(engine=engine, marker=marker)
    audio, _ = probe_signal(0.8, SR, 25, period_s=0.4)
    down, _ = await run_test(
        processor, frames_to_send=[SleepFrame(sleep=0.2), *audio_frames(audio)]
    )
    own = [p.image in engine.rendered for p in images(down)]
    assert len(own) >= 20  # idle pictures, then the speech's
    if marker is None:
        assert all(own)  # exactly the engine's pictures: the corner is never touched
    else:
        assert not any(own)  # every picture carries the square (white or black)


def test_settings_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FACE_AVATAR", str(tmp_path / "me.png"))
    monkeypatch.setenv("FACE_FPS", "30")
    s = FaceSettings(**load_settings().bot.face.given())
    assert (s.avatar_image_path, s.fps) == (tmp_path / "me.png", 30)
    assert (s.width, s.height) == (512, 512)


def test_pictures_are_marked_only_by_a_marker_given_in_code():
    assert FaceVideoProcessor.from_settings(FaceSettings())._marker is None
    marker = AVSyncMarker()
    assert FaceVideoProcessor.from_settings(FaceSettings(), marker=marker)._marker is marker


def test_mismatched_engine_rate_is_refused():
    from processors.face.builtin import BuiltinFaceEngine

    with pytest.raises(ValueError, match="fps"):
        FaceVideoProcessor(engine=BuiltinFaceEngine(fps=30), fps=25)


async def test_end_frame_waits_until_the_speech_and_its_pictures_are_out():
    processor = FaceVideoProcessor(marker=AVSyncMarker())
    audio, clicks = probe_signal(1.2, SR, 25, period_s=0.4)
    down, _ = await run_test(processor, frames_to_send=audio_frames(audio))  # EndFrame right after
    assert len(audio_out(down)) == 30
    flashes = [p for p in images(down) if probe_marker_on(pixels(p))]
    assert len(flashes) == len(clicks)  # even the last click's picture made it out
