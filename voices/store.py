"""The voice store on disk: <voices dir>/<id>/ref.wav + voice.json, one folder a voice.

A bot speaks with a stored voice through GPT_SOVITS_VOICE_ID=<id> (processors/tts/gpt_sovits.py).
The GPT-SoVITS server reads ref.wav by path, so the voices folder must be visible to it (same
machine or a shared volume).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from loguru import logger

from avatar_core.stored import new_id, stored_folder
from processors.tts.gpt_sovits import VOICE_FILE
from voices.audio import Clip, write_wav

REF_FILE = "ref.wav"


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceStore:
    """Stored voices in one folder (AVATAR_VOICES_DIR, default <AVATAR_CACHE>/voices)."""

    folder: Path

    def add(self, clip: Clip, *, name: str, prompt_text: str, language: str | None) -> dict:
        """Store a checked reference clip and what it says (in language; None: not known);
        the voice's metadata."""
        voice_id = new_id()
        folder = self.folder / voice_id
        folder.mkdir(parents=True)
        write_wav(folder / REF_FILE, clip.samples, clip.sample_rate)
        meta = {
            "id": voice_id,
            "name": name.strip() or Path(clip.filename).stem or voice_id,
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
        return meta

    def all(self) -> list[dict]:
        """Every readable voice's metadata, oldest first (an unreadable one is logged)."""
        voices = []
        if self.folder.is_dir():
            for meta_path in sorted(self.folder.glob(f"*/{VOICE_FILE}")):
                try:
                    voices.append(json.loads(meta_path.read_text()))
                except (OSError, ValueError) as e:
                    logger.warning(f"skipping unreadable voice {meta_path}: {e}")
        voices.sort(key=lambda v: v.get("created", ""))
        return voices

    def get(self, voice_id: str) -> dict | None:
        """One voice's metadata, or None when there is no such voice."""
        folder = stored_folder(self.folder, voice_id, marker=VOICE_FILE)
        return None if folder is None else json.loads((folder / VOICE_FILE).read_text())

    def delete(self, voice_id: str) -> bool:
        """Remove a voice and its clip; False when there is no such voice."""
        folder = stored_folder(self.folder, voice_id, marker=VOICE_FILE)
        if folder is None:
            return False
        shutil.rmtree(folder)
        logger.info(f"voice {folder.name} deleted")
        return True
