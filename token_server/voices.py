"""Voices API: upload a 3-10 s reference clip, get a GPT-SoVITS zero-shot voice.

    POST   /api/voices        multipart: audio (WAV/MP3/OGG, 3-10 s), name?, language?, prompt_text?
    GET    /api/voices        all stored voices
    GET    /api/voices/{id}   one voice
    DELETE /api/voices/{id}

The clip is decoded with PyAV, checked (length, level, clipping, size; a bad clip is a 4xx with
the reason) and transcribed with faster-whisper: GPT-SoVITS needs the words of its reference
clip (prompt_text) and their language (detected unless given). The voice is stored on disk as
<voices dir>/<id>/ref.wav + voice.json; a bot speaks with it through GPT_SOVITS_VOICE_ID=<id>
(processors/tts/gpt_sovits.py). The GPT-SoVITS server reads ref.wav by path, so the voices
folder must be visible to it (same machine or a shared volume).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import uuid
import wave
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, cast

import av
import numpy as np
import soxr
from aiohttp import web
from loguru import logger

from avatar_core.whisper import installed_whisper_model, load_whisper
from processors.align.whisper_aligner import WHISPER_SAMPLE_RATE
from processors.tts.gpt_sovits import VOICE_FILE
from token_server.errors import ApiError
from token_server.uploads import FormShape, uploaded_form

if TYPE_CHECKING:
    from faster_whisper.transcribe import TranscriptionInfo

VOICES_ROUTE = "/api/voices"
VOICE_ROUTE = "/api/voices/{voice_id}"
REF_FILE = "ref.wav"
AUDIO_FIELD = "audio"
# Containers PyAV may open for an upload (WAV, MP3, OGG/Vorbis/Opus).
ACCEPTED_FORMATS = frozenset({"wav", "mp3", "ogg"})
# Languages GPT-SoVITS v2 speaks (prompt_lang / text_lang codes).
GPT_SOVITS_LANGUAGES = ("en", "zh", "ja", "ko", "yue")
AUTO_LANGUAGE = "auto"

MIN_CLIP_S, MAX_CLIP_S = 3.0, 10.0
# No sound at all below this peak; too quiet to clone below this RMS (dBFS).
SILENT_PEAK_DBFS = -50.0
MIN_RMS_DBFS = -40.0
# Clipping: samples in runs of >= CLIP_RUN at full scale, as a share of the clip.
CLIP_LEVEL = 0.999
CLIP_RUN = 3
MAX_CLIPPED_SHARE = 0.001
VOICE_FIELDS = frozenset({"name", "language", "prompt_text"})
MEGABYTE = 1 << 20
# Highest sample rate a clip may declare (the decode buffer is sized from it).
MAX_SAMPLE_RATE = 192_000

WHISPER = cast("web.AppKey[WhisperLoader]", web.AppKey("voice_whisper", object))
VOICE_SETTINGS = cast("web.AppKey[VoiceApiSettings]", web.AppKey("voice_settings", object))


@dataclass(frozen=True, slots=True)
class VoiceApiSettings:
    """Where voices are stored, which Whisper model transcribes, and the upload limit."""

    voices_dir: Path
    whisper_model: str
    cache: Path
    max_upload_bytes: int

    @classmethod
    def of(cls, settings) -> VoiceApiSettings:
        """From the token server's settings (whisper_model, cache, voice_max_upload_mb and
        voices_dir, AVATAR_VOICES_DIR, default <AVATAR_CACHE>/voices)."""
        return cls(
            voices_dir=settings.voices_dir or settings.cache / "voices",
            whisper_model=settings.whisper_model,
            cache=settings.cache,
            max_upload_bytes=int(settings.voice_max_upload_mb * MEGABYTE),
        )


@dataclass(frozen=True, slots=True)
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


def setup_voice_routes(app: web.Application, settings) -> None:
    """Add the voices and voice-training APIs to the token server app.

    settings: the token server's (uses .whisper_model and .cache).
    """
    from token_server.training import setup_training_routes

    options = VoiceApiSettings.of(settings)
    app[VOICE_SETTINGS] = options
    app[WHISPER] = WhisperLoader(options)
    app.router.add_post(VOICES_ROUTE, create_voice)
    app.router.add_get(VOICES_ROUTE, list_voices)
    app.router.add_get(VOICE_ROUTE, get_voice)
    app.router.add_delete(VOICE_ROUTE, delete_voice)
    setup_training_routes(app, settings)


# -- handlers --------------------------------------------------------------------------------------
async def create_voice(request: web.Request) -> web.Response:
    """A new voice from an uploaded reference clip (201 with its metadata)."""
    options: VoiceApiSettings = request.app[VOICE_SETTINGS]
    shape = FormShape(
        file_fields=frozenset({AUDIO_FIELD}),
        text_fields=VOICE_FIELDS,
        max_file_bytes=options.max_upload_bytes,
        required_files=frozenset({AUDIO_FIELD}),
    )
    async with uploaded_form(request, shape, directory=options.voices_dir) as form:
        clip = await asyncio.to_thread(
            decode_clip, form.files[AUDIO_FIELD], form.filenames[AUDIO_FIELD], max_s=MAX_CLIP_S
        )
    fields = form.fields
    check_clip(clip, MIN_CLIP_S, MAX_CLIP_S)
    language = requested_language(fields.get("language"))
    prompt_text = fields.get("prompt_text", "").strip()
    if not prompt_text:
        prompt_text, language = await transcribe(request.app, clip, language)
    if not prompt_text:
        raise ApiError(
            422,
            "no_speech",
            "no speech was recognized in the clip; upload a "
            "clip of someone talking (or give prompt_text)",
        )
    voice_id = uuid.uuid4().hex[:12]
    folder = options.voices_dir / voice_id
    folder.mkdir(parents=True)
    write_wav(folder / REF_FILE, clip.samples, clip.sample_rate)
    meta = {
        "id": voice_id,
        "name": fields.get("name", "").strip() or Path(clip.filename).stem or voice_id,
        "ref_audio_path": str((folder / REF_FILE).resolve()),
        "prompt_text": prompt_text,
        "prompt_lang": language,
        "duration_s": round(clip.duration, 3),
        "sample_rate": clip.sample_rate,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (folder / VOICE_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False))
    logger.info(f"voice {meta['id']} stored ({language}, {meta['duration_s']} s)")
    logger.debug(f"voice {meta['id']} ({meta['name']!r}) says: {prompt_text!r}")
    return web.json_response(meta, status=201)


async def list_voices(request: web.Request) -> web.Response:
    options: VoiceApiSettings = request.app[VOICE_SETTINGS]
    voices = []
    if options.voices_dir.is_dir():
        for meta_path in sorted(options.voices_dir.glob(f"*/{VOICE_FILE}")):
            try:
                voices.append(json.loads(meta_path.read_text()))
            except (OSError, ValueError) as e:
                logger.warning(f"skipping unreadable voice {meta_path}: {e}")
    voices.sort(key=lambda v: v.get("created", ""))
    return web.json_response({"voices": voices})


async def get_voice(request: web.Request) -> web.Response:
    return web.json_response(json.loads((_voice_folder(request) / VOICE_FILE).read_text()))


async def delete_voice(request: web.Request) -> web.Response:
    folder = _voice_folder(request)
    await asyncio.to_thread(shutil.rmtree, folder)
    logger.info(f"voice {folder.name} deleted")
    return web.Response(status=204)


def _voice_folder(request: web.Request) -> Path:
    return stored_folder(
        request.app[VOICE_SETTINGS].voices_dir,
        request.match_info["voice_id"],
        marker=VOICE_FILE,
        error="unknown_voice",
        what="voice",
    )


STORED_ID = re.compile(r"^[0-9a-f]{12}$")


def stored_folder(root: Path, item_id: str, *, marker: str, error: str, what: str) -> Path:
    """The folder of a stored item (voice, dataset) by id, or 404 when there is none."""
    folder = root / item_id
    if not STORED_ID.match(item_id) or not (folder / marker).is_file():
        raise ApiError(404, error, f"no {what} {item_id!r}")
    return folder


# -- decoding, checks (shared with training.py) ----------------------------------------------------
def decode_clip(path: Path, filename: str, *, max_s: float) -> Clip:
    """WAV/MP3/OGG file → mono float32 at its own sample rate (PyAV), streamed: a clip longer
    than max_s is refused from its container's declared duration before any decoding, and
    while decoding as soon as its samples pass max_s, so memory stays bounded by max_s of audio
    whatever the file claims. 4xx if it is not such a file."""
    try:
        with av.open(str(path)) as container:
            formats = set(container.format.name.split(","))
            if not formats & ACCEPTED_FORMATS:
                raise ApiError(
                    415,
                    "unsupported_format",
                    f"{container.format.name} files are not accepted; send WAV, MP3 or OGG",
                )
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise ApiError(400, "not_audio", "the file has no audio stream")
            declared = _declared_seconds(container, stream)
            if declared is not None and declared > max_s + 1.0:
                raise ApiError(
                    400, "too_long", f"the clip is {declared:.1f} s; at most {max_s:g} s"
                )
            rate = cast(av.AudioStream, stream).rate
            if not rate or not 0 < rate <= MAX_SAMPLE_RATE:
                raise ApiError(400, "not_audio", f"unsupported sample rate {rate}")
            limit = int(max_s * rate) + 1
            buffer = np.empty(limit, np.float32)  # pages are only touched as samples arrive
            count = 0
            resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
            for frame in _frames(container, stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    if count + len(chunk) > limit:
                        raise ApiError(400, "too_long", f"the clip is longer than {max_s:g} s")
                    buffer[count : count + len(chunk)] = chunk
                    count += len(chunk)
    except av.error.FFmpegError as e:
        raise ApiError(
            400,
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


def check_clip(clip: Clip, min_s: float, max_s: float) -> None:
    """Length, level and clipping of a clip, or a 400 that says what is wrong."""
    if clip.duration < min_s:
        raise ApiError(
            400,
            "too_short",
            f"the clip is {clip.duration:.1f} s; at least {min_s:g} s of speech is needed",
        )
    if clip.duration > max_s:
        raise ApiError(400, "too_long", f"the clip is {clip.duration:.1f} s; at most {max_s:g} s")
    x = clip.samples
    peak = float(np.max(np.abs(x)))
    if peak == 0 or 20 * np.log10(peak) < SILENT_PEAK_DBFS:
        raise ApiError(400, "silent", "the clip is silent")
    rms_dbfs = 10 * np.log10(float(np.mean(x.astype(np.float64) ** 2)) + 1e-20)
    if rms_dbfs < MIN_RMS_DBFS:
        raise ApiError(
            400,
            "too_quiet",
            f"the clip is too quiet ({rms_dbfs:.0f} dBFS RMS; at least "
            f"{MIN_RMS_DBFS:.0f} dBFS): record closer to the microphone",
        )
    share = clipped_share(x)
    if share > MAX_CLIPPED_SHARE:
        raise ApiError(
            400,
            "clipped",
            f"the clip is clipped ({share:.1%} of it at full scale): record with less gain",
        )


def clipped_share(x: np.ndarray) -> float:
    """Share of samples in runs of >= CLIP_RUN consecutive full-scale samples."""
    full = np.abs(x) >= CLIP_LEVEL
    edges = np.flatnonzero(np.diff(np.r_[0, full.astype(np.int8), 0]))
    runs = edges[1::2] - edges[::2]
    return float(runs[runs >= CLIP_RUN].sum()) / max(1, len(x))


def requested_language(value: str | None) -> str | None:
    """The form's language (None: detect), or a 400 for one GPT-SoVITS does not speak."""
    if value is None or value.strip().lower() in ("", AUTO_LANGUAGE):
        return None
    language = value.strip().lower()
    if language not in GPT_SOVITS_LANGUAGES:
        raise ApiError(
            400,
            "unsupported_language",
            f"language {value!r} is not one GPT-SoVITS speaks: {', '.join(GPT_SOVITS_LANGUAGES)}",
        )
    return language


