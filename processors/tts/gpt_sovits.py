"""GPT-SoVITS voice: the user's own `api_v2.py` server, streamed sentence by sentence.

Each sentence is one `/tts` request (text split method "cut0": we already send one sentence) with
the room's voice (reference clip + its transcript + languages). The answer streams: a WAV header
then raw 16-bit PCM (media_type "wav") or raw PCM at a configured rate ("raw"); the audio is
pushed as it arrives so the first sound comes early, and the sentence's word timings come from
forced alignment of its text to the audio (processors/align/whisper_aligner.py).

Failures: a connection error, timeout or 5xx before any audio is retried once; if the server
still fails (or refuses the request, or answers with something that is not audio) the sentence
is spoken by the embedded voice, with a log line, so the room keeps talking (GPT_SOVITS_FALLBACK,
default on; off: the error is reported and the sentence skipped). On barge-in Pipecat cancels
synthesis and the HTTP stream is closed.

At run time a TTSUpdateSettingsFrame sets `voice` (a stored voice's id, read from the voices
directory; None: the configured voice) and `speed` (api_v2's speed_factor).
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np
from loguru import logger

from avatar_core.stored import stored_folder
from processors.tts.timed import TimedTTSService
from processors.tts.voice import (
    AlignedVoice,
    Aligner,
    AudioChunk,
    FallbackVoice,
    StreamedVoice,
    TimedVoice,
    VoiceSettings,
    VoiceUnavailable,
)

TTS_PATH = "/tts"
MEDIA_WAV = "wav"
MEDIA_RAW = "raw"
# One request per sentence: no further splitting on the server.
NO_SPLIT = "cut0"
# streaming_mode values of api_v2: 0 off, 1 per fragment, 2 medium quality, 3 fastest.
STREAMING_MODES = (0, 1, 2, 3)
VOICE_FILE = "voice.json"


@dataclass(frozen=True, slots=True)
class GPTSoVITSVoice:
    """A zero-shot GPT-SoVITS voice: a 3-10 s reference clip (a path the server can read), what
    is said in it, and its language."""

    ref_audio_path: str
    prompt_text: str
    prompt_lang: str = "en"

    @classmethod
    def load(cls, voice_id: str, directory: Path) -> GPTSoVITSVoice:
        """A voice stored by the voices API (<directory>/<id>/voice.json); the id is checked
        before it touches a path, so no id reads outside `directory`."""
        folder = stored_folder(directory, voice_id, marker=VOICE_FILE)
        if folder is None:
            raise ValueError(f"no stored voice {voice_id!r} in {directory}")
        path = folder / VOICE_FILE
        try:
            meta = json.loads(path.read_text())
            return cls(ref_audio_path=meta["ref_audio_path"], prompt_text=meta["prompt_text"],
                       prompt_lang=meta["prompt_lang"])
        except (KeyError, ValueError) as e:
            raise ValueError(f"stored voice {voice_id!r} is unreadable ({path}): {e}") from e


@dataclass(frozen=True, slots=True)
class GPTSoVITSSettings:
    """Server, voice (and where stored voices are, for run-time changes), request options,
    timeouts and failure behaviour (see .env.example)."""

    url: str = "http://127.0.0.1:9880"
    voice: GPTSoVITSVoice | None = None
    voices_dir: Path | None = None
    text_lang: str = "en"
    speed_factor: float = 1.0
    streaming_mode: int = 2
    media_type: str = MEDIA_WAV
    raw_sample_rate: int = 32000
    connect_timeout_s: float = 2.0
    first_audio_timeout_s: float = 10.0
    chunk_timeout_s: float = 5.0
    retries: int = 1
    fallback: bool = True
    hold_for_timings: bool = False

    def __post_init__(self):
        if self.streaming_mode not in STREAMING_MODES:
            raise ValueError(f"GPT_SOVITS_STREAMING_MODE must be one of {STREAMING_MODES}, "
                             f"got {self.streaming_mode}")
        if self.media_type not in (MEDIA_WAV, MEDIA_RAW):
            raise ValueError(f"GPT_SOVITS_MEDIA_TYPE must be {MEDIA_WAV} or {MEDIA_RAW}, "
                             f"got {self.media_type!r}")
        if self.retries < 0 or min(self.connect_timeout_s, self.first_audio_timeout_s,
                                   self.chunk_timeout_s, self.speed_factor) <= 0:
            raise ValueError("GPT-SoVITS timeouts and speed must be > 0 and retries >= 0")


class GPTSoVITSError(VoiceUnavailable):
    """The GPT-SoVITS server could not give audio for a sentence; the message says why.

    `retryable`: a connection problem, timeout or server error (worth one more try), as opposed
    to a refused request or an answer that is not audio.
    """

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


class GPTSoVITSTTSService(TimedTTSService):
    """TimedTTSService on a GPT-SoVITS api_v2 server, with aligned word timings and a fallback.

    `aligner` places the words in the returned audio; `fallback` (the embedded voice) speaks
    when the server cannot (None: no fallback, whatever the options say). The audio goes out as
    it streams unless `options.hold_for_timings`.
    """

    def __init__(self, *, options: GPTSoVITSSettings, aligner: Aligner,
                 fallback: TimedVoice | None = None, **kwargs):
        self._server = GPTSoVITSStream(options=options)
        primary: TimedVoice | StreamedVoice = (
            AlignedVoice(voice=self._server, aligner=aligner) if options.hold_for_timings
            else StreamedVoice(voice=self._server, aligner=aligner))
        voice = (FallbackVoice(primary=primary, secondary=fallback)
                 if options.fallback and fallback is not None else primary)
        super().__init__(voice=voice, settings=VoiceSettings(
            model="gpt-sovits", voice=None, language=options.text_lang,
            speed=options.speed_factor), **kwargs)
        logger.info(f"{self}: GPT-SoVITS at {options.url}, voice {_voice_name(options.voice)}, "
                    f"fallback {'embedded voice' if isinstance(voice, FallbackVoice) else 'off'}")

    async def stop(self, frame):
        await super().stop(frame)
        await self._server.close()

    async def cancel(self, frame):
        await super().cancel(frame)
        await self._server.close()


class GPTSoVITSStream:
    """A StreamingVoice on a GPT-SoVITS api_v2 server: one streamed /tts request per sentence."""

    def __init__(self, *, options: GPTSoVITSSettings):
        self._options = options
        self._http: aiohttp.ClientSession | None = None

    async def stream(self, text: str, *, voice: str | None = None,
                     speed: float | None = None) -> AsyncIterator[AudioChunk]:
        """The sentence's audio from the server as it streams (retried before any audio)."""
        params = self.request_params(text, voice=voice, speed=speed)
        failure: GPTSoVITSError | None = None
        for attempt in range(1 + self._options.retries):
            started = False
            try:
                async for chunk in self._request(params):
                    started = True
                    yield chunk
                return
            except GPTSoVITSError as e:
                if started:
                    logger.warning(f"GPT-SoVITS stream broke off mid-sentence ({e}); "
                                   f"the rest of [{text}] is lost")
                    return
                failure = e
                logger.warning(f"GPT-SoVITS attempt {attempt + 1} failed: {e}")
                if not e.retryable:
                    break
        raise failure  # type: ignore[misc]  # set by the first attempt (retries >= 0)

    async def close(self):
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- HTTP -----------------------------------------------------------------------------------
    def request_params(self, text: str, *, voice: str | None = None,
                       speed: float | None = None) -> dict:
        """The api_v2 /tts request for one sentence, in the stored voice `voice` (None: the
        configured one) at `speed` (None: the configured speed_factor)."""
        reference = self._options.voice if voice is None else self._stored_voice(voice)
        if reference is None:
            raise GPTSoVITSError(
                "no GPT-SoVITS voice configured (set GPT_SOVITS_VOICE_ID or "
                "GPT_SOVITS_REF_AUDIO + GPT_SOVITS_PROMPT_TEXT)",
                retryable=False,
            )
        return {
            "text": text,
            "text_lang": self._options.text_lang,
            "ref_audio_path": reference.ref_audio_path,
            "prompt_text": reference.prompt_text,
            "prompt_lang": reference.prompt_lang,
            "text_split_method": NO_SPLIT,
            "speed_factor": self._options.speed_factor if speed is None else speed,
            "streaming_mode": self._options.streaming_mode,
            "media_type": self._options.media_type,
        }

    def _stored_voice(self, voice_id: str) -> GPTSoVITSVoice:
        if self._options.voices_dir is None:
            raise GPTSoVITSError(f"cannot use stored voice {voice_id!r}: no voices directory",
                                 retryable=False)
        try:
            return GPTSoVITSVoice.load(voice_id, self._options.voices_dir)
        except ValueError as e:
            raise GPTSoVITSError(str(e), retryable=False) from None

    async def _request(self, params: dict) -> AsyncIterator[AudioChunk]:
        """One POST /tts; yields int16 chunks as they arrive; closes the stream when abandoned."""
        options = self._options
        http = self._session()
        try:
            async with asyncio.timeout(options.first_audio_timeout_s):
                response = await http.post(options.url.rstrip("/") + TTS_PATH, json=params)
        except TimeoutError:
            raise GPTSoVITSError(
                f"no audio within {options.first_audio_timeout_s:g} s (no answer)", retryable=True
            ) from None
        except aiohttp.ClientError as e:
            raise GPTSoVITSError(f"cannot reach {options.url} ({e})", retryable=True) from None
        try:
            await _check_response(response)
            decoder = _PcmDecoder(options.media_type, options.raw_sample_rate)
            timeout, first = options.first_audio_timeout_s, True
            while True:
                try:
                    async with asyncio.timeout(timeout):
                        data = await response.content.readany()
                except TimeoutError:
                    raise GPTSoVITSError(
                        f"no audio within {timeout:g} s"
                        if first
                        else f"stream stalled for {timeout:g} s",
                        retryable=True,
                    ) from None
                except aiohttp.ClientError as e:
                    raise GPTSoVITSError(f"stream broke ({e})", retryable=True) from None
                if not data:
                    break
                chunk = decoder.feed(data)
                if chunk is not None:
                    first, timeout = False, options.chunk_timeout_s
                    yield chunk
            if first:
                raise GPTSoVITSError("the server answered with no audio", retryable=True)
        finally:
            # Closing (not releasing) drops the connection: an unfinished stream stops here.
            response.close()

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=self._options.connect_timeout_s)
            )
        return self._http


