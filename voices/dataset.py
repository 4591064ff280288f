"""GPT-SoVITS fine-tuning data from about one minute of speech: the recording is sliced at pauses
into 2-10 s clips, each clip is transcribed, and GPT-SoVITS's dataset list is written
(`wav path|speaker|LANG|text`, one clip a line) beside the clips, in <datasets dir>/<id>/.
voices/training.py runs the training job on it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from avatar_core.stored import new_id
from avatar_core.whisper import WHISPER_SAMPLE_RATE
from processors.align.whisper_aligner import speech_stretches
from voices.audio import Clip, write_wav
from voices.checks import check_clip
from voices.errors import NoSpeech
from voices.training import DATASET_FILE, training_command
from voices.transcribe import Transcriber

WAVS_DIR = "wavs"
MIN_RECORDING_S, MAX_RECORDING_S = 20.0, 600.0
MIN_SLICE_S, MAX_SLICE_S = 2.0, 10.0
# Pauses at least this long are cut points; each clip keeps up to SLICE_MARGIN_S of its pause.
SLICE_PAUSE_S = 0.25
SLICE_MARGIN_S = 0.1


def slice_at_pauses(wave16: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) seconds of 2-10 s clips made of whole stretches of speech, cut in pauses.

    Stretches are joined while the clip stays within MAX_SLICE_S; a stretch longer than that is
    cut at its quietest 10 ms in the last half of the window; clips shorter than MIN_SLICE_S
    are dropped. Each clip keeps a margin of its neighbouring pauses.
    """
    stretches = speech_stretches(wave16, min_pause_s=SLICE_PAUSE_S)
    pieces: list[tuple[float, float]] = []
    for start, end in stretches:
        while end - start > MAX_SLICE_S:
            cut = _quietest(wave16, start + MAX_SLICE_S / 2, start + MAX_SLICE_S)
            pieces.append((start, cut))
            start = cut
        pieces.append((start, end))
    clips: list[list[float]] = []
    for start, end in pieces:
        if clips and end - clips[-1][0] <= MAX_SLICE_S - 2 * SLICE_MARGIN_S:
            clips[-1][1] = end
        else:
            clips.append([start, end])
    duration = len(wave16) / WHISPER_SAMPLE_RATE
    out = []
    for i, (start, end) in enumerate(clips):
        before = clips[i - 1][1] if i else 0.0
        after = clips[i + 1][0] if i + 1 < len(clips) else duration
        start = max(start - SLICE_MARGIN_S, (before + start) / 2)
        end = min(end + SLICE_MARGIN_S, (end + after) / 2)
        if end - start >= MIN_SLICE_S:
            out.append((start, end))
    return out


def _quietest(wave16: np.ndarray, start: float, end: float) -> float:
    hop = WHISPER_SAMPLE_RATE // 100
    a, b = int(start * WHISPER_SAMPLE_RATE), int(end * WHISPER_SAMPLE_RATE)
    frames = wave16[a:b][: (b - a) // hop * hop].reshape(-1, hop)
    return start + int(np.argmin(np.mean(frames**2, axis=1))) * hop / WHISPER_SAMPLE_RATE


async def prepare_dataset(
    recording: Clip,
    *,
    speaker: str,
    language: str | None,
    datasets_dir: Path,
    transcriber: Transcriber,
) -> dict:
    """Clips + transcripts + GPT-SoVITS list file in <datasets_dir>/<id>/; the dataset record
    (also in its dataset.json). A VoiceError when the recording is not usable.

    speaker: checked (voices.checks.speaker_name); language: checked, None to detect.
    """
    check_clip(recording, MIN_RECORDING_S, MAX_RECORDING_S)
    spans = slice_at_pauses(recording.at(WHISPER_SAMPLE_RATE))
    if not spans:
        raise NoSpeech("no_speech", "no stretch of speech of 2-10 s was found")
    dataset_id = new_id()
    folder = datasets_dir / dataset_id
    (folder / WAVS_DIR).mkdir(parents=True)
    clips: list[dict[str, Any]] = []
    for n, (start, end) in enumerate(spans):
        piece = recording.between(start, end)
        text, language = await transcriber.transcribe(piece, language)
        if not text:
            logger.info(f"dataset {dataset_id}: no words in {start:.2f}-{end:.2f} s, skipped")
            continue
        path = (folder / WAVS_DIR / f"{speaker}_{n:03d}.wav").resolve()
        write_wav(path, piece.samples, piece.sample_rate)
        clips.append(
            {
                "path": str(path),
                "start_s": round(start, 3),
                "end_s": round(end, 3),
                "duration_s": round(end - start, 3),
                "text": text,
            }
        )
    if not clips:
        raise NoSpeech("no_speech", "no speech was recognized in the recording")
    list_path = folder / f"{speaker}.list"
    list_path.write_text(
        # clips is non-empty, so a transcript set the language
        "".join(f"{c['path']}|{speaker}|{language.upper()}|{c['text']}\n" for c in clips),  # type: ignore[union-attr]
        encoding="utf-8",
    )
    dataset = {
        "id": dataset_id,
        "speaker": speaker,
        "language": language,
        "dataset_dir": str(folder.resolve()),
        "list_path": str(list_path.resolve()),
        "wav_dir": str((folder / WAVS_DIR).resolve()),
        "clips": clips,
        "speech_s": round(sum(c["duration_s"] for c in clips), 2),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "next_command": training_command(folder),
    }
    (folder / DATASET_FILE).write_text(json.dumps(dataset, indent=2, ensure_ascii=False))
    logger.info(f"dataset {dataset_id}: {len(clips)} clips, {dataset['speech_s']} s of speech")
    return dataset
