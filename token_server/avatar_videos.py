"""Offline avatar videos: `POST /api/avatar-videos` renders the avatar saying a text (or an
uploaded recording) to an H.264/AAC MP4, as a job outside the server's event loop.

    POST /api/avatar-videos                  JSON {text, engine?, size?} or multipart/form-data with
                                       text | audio (WAV/MP3/OGG file), image? (PNG/JPEG file),
                                       engine? (builtin|sadtalker), size? (64-1024, default 512)
                                       -> 202 {id, status, status_url, video_url}
    GET  /api/avatar-videos/{video_id}       -> {id, status: queued|running|done|failed, progress,
                                       error?, duration_s?, video_url}
    GET  /api/avatar-videos/{video_id}/video -> the MP4 (409 until done)

Jobs run one at a time in a worker process (processors.face.tool.make_video, the CLI's
implementation); text is spoken by the configured embedded voice (EMBEDDED_VOICE/_SPEED), 30 fps.
Finished videos and their inputs are deleted AVATAR_VIDEO_RETENTION_S (default 3600) after the
job ends. Bad input is a 4xx with a reason; a job that fails says why in its status.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import shutil
import time
import uuid
import wave
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np
from aiohttp import web
from loguru import logger

from processors.face.engines import BUILTIN, ENGINES, SADTALKER
from processors.face.sadtalker import SadTalkerSettings
from processors.face.tool import VideoRequest
from processors.tts.embedded import EmbeddedVoiceSettings
from token_server.errors import ApiError, read_json_object
from token_server.uploads import MULTIPART_PREFIX, FormShape, uploaded_form
from token_server.voices import decode_clip

VIDEOS_ROUTE = "/api/avatar-videos"
VIDEO_ROUTE = "/api/avatar-videos/{video_id}"
VIDEO_FILE_ROUTE = "/api/avatar-videos/{video_id}/video"
FPS = 30
DEFAULT_SIZE, MIN_SIZE, MAX_SIZE = 512, 64, 1024
# Longest speech a request may ask for, and the text length that stands for it (the embedded
# voice speaks about 15 characters a second).
MAX_SPEECH_S = 120.0
MAX_TEXT_CHARS = 1800
AUDIO_FIELD, IMAGE_FIELD = "audio", "image"
FORM = FormShape(
    file_fields=frozenset({AUDIO_FIELD, IMAGE_FIELD}),
    text_fields=frozenset({"text", "engine", "size"}),
    max_file_bytes=20 << 20,
    max_text_bytes=4 * MAX_TEXT_CHARS,  # UTF-8: at most 4 bytes a character
)
DEFAULT_RETENTION_S = 3600.0
PROGRESS_FILE = "progress.json"
VIDEO_FILE = "video.mp4"

JOBS = cast("web.AppKey[AvatarVideoJobs]", web.AppKey("avatar_video_jobs", object))


@dataclass(slots=True)
class _Job:
    id: str
    folder: Path
    status: str = "queued"
    error: str | None = None
    duration_s: float | None = None
    ended: float | None = None
    task: asyncio.Task | None = field(default=None, repr=False)


class AvatarVideoJobs:
    """The job queue: a one-process pool (spawned, so no event-loop state is inherited)."""

    def __init__(self, *, folder: Path, retention_s: float, voice: EmbeddedVoiceSettings,
                 sadtalker: SadTalkerSettings) -> None:
        self.folder = folder
        self.retention_s = retention_s
        self.voice = voice
        self.sadtalker = sadtalker
        self.jobs: dict[str, _Job] = {}
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)  # nothing survives a restart
        self.folder.mkdir(parents=True, exist_ok=True)
        self._pool = ProcessPoolExecutor(max_workers=1,
                                         mp_context=multiprocessing.get_context("spawn"))

    async def stop(self) -> None:
        for job in self.jobs.values():
            if job.task:
                job.task.cancel()
        if self._pool:
            await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)

    def new_folder(self) -> tuple[str, Path]:
        job_id = uuid.uuid4().hex[:16]
        folder = self.folder / job_id
        folder.mkdir(parents=True)
        return job_id, folder

    def submit(self, job_id: str, folder: Path, request: VideoRequest) -> _Job:
        job = _Job(job_id, folder)
        self.jobs[job_id] = job
        job.task = asyncio.get_running_loop().create_task(self._run(job, request))
        return job

    async def _run(self, job: _Job, request: VideoRequest) -> None:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._pool, run_job, request, str(job.folder / PROGRESS_FILE))
        try:
            job.duration_s = await future
            job.status = "done"
        except Exception as e:  # noqa: BLE001 - the job's own reason, shown in its status
            job.status, job.error = "failed", str(e) or type(e).__name__
            logger.bind(job=job.id).warning(f"avatar video failed: {job.error}")
        job.ended = time.time()

    def progress(self, job: _Job) -> float:
        if job.status == "done":
            return 1.0
        try:
            data = json.loads((job.folder / PROGRESS_FILE).read_text())
        except (OSError, ValueError):
            return 0.0
        if job.status == "queued" and data.get("started"):
            job.status = "running"
        return float(data.get("progress", 0.0))

    def sweep(self) -> None:
        """Delete jobs (and their files) that ended longer than the retention time ago."""
        now = time.time()
        for job in [j for j in self.jobs.values() if j.ended and now - j.ended > self.retention_s]:
            shutil.rmtree(job.folder, ignore_errors=True)
            del self.jobs[job.id]


def run_job(request: VideoRequest, progress_path: str) -> float:
    """In the worker process: render the video, writing progress to `progress_path`."""
    from processors.face.tool import make_video

    path = Path(progress_path)

    def report(share: float) -> None:
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps({"started": True, "progress": round(share, 3)}))
        temp.replace(path)

    report(0.0)
    try:
        return make_video(request, progress=report)
    except Exception as e:  # re-raised as a plain error the parent can always unpickle
        raise RuntimeError(str(e)) from None


# -- handlers --------------------------------------------------------------------------------------
async def create_video(request: web.Request) -> web.Response:
    """Check the request, store its inputs and queue the job (202)."""
    jobs: AvatarVideoJobs = request.app[JOBS]
    jobs.sweep()
    job_id, folder = jobs.new_folder()
    try:
        video = await _video_request(request, folder, jobs)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    job = jobs.submit(job_id, folder, video)
    logger.bind(job=job_id, engine=video.engine, size=video.size).info("avatar video queued")
    return web.json_response(_status(jobs, job), status=202)


async def get_video(request: web.Request) -> web.Response:
    jobs: AvatarVideoJobs = request.app[JOBS]
    jobs.sweep()
    return web.json_response(_status(jobs, _job(request)))


async def get_video_file(request: web.Request) -> web.StreamResponse:
    job = _job(request)
    if job.status != "done":
        raise ApiError(
            409, "not_ready", f"the video is {job.status}" + (f": {job.error}" if job.error else "")
        )
    return web.FileResponse(
        job.folder / VIDEO_FILE,
        headers={
            "Content-Type": "video/mp4",
            "Content-Disposition": f'attachment; filename="avatar-{job.id}.mp4"',
        },
    )


def _job(request: web.Request) -> _Job:
    video_id = request.match_info["video_id"]
    job = request.app[JOBS].jobs.get(video_id)
    if job is None:
        raise ApiError(404, "no_such_video", f"no avatar video {video_id!r}")
    return job


def _status(jobs: AvatarVideoJobs, job: _Job) -> dict:
    progress = jobs.progress(job)
    out = {
        "id": job.id,
        "status": job.status,
        "progress": progress,
        "status_url": VIDEO_ROUTE.format(video_id=job.id),
        "video_url": VIDEO_FILE_ROUTE.format(video_id=job.id),
    }
    if job.error:
        out["error"] = job.error
    if job.duration_s is not None:
        out["duration_s"] = round(job.duration_s, 3)
    return out


async def _video_request(request: web.Request, folder: Path, jobs: AvatarVideoJobs) -> VideoRequest:
    """The job's VideoRequest from a JSON or multipart body, or a 4xx saying what is wrong."""
    if request.content_type.startswith(MULTIPART_PREFIX):
        async with uploaded_form(request, FORM, directory=folder) as form:
            return await _checked_request(form.fields, form.files, folder, jobs)
    return await _checked_request(await read_json_object(request), {}, folder, jobs)