async def transcribe(app: web.Application, clip: Clip, language: str | None) -> tuple[str, str]:
    """(text, language) of a clip with faster-whisper (language detected when None)."""
    model = await app[WHISPER].get()
    segments, info = await asyncio.to_thread(
        _transcribe, model, clip.at(WHISPER_SAMPLE_RATE), language
    )
    found = language or info.language
    if found not in GPT_SOVITS_LANGUAGES:
        raise ApiError(
            400,
            "unsupported_language",
            f"the clip sounds like {found!r}, which GPT-SoVITS does not speak",
        )
    return segments, found


def _transcribe(
    model, wave16: np.ndarray, language: str | None
) -> tuple[str, TranscriptionInfo]:
    segments, info = model.transcribe(
        wave16, language=language, beam_size=5, condition_on_previous_text=False
    )
    return " ".join(s.text.strip() for s in segments).strip(), info


class WhisperLoader:
    """The app's faster-whisper model, loaded once on first use (in a thread)."""

    def __init__(self, options: VoiceApiSettings):
        self._options = options
        self._model = None
        self._lock = asyncio.Lock()

    async def get(self):
        async with self._lock:
            if self._model is None:
                path = installed_whisper_model(self._options.whisper_model, self._options.cache)
                self._model = await asyncio.to_thread(load_whisper, path, threads=1)
                logger.info(f"voices: Whisper model {path} loaded")
        return self._model


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Mono float samples → 16-bit PCM WAV."""
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