async def _check_response(response: aiohttp.ClientResponse) -> None:
    """Raise a clear GPTSoVITSError for an error status or a body that is not audio."""
    if response.status != 200:
        body = await response.text(errors="replace")
        try:
            reason = json.loads(body)
            reason = reason.get("message", body) + (
                f": {reason['Exception']}" if "Exception" in reason else ""
            )
        except (ValueError, AttributeError):
            reason = body[:200]
        raise GPTSoVITSError(
            f"the server answered {response.status}: {reason}", retryable=response.status >= 500
        )
    if not response.content_type.startswith("audio/"):
        raise GPTSoVITSError(
            f"the server answered {response.content_type}, not audio", retryable=False
        )


class _PcmDecoder:
    """Streamed bytes → int16 AudioChunks: a WAV header first (media_type wav), whole samples."""

    def __init__(self, media_type: str, raw_sample_rate: int):
        self._need_header = media_type == MEDIA_WAV
        self._rate = raw_sample_rate
        self._pending = b""

    def feed(self, data: bytes) -> AudioChunk | None:
        self._pending += data
        if self._need_header:
            if not self._parse_header():
                return None
        usable = len(self._pending) // 2 * 2
        if usable == 0:
            return None
        pcm, self._pending = self._pending[:usable], self._pending[usable:]
        return AudioChunk(np.frombuffer(pcm, np.int16).copy(), self._rate)

    def _parse_header(self) -> bool:
        """Consume the RIFF header up to the data chunk; False while more bytes are needed."""
        buf = self._pending
        if len(buf) < 12:
            return False
        if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
            raise GPTSoVITSError(
                f"the server's audio is not WAV (starts with {buf[:12]!r})", retryable=False
            )
        pos, fmt = 12, None
        while True:
            if len(buf) < pos + 8:
                return False
            chunk_id, size = buf[pos : pos + 4], struct.unpack("<I", buf[pos + 4 : pos + 8])[0]
            if chunk_id == b"data":
                break
            if len(buf) < pos + 8 + size:
                return False
            if chunk_id == b"fmt ":
                fmt = struct.unpack("<HHIIHH", buf[pos + 8 : pos + 24])
            pos += 8 + size + (size & 1)
            if pos > 4096:
                raise GPTSoVITSError("the server's WAV header has no data chunk", retryable=False)
        if fmt is None or fmt[0] != 1 or fmt[1] != 1 or fmt[5] != 16:
            raise GPTSoVITSError(
                f"the server's WAV is not 16-bit mono PCM (fmt {fmt})", retryable=False
            )
        self._rate = fmt[2]
        self._pending = buf[pos + 8 :]
        self._need_header = False
        return True


def _voice_name(voice: GPTSoVITSVoice | None) -> str | None:
    return Path(voice.ref_audio_path).name if voice else None
