"""Routes of the voices package (voices/): zero-shot voices from a 3-10 s reference clip, and
GPT-SoVITS fine-tuning data and training jobs from about one minute of speech.

    POST   /api/voices                  multipart: audio (WAV/MP3/OGG, 3-10 s), name?, language?,
                                        prompt_text?
    GET    /api/voices                  all stored voices
    GET    /api/voices/{id}             one voice
    DELETE /api/voices/{id}
    POST   /api/train-voice             multipart: audio (WAV/MP3/OGG, 20 s - 10 min), speaker?,
                                        language?
    GET    /api/train-voice/{id}        the dataset and the job's state
    GET    /api/train-voice/{id}/log    the job's log (text)

The handlers read the form (token_server/uploads.py) and answer; the checks, transcription,
storage, datasets and training jobs are the voices package's, and its refusals
(voices.errors.VoiceError) become 4xx answers with the reason (token_server/errors.py).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from avatar_core.stored import stored_folder
from token_server.errors import ApiError
from token_server.uploads import FormShape, uploaded_form
from voices.audio import decode_clip
from voices.checks import requested_language, speaker_name
from voices.cloning import MAX_CLIP_S, clone_voice
from voices.dataset import MAX_RECORDING_S, prepare_dataset
from voices.store import VoiceStore
from voices.training import DATASET_FILE, LOG_FILE, TrainingJob, TrainingSettings, read_job
from voices.transcribe import Transcriber

VOICES_ROUTE = "/api/voices"
VOICE_ROUTE = "/api/voices/{voice_id}"
TRAIN_ROUTE = "/api/train-voice"
TRAIN_STATUS_ROUTE = "/api/train-voice/{dataset_id}"
TRAIN_LOG_ROUTE = "/api/train-voice/{dataset_id}/log"
AUDIO_FIELD = "audio"
VOICE_FIELDS = frozenset({"name", "language", "prompt_text"})
TRAIN_FIELDS = frozenset({"speaker", "language"})
MEGABYTE = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class VoicesApi:
    """What the routes share: the voice store, the Whisper transcriber (one model for voices and
    datasets), the training settings, the upload limits and the running training jobs."""

    store: VoiceStore
    transcriber: Transcriber
    training: TrainingSettings
    voice_max_upload_bytes: int
    train_max_upload_bytes: int
    jobs: dict[str, TrainingJob] = field(default_factory=dict)

    @classmethod
    def of(cls, settings) -> VoicesApi:
        """From the token server's settings (whisper_model, cache, voices_dir, AVATAR_VOICES_DIR,
        default <AVATAR_CACHE>/voices; voice_max_upload_mb, train_max_upload_mb; training)."""
        return cls(
            store=VoiceStore(folder=settings.voices_dir or settings.cache / "voices"),
            transcriber=Transcriber(model=settings.whisper_model, cache=settings.cache),
            training=TrainingSettings.from_section(settings.training, cache=settings.cache),
            voice_max_upload_bytes=int(settings.voice_max_upload_mb * MEGABYTE),
            train_max_upload_bytes=int(settings.train_max_upload_mb * MEGABYTE),
        )


VOICES = web.AppKey("voices_api", VoicesApi)


def setup_voice_routes(app: web.Application, settings) -> None:
    """Add the voices and voice-training APIs to the token server app.

    settings: the token server's (TokenServerSettings, or any object with its fields above).
    """
    app[VOICES] = VoicesApi.of(settings)
    app.router.add_post(VOICES_ROUTE, create_voice)
    app.router.add_get(VOICES_ROUTE, list_voices)
    app.router.add_get(VOICE_ROUTE, get_voice)
    app.router.add_delete(VOICE_ROUTE, delete_voice)
    app.router.add_post(TRAIN_ROUTE, create_dataset)
    app.router.add_get(TRAIN_STATUS_ROUTE, dataset_status)
    app.router.add_get(TRAIN_LOG_ROUTE, job_log)
    app.on_cleanup.append(_stop)


# -- voices ----------------------------------------------------------------------------------------
async def create_voice(request: web.Request) -> web.Response:
    """A new voice from an uploaded reference clip (201 with its metadata)."""
    api = request.app[VOICES]
    shape = FormShape(
        file_fields=frozenset({AUDIO_FIELD}),
        text_fields=VOICE_FIELDS,
        max_file_bytes=api.voice_max_upload_bytes,
        required_files=frozenset({AUDIO_FIELD}),
    )
    async with uploaded_form(request, shape, directory=api.store.folder) as form:
        clip = await asyncio.to_thread(
            decode_clip, form.files[AUDIO_FIELD], form.filenames[AUDIO_FIELD], max_s=MAX_CLIP_S
        )
    meta = await clone_voice(
        clip,
        name=form.fields.get("name", ""),
        language=form.fields.get("language"),
        prompt_text=form.fields.get("prompt_text", ""),
        transcriber=api.transcriber,
        store=api.store,
    )
    return web.json_response(meta, status=201)


async def list_voices(request: web.Request) -> web.Response:
    return web.json_response({"voices": request.app[VOICES].store.all()})


async def get_voice(request: web.Request) -> web.Response:
    voice_id = request.match_info["voice_id"]
    meta = request.app[VOICES].store.get(voice_id)
    if meta is None:
        raise _unknown_voice(voice_id)
    return web.json_response(meta)


async def delete_voice(request: web.Request) -> web.Response:
    voice_id = request.match_info["voice_id"]
    if not await asyncio.to_thread(request.app[VOICES].store.delete, voice_id):
        raise _unknown_voice(voice_id)
    return web.Response(status=204)


def _unknown_voice(voice_id: str) -> ApiError:
    return ApiError(404, "unknown_voice", f"no voice {voice_id!r}")


# -- training --------------------------------------------------------------------------------------
async def create_dataset(request: web.Request) -> web.Response:
    """Slice, transcribe and list a recording; start training when GPT-SoVITS is installed."""
    api = request.app[VOICES]
    options = api.training
    shape = FormShape(
        file_fields=frozenset({AUDIO_FIELD}),
        text_fields=TRAIN_FIELDS,
        max_file_bytes=api.train_max_upload_bytes,
        required_files=frozenset({AUDIO_FIELD}),
    )
    async with uploaded_form(request, shape, directory=options.datasets_dir) as form:
        speaker = speaker_name(form.fields.get("speaker"))
        language = requested_language(form.fields.get("language"))
        recording = await asyncio.to_thread(
            decode_clip, form.files[AUDIO_FIELD], form.filenames[AUDIO_FIELD],
            max_s=MAX_RECORDING_S,
        )
    dataset = await prepare_dataset(
        recording,
        speaker=speaker,
        language=language,
        datasets_dir=options.datasets_dir,
        transcriber=api.transcriber,
    )
    if options.gpt_sovits_dir is not None:
        job = TrainingJob(dataset_dir=Path(dataset["dataset_dir"]), settings=options)
        api.jobs[dataset["id"]] = job
        job.start()
    dataset["job"] = read_job(Path(dataset["dataset_dir"]))
    return web.json_response(dataset, status=201)


async def dataset_status(request: web.Request) -> web.Response:
    folder = _dataset_folder(request)
    dataset = json.loads((folder / DATASET_FILE).read_text())
    dataset["job"] = read_job(folder)
    return web.json_response(dataset)


async def job_log(request: web.Request) -> web.Response:
    log = _dataset_folder(request) / LOG_FILE
    text = log.read_text(errors="replace") if log.is_file() else ""
    return web.Response(text=text, content_type="text/plain")


def _dataset_folder(request: web.Request) -> Path:
    dataset_id = request.match_info["dataset_id"]
    folder = stored_folder(
        request.app[VOICES].training.datasets_dir, dataset_id, marker=DATASET_FILE
    )
    if folder is None:
        raise ApiError(404, "unknown_dataset", f"no training dataset {dataset_id!r}")
    return folder


async def _stop(app: web.Application) -> None:
    """Stop the training jobs and the transcription worker with the server."""
    api = app[VOICES]
    for job in api.jobs.values():
        await job.stop()
    await asyncio.to_thread(api.transcriber.close)
