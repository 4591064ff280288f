"""The voices package's refusals keep their HTTP answers through the token server's error
middleware: a file in another container is a 415, a clip without speech a 422, any other
unusable upload a 400, each with its code and reason (no model needed)."""

import io

import av
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from token_server.errors import error_middleware
from voices.audio import decode_clip
from voices.errors import NoSpeech, UnsupportedFormat, VoiceError


def test_a_flac_file_is_an_unsupported_format(tmp_path):
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="flac") as out:
        stream = out.add_stream("flac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.int16), format="s16",
                                           layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    path = tmp_path / "clip.flac"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(UnsupportedFormat) as refused:
        decode_clip(path, "clip.flac", max_s=10.0)
    assert refused.value.error == "unsupported_format"
    assert "send WAV, MP3 or OGG" in refused.value.detail


@pytest.mark.parametrize("error, status", [
    (UnsupportedFormat("unsupported_format", "flac files are not accepted"), 415),
    (NoSpeech("no_speech", "no speech was recognized in the clip"), 422),
    (VoiceError("too_quiet", "the clip is too quiet"), 400),
])
async def test_voice_errors_are_json_answers_with_their_status(error, status):
    async def refuse(request: web.Request) -> web.Response:
        raise error

    app = web.Application(middlewares=[error_middleware])
    app.router.add_post("/refuse", refuse)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.post("/refuse")
        assert response.status == status
        assert await response.json() == {"error": error.error, "detail": error.detail}
