"""Barge-in starts with the VAD: how long after a person's speech onset does Silero report
speech, with which start time and minimum volume, and does noise alone trigger it?

Feeds 1 s of silence and then spoken sentences (embedded, Piper, espeak-ng voices; clean and
with noise at 10 dB SNR) to Pipecat's SileroVADAnalyzer in the frames the bot reads from LiveKit
(bot.pipeline.AUDIO_IN_FRAME_MS), and reports onset → SPEAKING (the end of the frame that
reported it) in audio time (independent of machine load), plus whether
5 s of the noise alone is reported as speech. Writes bench/results/vad_onset.json.

    uv run python bench/vad_onset_bench.py
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipecat.audio.vad.silero import SileroVADAnalyzer  # noqa: E402
from pipecat.audio.vad.vad_analyzer import VADParams, VADState  # noqa: E402

from bot.pipeline import AUDIO_IN_FRAME_MS, AUDIO_IN_SAMPLE_RATE  # noqa: E402
from tests.support.human import resample  # noqa: E402
from tests.support.voices import speak, voiced, with_noise  # noqa: E402

RESULTS = ROOT / "bench" / "results"
RATE = AUDIO_IN_SAMPLE_RATE
FRAME = RATE * AUDIO_IN_FRAME_MS // 1000
TEXTS = ("Wait, stop please. What is the capital of Japan?", "Stop please.",
         "Hold on, I have a question.", "Sorry, one more thing.")
VOICES = ("embedded", "piper", "espeak-m")
# (start_secs, min_volume): Pipecat's defaults first, the bot's choice last.
CANDIDATES = ((0.2, 0.6), (0.1, 0.6), (0.2, 0.3), (0.1, 0.3), (0.05, 0.3))


async def first_speaking(pcm: np.ndarray, params: VADParams, lead: int = RATE) -> float | None:
    """Seconds from the end of `lead` silence samples to the VAD's SPEAKING state."""
    vad = SileroVADAnalyzer(sample_rate=RATE, params=params)
    vad.set_sample_rate(RATE)
    audio = np.concatenate([np.zeros(lead, np.int16), pcm])
    for i in range(0, len(audio), FRAME):
        if await vad.analyze_audio(audio[i:i + FRAME].tobytes()) == VADState.SPEAKING:
            return (i + FRAME - lead) / RATE
    return None


async def main() -> None:
    clips = []
    for voice in VOICES:
        for text in TEXTS:
            samples, rate = speak(text, voice)
            pcm = resample(samples, rate, RATE).astype(np.int16)
            clips.append((voice, voiced(pcm, RATE)))
            clips.append((voice + "+noise", voiced(with_noise(pcm, snr_db=10.0), RATE)))
    # The noise of the noisy clips alone (10 dB under that speech), 5 s of it.
    speech = clips[0][1].astype(np.int32)
    noise = (with_noise(clips[0][1], snr_db=10.0).astype(np.int32) - speech).astype(np.int16)
    noise_only = np.resize(noise, 5 * RATE)
    rows = []
    for start, min_volume in CANDIDATES:
        params = VADParams(start_secs=start, min_volume=min_volume)
        onsets = [await first_speaking(pcm, params) for _, pcm in clips]
        heard = [x for x in onsets if x is not None]
        false_start = await first_speaking(noise_only, params, lead=0) is not None
        rows.append({"start_secs": start, "min_volume": min_volume,
                     "onset_to_speaking_ms_p50": round(float(np.median(heard)) * 1000),
                     "onset_to_speaking_ms_max": round(max(heard) * 1000),
                     "missed": len(onsets) - len(heard), "noise_alone_triggers": false_start})
        print(rows[-1], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "vad_onset.json").write_text(json.dumps({"clips": len(clips), "rows": rows},
                                                       indent=2))
    print(f"wrote {RESULTS / 'vad_onset.json'}")


if __name__ == "__main__":
    asyncio.run(main())
