"""Speed and lip-sync quality of the built-in face engine at 512x512.

Figures:
  capacity fps     frames rendered per CPU-second on one core (OpenCV/BLAS single-threaded)
  live cpu share   process CPU time / wall time while FaceVideoProcessor runs at 25 fps over
                   spoken sentences and idle frames (share of one core)
  lip-sync r       Pearson correlation, per frame, of the drawn lip gap with the audio RMS
                   envelope, over embedded-voice sentences
  closure share    share of /m b p/ (viseme PP) midpoints whose frame shows closed lips
                   (centre lip gap < 1 px, when no mouth interior is drawn)
  through voice    the same closure share for the pictures FaceVideoProcessor renders when the
                   embedded voice's Pipecat TTS feeds it (its word frames, timing frames and
                   audio in the order the bot's pipeline has them)
  jerk             third difference of the inner-lip landmark tracks (incl. head motion), in
                   px/frame^3, over idle -> speech -> idle: max and 99th percentile, and the
                   largest frame-to-frame landmark step in px
Prints JSON and a table; writes bench/results/face.json, face_strip.png (frames across one
sentence) and face_sample.mp4 (that sentence with sound, via the avatar tool's writer).

    uv run python bench/face_bench.py [--sentences 6] [--live-seconds 8]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from processors.face.base import DEFAULT_AVATAR  # noqa: E402
from processors.face.builtin import BuiltinFaceEngine, head_motion  # noqa: E402
from processors.face.timeline import MouthShape, VisemeTimeline  # noqa: E402
from processors.face.tool import write_mp4, write_strip  # noqa: E402
from processors.tts.hibari_voice import HibariVoice  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SENTENCES = (
    "Maybe we can meet by the big maple tree in the park.",
    "Please bring my blue umbrella, it might rain before morning.",
    "Hello there, my name is Maya and I am happy to meet you.",
    "The museum opens at nine, but the map shop opens much earlier.",
    "Bob and Pam built a bamboo boat by the bay.",
    "What would you like to talk about today?",
    "Remember to buy bread, milk and apples on the way home.",
    "A simple plan beats a complicated promise every time.",
)
FPS, SIZE = 25, 512
CLOSED_GAP_PX = 1.0
IDLE_PAD_FRAMES = 25


def timeline_of(speech) -> VisemeTimeline:
    return VisemeTimeline.from_visemes(speech.visemes).with_audio(speech.audio, speech.sample_rate)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def rms_per_frame(audio: np.ndarray, sr: int, n: int) -> np.ndarray:
    x = audio.astype(np.float32) / 32768.0
    out = np.zeros(n)
    for k in range(n):
        chunk = x[round(k * sr / FPS):round((k + 1) * sr / FPS)]
        out[k] = np.sqrt(np.mean(chunk ** 2)) if len(chunk) else 0.0
    return out


def pp_closures(visemes, gaps) -> tuple[int, int]:
    """(closed, total) /m b p/ (PP) midpoints of a sentence, from its per-frame lip gaps."""
    closed = total = 0
    for v in visemes:
        if v.viseme == "PP":
            k = min(int((v.start + v.duration / 2) * FPS), len(gaps) - 1)
            total += 1
            closed += gaps[k] < CLOSED_GAP_PX
    return int(closed), total


def capacity(engine: BuiltinFaceEngine, avatar, speech) -> dict:
    cv2.setNumThreads(1)
    poses = engine.poses(speech.audio, speech.sample_rate, timeline_of(speech))
    n = max(300, len(poses))
    engine.frame(avatar, poses[0], 0.0)  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    for k in range(n):
        engine.frame(avatar, poses[k % len(poses)], k / FPS)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"frames": n, "fps_per_cpu_second": n / cpu, "fps_wall": n / wall,
            "ms_per_frame_cpu": 1000 * cpu / n}


def lipsync(engine: BuiltinFaceEngine, avatar, speeches) -> dict:
    gaps, env, closed, total_pp = [], [], 0, 0
    for speech in speeches:
        poses = engine.poses(speech.audio, speech.sample_rate,
                             timeline_of(speech))
        g = np.array([engine.mouth_opening(avatar, p) for p in poses])
        gaps.append(g)
        env.append(rms_per_frame(speech.audio, speech.sample_rate, len(poses)))
        c, t = pp_closures(speech.visemes, g)
        closed, total_pp = closed + c, total_pp + t
    gaps_all, env_all = np.concatenate(gaps), np.concatenate(env)
    per_sentence = [pearson(g, e) for g, e in zip(gaps, env, strict=False)]
    return {"r_all_frames": pearson(gaps_all, env_all),
            "r_per_sentence_mean": float(np.mean(per_sentence)),
            "r_per_sentence_min": float(np.min(per_sentence)),
            "pp_midpoints": total_pp, "pp_closed": int(closed),
            "closure_share": closed / max(total_pp, 1),
            "max_gap_px": float(gaps_all.max())}


def jerk(engine: BuiltinFaceEngine, avatar, speech) -> dict:
    """Inner-lip landmark tracks through idle -> speech -> idle, with head motion applied."""
    poses = engine.poses(speech.audio, speech.sample_rate, timeline_of(speech))
    poses = [MouthShape()] * IDLE_PAD_FRAMES + poses + [MouthShape()] * IDLE_PAD_FRAMES
    tracks = []
    for k, p in enumerate(poses):
        pts = engine.mouth_contour(avatar, p)
        m = head_motion(k / FPS, avatar.size)
        tracks.append(pts @ m[:, :2].T + m[:, 2])
    x = np.array(tracks)  # (frames, points, 2)
    step = np.linalg.norm(np.diff(x, axis=0), axis=-1)
    j = np.linalg.norm(np.diff(x, n=3, axis=0), axis=-1)
    return {"max_step_px": float(step.max()), "jerk_max": float(j.max()),
            "jerk_p99": float(np.percentile(j, 99))}


async def live_share(seconds: float, speeches) -> dict:
    """CPU share of one core while the processor runs live at 25 fps (speech, then idle)."""
    from pipecat.frames.frames import OutputImageRawFrame, TTSAudioRawFrame
    from pipecat.tests.utils import SleepFrame, run_test

    from processors.face.video import FaceVideoProcessor
    from processors.frames import SentenceTimingFrame

    frames, spoken = [], 0.0
    for i, s in enumerate(speeches):
        if spoken >= seconds * 0.6:
            break
        frames.append(SentenceTimingFrame(seq=i, text=s.text, sample_rate=s.sample_rate,
                                          words=s.words, visemes=s.visemes))
        step = s.sample_rate // 50
        frames += [TTSAudioRawFrame(audio=s.audio[j:j + step].tobytes(), sample_rate=s.sample_rate,
                                    num_channels=1) for j in range(0, len(s.audio), step)]
        spoken += s.duration
    frames.append(SleepFrame(sleep=seconds))
    processor = FaceVideoProcessor()
    wall, cpu = time.perf_counter(), time.process_time()
    down, _ = await run_test(processor, frames_to_send=frames)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    images = sum(isinstance(f, OutputImageRawFrame) for f in down)
    return {"wall_s": wall, "cpu_s": cpu, "cpu_share_of_one_core": cpu / wall,
            "images": images, "images_per_s": images / wall, "speech_s": spoken}


async def through_the_voice(texts) -> dict:
    """Closure share of the pictures the face processor renders behind the embedded voice's TTS
    service, as in the bot's pipeline (the engine's poses recorded as it renders them)."""
    from pipecat.frames.frames import (
        Frame,
        LLMFullResponseEndFrame,
        LLMFullResponseStartFrame,
        LLMTextFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.tests.utils import SleepFrame, run_test

    from processors.face.video import FaceVideoProcessor
    from processors.frames import SentenceTimingFrame
    from processors.tts.embedded import EmbeddedTTSService, EmbeddedVoice

    timings: list[SentenceTimingFrame] = []

    class Timings(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection):
            await super().process_frame(frame, direction)
            if isinstance(frame, SentenceTimingFrame):
                timings.append(frame)
            await self.push_frame(frame, direction)

    face = FaceVideoProcessor()
    engine = face._engine
    assert isinstance(engine, BuiltinFaceEngine)
    pictures: list[tuple[float, MouthShape]] = []  # (start in its sentence, pose) per picture
    poses = engine.poses

    def recorded(audio, sample_rate, timeline, start=0.0):
        shapes = poses(audio, sample_rate, timeline, start)
        pictures.extend((start, shape) for shape in shapes)
        return shapes

    engine.poses = recorded  # type: ignore[method-assign]
    tts = EmbeddedTTSService(voice=EmbeddedVoice(hibari=HibariVoice()))
    spoken = sum(len(t.split()) for t in texts) * 0.4
    await run_test(Pipeline([tts, Timings(), face]), frames_to_send=[
        LLMFullResponseStartFrame(), *(LLMTextFrame(f"{t} ") for t in texts),
        LLMFullResponseEndFrame(), SleepFrame(sleep=spoken + 3.0)])
    sentences: list[list[MouthShape]] = []
    for start, shape in pictures:
        if start == 0.0:
            sentences.append([])
        sentences[-1].append(shape)
    closed = total = 0
    for timing, shapes in zip(timings, sentences, strict=False):
        c, t = pp_closures(timing.visemes, [engine.mouth_opening(face.avatar, p) for p in shapes])
        closed, total = closed + c, total + t
    return {"sentences_timed": len(timings), "sentences_pictured": len(sentences),
            "pictures": len(pictures), "pp_midpoints": total, "pp_closed": int(closed),
            "closure_share": closed / max(total, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sentences", type=int, default=len(SENTENCES))
    parser.add_argument("--live-seconds", type=float, default=8.0)
    args = parser.parse_args()

    engine = BuiltinFaceEngine(width=SIZE, height=SIZE, fps=FPS)
    avatar = engine.load_avatar(DEFAULT_AVATAR)
    voice = HibariVoice()
    speeches = [voice.synthesize(t) for t in SENTENCES[:args.sentences]]

    results = {
        "size": f"{SIZE}x{SIZE}", "fps": FPS, "avatar": str(DEFAULT_AVATAR.relative_to(ROOT)),
        "capacity": capacity(engine, avatar, speeches[0]),
        "lipsync": lipsync(engine, avatar, speeches),
        "jerk": jerk(engine, avatar, speeches[0]),
        "live": asyncio.run(live_share(args.live_seconds, speeches)),
        "through_voice": asyncio.run(through_the_voice(SENTENCES[:args.sentences])),
    }

    sample = speeches[0]
    frames = list(engine.render(avatar, sample.audio, sample.sample_rate,
                                timeline_of(sample)))
    RESULTS.mkdir(parents=True, exist_ok=True)
    mouth = avatar.rig.mouth
    x0, y0, x1, y1 = (mouth.x0, avatar.rig.eyes.y0, mouth.x1, mouth.y1)
    write_strip(RESULTS / "face_strip.png", frames, count=12, crop=(x0, y0, x1, y1))
    write_mp4(RESULTS / "face_sample.mp4", frames, FPS, sample.audio, sample.sample_rate)
    results["samples"] = {
        "strip": "bench/results/face_strip.png",
        "mp4": "bench/results/face_sample.mp4",
        "sentence": sample.text,
    }
    (RESULTS / "face.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))

    c, ls, j, lv = results["capacity"], results["lipsync"], results["jerk"], results["live"]
    tv = results["through_voice"]
    rows = [
        ("capacity (1 core, 512x512)", f"{c['fps_per_cpu_second']:.0f} fps", "aim >= 100"),
        ("CPU at 25 fps live", f"{100 * lv['cpu_share_of_one_core']:.0f} % of one core", ""),
        (
            "lip gap vs envelope r",
            f"{ls['r_all_frames']:.2f} (per sentence mean "
            f"{ls['r_per_sentence_mean']:.2f}, min {ls['r_per_sentence_min']:.2f})",
            "aim >= 0.7",
        ),
        (
            "/m b p/ midpoints closed",
            f"{ls['pp_closed']}/{ls['pp_midpoints']} = {100 * ls['closure_share']:.0f} %",
            "aim >= 90 %",
        ),
        (
            "/m b p/ closed, voice -> face processor",
            f"{tv['pp_closed']}/{tv['pp_midpoints']} = {100 * tv['closure_share']:.0f} % "
            f"({tv['pictures']} pictures, {tv['sentences_pictured']} sentences)",
            "aim >= 90 %",
        ),
        (
            "landmark jerk",
            f"max {j['jerk_max']:.1f}, p99 {j['jerk_p99']:.1f} px/frame^3; "
            f"max step {j['max_step_px']:.1f} px",
            "",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, aim in rows:
        print(f"{name:<{width}}  {value:<48} {aim}")


if __name__ == "__main__":
    main()