async def _checked_request(
    fields: dict[str, Any], files: dict[str, Path], folder: Path, jobs: AvatarVideoJobs
) -> VideoRequest:
    """The request's fields checked and its uploads stored in the job's folder."""
    engine = str(fields.get("engine") or BUILTIN)
    if engine not in ENGINES:
        raise ApiError(
            400, "unknown_engine", f"engine {engine!r} is not one of {', '.join(ENGINES)}"
        )
    size = _size(fields.get("size"))
    text = fields.get("text")
    if text is not None and not isinstance(text, str):
        raise ApiError(400, "invalid_text", "text must be a string")
    text = (text or "").strip() or None
    if text is None and AUDIO_FIELD not in files:
        raise ApiError(400, "missing_speech", "send a text to speak or an audio file")
    if text is not None and AUDIO_FIELD in files:
        raise ApiError(400, "text_and_audio", "send either a text or an audio file, not both")
    if text is not None and len(text) > MAX_TEXT_CHARS:
        raise ApiError(
            400,
            "too_long",
            f"the text has {len(text)} characters; at most "
            f"{MAX_TEXT_CHARS} (about {MAX_SPEECH_S:.0f} s of speech)",
        )
    wav = None
    if AUDIO_FIELD in files:
        wav = folder / "speech.wav"
        await asyncio.to_thread(_store_audio, files[AUDIO_FIELD], wav)
    image = folder / "avatar.png" if IMAGE_FIELD in files else None
    if image is not None:
        await asyncio.to_thread(_store_image, files[IMAGE_FIELD], image)
    defaults = VideoRequest(out=folder / VIDEO_FILE)
    return VideoRequest(
        out=folder / VIDEO_FILE,
        text=text,
        wav=wav,
        image=image or defaults.image,
        engine=engine,
        size=size,
        fps=FPS,
        voice=jobs.voice.voice,
        speed=jobs.voice.speed,
        sadtalker=jobs.sadtalker if engine == SADTALKER else None,
    )


