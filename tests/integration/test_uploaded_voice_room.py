"""A voice uploaded with the default settings speaks in a room (issue 17, acceptance).

As a user does it (README "Clone a voice from a 3-10 s clip"): the real token server process
with the default settings (tests/support/token_server_process.py: no AVATAR_* variable but
where voices are stored) takes a speech clip on `POST /api/voices`, stores and transcribes it
and lists it; then `python -m bot --room` with `GPT_SOVITS_URL` and `GPT_SOVITS_VOICE_ID=<id>`
joins a real livekit-server room, greets the person and answers a spoken question (real
Ollama, Whisper) through the GPT-SoVITS STAND-IN server (tests/support/gpt_sovits_standin.py;
no GPT-SoVITS weights can run here), which reads the voice's reference clip by path as
`api_v2.py` does. The test checks what the stand-in received: the stored clip (the uploaded
samples) and its transcript, in every request.
"""

from __future__ import annotations

import asyncio
import io
import time
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest

from bot.settings import DEFAULT_GREETING, DEFAULT_IDENTITY
from processors.timing import TTS_TIMING_MESSAGE_TYPE
from tests.support.audio_files import encode
from tests.support.bot_process import BotProcess
from tests.support.gpt_sovits_standin import GPTSoVITSStandIn
from tests.support.human import HumanParticipant
from tests.support.probe import level_dbfs, server_messages, speech_times
from tests.support.speech import speak
from tests.support.token_server_process import start_token_server
from tests.support.voices import PiperTestVoice

SAID = "The quick brown fox jumps over the lazy dog near the quiet river bank."
QUESTION = "What is the capital of France?"
BOT_READY_TIMEOUT_S = 180.0
SPEECH_TIMEOUT_S = 240.0
QUIET_S = 3.0  # the reply has ended once the bot is this long without speech
FALLBACK_LOG = "GPT-SoVITS unavailable"


def wav_samples(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2"), w.getframerate()


async def wait_until(check, timeout: float, what: str, bot: BotProcess) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not check():
        if bot.exit_code() is not None:
            raise AssertionError(f"the bot exited ({bot.exit_code()}):\n{bot.log()[-3000:]}")
        if FALLBACK_LOG in bot.log():
            raise AssertionError(f"the embedded voice spoke instead:\n{bot.log()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}\n{bot.log()[-3000:]}")
        await asyncio.sleep(0.2)


async def upload_voice(url: str) -> tuple[dict, np.ndarray]:
    """POST a spoken clip as `curl -F audio=@me.wav -F name=Maya` does; (voice, samples sent)."""
    audio, rate = await asyncio.to_thread(speak, SAID)
    async with httpx.AsyncClient(timeout=180) as http:
        response = await http.post(
            f"{url}/api/voices",
            files={"audio": ("me.wav", encode(audio, rate, "wav", "pcm_s16le"))},
            data={"name": "Maya"},
        )
    assert response.status_code == 201, response.text
    return response.json(), audio


@pytest.mark.timeout(1200)  # Whisper (upload, STT, alignment) and Ollama on a loaded 2-core machine
async def test_voice_uploaded_with_default_settings_speaks_in_a_room(
    livekit, stack_env, make_token, tmp_path
):
    (tmp_path / "token-server").mkdir()
    server = await asyncio.to_thread(start_token_server, tmp_path / "token-server")
    try:
        voice, sent = await upload_voice(server.url)
        async with httpx.AsyncClient(timeout=30) as http:
            listed = (await http.get(f"{server.url}/api/voices")).json()["voices"]
            one = (await http.get(f"{server.url}/api/voices/{voice['id']}")).json()
        assert server.error_lines() == []
    finally:
        server.stop()

    # Stored: the clip as sent, in the voices folder.
    stored = server.voices_dir / voice["id"] / "ref.wav"
    assert Path(voice["ref_audio_path"]) == stored.resolve()
    samples, rate = wav_samples(stored.read_bytes())
    assert rate == 24000 and len(samples) == len(sent)
    assert np.abs(samples.astype(int) - sent).max() <= 1
    # Transcribed, and listed.
    words = voice["prompt_text"].lower()
    assert {"quick", "brown", "fox", "lazy", "dog"} <= set(words.replace(",", " ").split()), words
    assert voice["prompt_lang"] == "en" and voice["name"] == "Maya"
    assert [v["id"] for v in listed] == [voice["id"]] and one == voice

    room = "uploaded-voice"
    piper = PiperTestVoice(any_text=True)  # the LLM's replies: any text
    await asyncio.to_thread(piper.synthesize, "Loading the voice.")  # Piper loads first
    standin = GPTSoVITSStandIn(voice=piper)
    async with standin:
        bot = BotProcess(
            room=room,
            env={
                **stack_env,
                "BOT_LLM_TEMPERATURE": "0",
                "BOT_LLM_MAX_TOKENS": "32",
                "BOT_EMPTY_ROOM_GRACE_SECS": "1",
                "AVATAR_VOICES_DIR": str(server.voices_dir),
                "GPT_SOVITS_URL": standin.url,
                "GPT_SOVITS_VOICE_ID": voice["id"],
            },
            log_path=tmp_path / "bot.log",
        ).start()
        try:
            async with HumanParticipant.connect(livekit.url, make_token(room, "human-1")) as human:

                def replied() -> bool:  # a sentence that is not the greeting's
                    return any(r["text"] not in DEFAULT_GREETING for r in standin.requests)

                def spoke(since: float) -> bool:
                    times = speech_times(human.audio, DEFAULT_IDENTITY, since)
                    return bool(times) and time.monotonic() - times[-1] > QUIET_S

                await wait_until(lambda: standin.completed >= 1 and spoke(0.0),
                                 BOT_READY_TIMEOUT_S + SPEECH_TIMEOUT_S, "the greeting", bot)
                await human.publish_audio(*await asyncio.to_thread(speak, QUESTION))
                asked = human.speech_ended_at
                await wait_until(lambda: replied() and spoke(asked), SPEECH_TIMEOUT_S,
                                 "the spoken reply", bot)
                loudest = max(level_dbfs(x) for at, who, x, _ in human.audio
                              if who == DEFAULT_IDENTITY and at > asked)
                timings = server_messages(human.messages, TTS_TIMING_MESSAGE_TYPE)
        finally:
            bot.stop()

    # The bot spoke the greeting and the reply with the uploaded voice, through the stand-in.
    assert loudest > -30, f"the reply has no speech energy ({loudest:.0f} dBFS)"
    assert FALLBACK_LOG not in bot.log(), "a sentence fell back to the embedded voice"
    requested = [r["text"] for r in standin.requests]
    assert {t["text"] for t in timings} <= set(requested), (timings, requested)
    for params in standin.requests:
        assert params["ref_audio_path"] == voice["ref_audio_path"]
        assert params["prompt_text"] == voice["prompt_text"]
        assert params["prompt_lang"] == "en"
    assert len(standin.references) == len(standin.requests)
    for reference in standin.references:
        heard, heard_rate = wav_samples(reference)
        assert heard_rate == rate and np.array_equal(heard, samples)
