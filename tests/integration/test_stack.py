"""Issue 2 acceptance on the real servers: LiveKit media between participants, Ollama's
OpenAI-compatible streaming chat on the offline model, faster-whisper on the offline model."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import numpy as np

from tests.support.human import HumanParticipant, resample
from tests.support.probe import level_dbfs
from tests.support.speech import speak

QUESTION = "What is the capital of France?"


async def test_two_participants_hear_each_other(livekit, make_token):
    """Each of two participants receives the other's microphone track with speech energy."""
    room = "stack-media"
    async with HumanParticipant.connect(livekit.url, make_token(room, "alice")) as alice, \
            HumanParticipant.connect(livekit.url, make_token(room, "bob")) as bob:
        for human in (alice, bob):
            await human.wait_for(lambda h=human: len(h.room.remote_participants) == 1, 10,
                                 what="the other participant")
        speech, sr = speak("Hello, can you hear me?")
        await asyncio.gather(alice.publish_audio(speech, sr), bob.publish_audio(speech, sr))
        await asyncio.sleep(1.0)
        for listener, speaker in ((alice, "bob"), (bob, "alice")):
            heard = [a for _, who, a, _ in listener.audio if who == speaker]
            assert heard, f"{listener.identity} received no audio from {speaker}"
            level = level_dbfs(np.concatenate(heard))
            loudest = max(level_dbfs(a) for a in heard)
            assert loudest > -30, (
                f"{listener.identity} heard {speaker} only at {loudest:.1f} dBFS peak"
            )
            assert level > -60, f"{listener.identity} heard {speaker} at {level:.1f} dBFS overall"


def test_ollama_streams_chat_completion(ollama):
    """The offline model answers a streamed chat completion through /v1/chat/completions."""
    body = {
        "model": ollama.model,
        "stream": True,
        "max_tokens": 40,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hello in one short sentence."},
        ],
    }
    req = urllib.request.Request(
        f"{ollama.url}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    chunks: list[str] = []
    with urllib.request.urlopen(req, timeout=120) as resp:
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
            if delta:
                chunks.append(delta)
    text = "".join(chunks)
    assert len(chunks) > 1, f"expected a streamed answer in several chunks, got {chunks!r}"
    assert text.strip(), "the model answered nothing"
    assert "<|im_" not in text, f"chat template tokens leaked into the answer: {text!r}"


def test_whisper_transcribes_question(whisper_model):
    """faster-whisper on the offline tiny.en model gets the words of a spoken question."""
    from faster_whisper import WhisperModel

    audio, sr = speak(QUESTION)
    audio16k = resample(audio, sr, 16000).astype(np.float32) / 32768.0
    model = WhisperModel(whisper_model, device="cpu", compute_type="int8", cpu_threads=2)
    segments, _ = model.transcribe(audio16k, language="en", beam_size=1)
    text = " ".join(s.text for s in segments).lower()
    for word in ("capital", "france"):
        assert word in text, f"{word!r} missing from transcript {text!r}"
