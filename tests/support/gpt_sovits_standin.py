"""STAND-IN for a GPT-SoVITS `api_v2.py` server (its pretrained weights cannot run here).

It follows the documented HTTP behaviour of `api_v2.py`'s `/tts` endpoint: GET (query) or POST
(JSON) with text, text_lang, ref_audio_path, prompt_text, prompt_lang, text_split_method,
speed_factor, streaming_mode (0-3 or true/false), media_type (wav/raw); 400 with a JSON
{"message": ...} for a bad request; a streamed answer is a WAV header (wav) followed by raw
16-bit PCM chunks, a non-streamed one a whole WAV file (or raw PCM). The voice is Piper's joe
by default (tests/support/voices.py; any object with `synthesize(text) -> TimedSpeech` will do),
not the embedded voice the aligner uses as its reference, so tests do not align a voice to
itself; it is resampled to 32 kHz like GPT-SoVITS v2 models, and tests know the exact words and
timings of what was "synthesized" (`spoken`).

Knobs (`mode`): "ok"; "slow" (headers, then nothing for `slow_s`); "garbage" (200 with bytes
that are not audio); "cut" (the connection drops after the first chunk). `go_down()` /
`come_up()` stop and restart listening on the same port (server down / back).
Counters: `requests` (params as received), `references` (the reference clip's bytes as the
server read them from `ref_audio_path`, one per accepted request, as api_v2 reads its reference
by path), `completed`, `disconnected` (streams the client closed before their end).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr
from aiohttp import web

from processors.timing import TimedSpeech
from tests.support.audio_files import wav_bytes
from tests.support.voices import PiperTestVoice

TTS_PATH = "/tts"
SAMPLE_RATE = 32000
LANGUAGES = ("auto", "auto_yue", "en", "zh", "ja", "yue", "ko", "all_zh", "all_ja", "all_yue",
             "all_ko")
SPLIT_METHODS = ("cut0", "cut1", "cut2", "cut3", "cut4", "cut5")
MEDIA_TYPES = ("wav", "raw")


@dataclass
class GPTSoVITSStandIn:
    """The stand-in server; `async with GPTSoVITSStandIn() as server: server.url`."""

    voice: object = field(default_factory=PiperTestVoice)
    mode: str = "ok"
    first_chunk_s: float = 0.15     # model warm-up before the first chunk
    chunk_s: float = 0.2            # audio per streamed chunk
    realtime: float = 4.0           # chunks come this many times faster than real time
    slow_s: float = 60.0
    requests: list[dict] = field(default_factory=list)
    references: list[bytes] = field(default_factory=list)
    spoken: list[TimedSpeech] = field(default_factory=list)
    completed: int = 0
    disconnected: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None
    _site: web.TCPSite | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> GPTSoVITSStandIn:
        app = web.Application()
        app.router.add_get(TTS_PATH, self._tts)
        app.router.add_post(TTS_PATH, self._tts)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        await self.come_up()
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()

    async def go_down(self) -> None:
        """Stop listening (connections are refused) but keep the port for come_up()."""
        await self._site.stop()
        self._site = None

    async def come_up(self) -> None:
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await self._site.start()
        self.port = self._site._server.sockets[0].getsockname()[1]

    # -- /tts -------------------------------------------------------------------------------------
    async def _tts(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            try:
                params = await request.json()
            except ValueError:
                return _bad("request body is not JSON")
        else:
            params = dict(request.query)
        self.requests.append(params)
        problem = _check(params)
        if problem:
            return _bad(problem)
        self.references.append(await asyncio.to_thread(Path(params["ref_audio_path"]).read_bytes))
        streaming = _streaming(params.get("streaming_mode", False))
        if streaming is None:
            return _bad("the value of streaming_mode must be 0, 1, 2, 3(int) or true/false(bool)")
        media_type = params.get("media_type", "wav")

        if self.mode == "garbage":
            return web.Response(body=os.urandom(3000), content_type=f"audio/{media_type}")
        speech = await asyncio.to_thread(self._speak, params)
        if not streaming:
            await asyncio.sleep(self.first_chunk_s + speech.duration / self.realtime)
            self.completed += 1
            return web.Response(body=_pack(_resampled(speech), media_type, header=True),
                                content_type=f"audio/{media_type}")
        return await self._stream(request, speech, media_type)

    async def _stream(self, request: web.Request, speech: TimedSpeech, media_type: str
                      ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": f"audio/{media_type}"})
        await response.prepare(request)
        pcm = _resampled(speech)
        step = int(SAMPLE_RATE * self.chunk_s)
        try:
            if media_type == "wav":
                await response.write(_pack(np.zeros(0, np.int16), "wav", header=True))
            await asyncio.sleep(self.slow_s if self.mode == "slow" else self.first_chunk_s)
            for i in range(0, len(pcm), step):
                if i:
                    await asyncio.sleep(self.chunk_s / self.realtime)
                await response.write(pcm[i:i + step].tobytes())
                if self.mode == "cut":
                    request.transport.close()
                    return response
            await response.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            self.disconnected += 1
            raise
        self.completed += 1
        return response

    def _speak(self, params: dict) -> TimedSpeech:
        speech = self.voice.synthesize(params["text"])
        self.spoken.append(speech)
        return speech


def _check(params: dict) -> str | None:
    """api_v2's request checks: the reason for a 400, or None."""
    if not params.get("ref_audio_path"):
        return "ref_audio_path is required"
    if not os.path.isfile(params["ref_audio_path"]):
        return f"tts failed: reference audio {params['ref_audio_path']} not found"
    if not params.get("text"):
        return "text is required"
    for key in ("text_lang", "prompt_lang"):
        if not params.get(key):
            return f"{key} is required"
        if str(params[key]).lower() not in LANGUAGES:
            return f"{key}: {params[key]} is not supported in version v2"
    if params.get("media_type", "wav") not in MEDIA_TYPES:
        return f"media_type: {params['media_type']} is not supported by the stand-in"
    if params.get("text_split_method", "cut5") not in SPLIT_METHODS:
        return f"text_split_method:{params['text_split_method']} is not supported"
    return None


def _streaming(value) -> bool | None:
    """streaming_mode as api_v2 reads it (bool, 0-3, or their text forms); None if invalid."""
    text = str(value).lower()
    if text in ("false", "0"):
        return False
    if text in ("true", "1", "2", "3"):
        return True
    return None


def _bad(message: str) -> web.Response:
    return web.json_response({"message": message}, status=400)


def _resampled(speech: TimedSpeech) -> np.ndarray:
    audio = soxr.resample(
        speech.audio.astype(np.float32) / 32768.0, speech.sample_rate, SAMPLE_RATE
    )
    return np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)


def _pack(audio: np.ndarray, media_type: str, *, header: bool) -> bytes:
    if media_type == "raw" or not header:
        return audio.tobytes()
    return wav_bytes(audio, SAMPLE_RATE)