def _size(value) -> int:
    if value in (None, ""):
        return DEFAULT_SIZE
    try:
        size = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON 1e999 is infinity
        raise ApiError(400, "invalid_size", f"size must be a whole number, not {value!r}") from None
    if not MIN_SIZE <= size <= MAX_SIZE or size % 2:
        raise ApiError(
            400,
            "invalid_size",
            f"size must be an even number from {MIN_SIZE} to {MAX_SIZE}, not {size}",
        )
    return size


def _store_audio(upload: Path, wav: Path) -> None:
    """The uploaded recording as 16-bit mono WAV for the job, or a 4xx (not audio, too long)."""
    clip = decode_clip(upload, upload.name, max_s=MAX_SPEECH_S)
    if clip.duration > MAX_SPEECH_S:
        raise ApiError(
            400, "too_long", f"the recording is {clip.duration:.0f} s; at most {MAX_SPEECH_S:.0f} s"
        )
    if clip.duration == 0:
        raise ApiError(400, "not_audio", "the recording has no samples")
    pcm = np.round(np.clip(clip.samples, -1, 1) * 32767).astype(np.int16)
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(clip.sample_rate)
        w.writeframes(pcm.tobytes())


def _store_image(upload: Path, image: Path) -> None:
    """The uploaded portrait as PNG, or a 400 when it is not a picture."""
    picture = cv2.imdecode(np.fromfile(upload, np.uint8), cv2.IMREAD_COLOR)
    if picture is None:
        raise ApiError(400, "not_an_image", "the image file is not a PNG or JPEG picture")
    cv2.imwrite(str(image), picture)


def setup_avatar_video_routes(app: web.Application, settings) -> None:
    """Add the avatar-video API; jobs start and stop with the app. settings: the token
    server's (uses .cache, .avatar_videos, .voice and .sadtalker)."""
    section = settings.avatar_videos
    jobs = AvatarVideoJobs(
        folder=section.folder or settings.cache / "avatar-videos",
        retention_s=section.retention_s or DEFAULT_RETENTION_S,
        voice=settings.voice,
        sadtalker=settings.sadtalker,
    )
    app[JOBS] = jobs

    async def lifecycle(_app: web.Application):
        jobs.start()
        yield
        await jobs.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post(VIDEOS_ROUTE, create_video)
    app.router.add_get(VIDEO_ROUTE, get_video)
    app.router.add_get(VIDEO_FILE_ROUTE, get_video_file)
