"""Checks of what an upload brings: a clip's length, level and clipping, the language asked for
and the speaker's name; each refusal is a VoiceError that says what is wrong."""

from __future__ import annotations

import re

import numpy as np

from voices.audio import Clip
from voices.errors import VoiceError

# Languages GPT-SoVITS v2 speaks (prompt_lang / text_lang codes).
GPT_SOVITS_LANGUAGES = ("en", "zh", "ja", "ko", "yue")
AUTO_LANGUAGE = "auto"
# No sound at all below this peak; too quiet to clone below this RMS (dBFS).
SILENT_PEAK_DBFS = -50.0
MIN_RMS_DBFS = -40.0
# Clipping: samples in runs of >= CLIP_RUN at full scale, as a share of the clip.
CLIP_LEVEL = 0.999
CLIP_RUN = 3
MAX_CLIPPED_SHARE = 0.001
DEFAULT_SPEAKER = "speaker"
_SPEAKER = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def check_clip(clip: Clip, min_s: float, max_s: float) -> None:
    """Length, level and clipping of a clip, or a VoiceError that says what is wrong."""
    if clip.duration < min_s:
        raise VoiceError(
            "too_short",
            f"the clip is {clip.duration:.1f} s; at least {min_s:g} s of speech is needed",
        )
    if clip.duration > max_s:
        raise VoiceError("too_long", f"the clip is {clip.duration:.1f} s; at most {max_s:g} s")
    x = clip.samples
    peak = float(np.max(np.abs(x)))
    if peak == 0 or 20 * np.log10(peak) < SILENT_PEAK_DBFS:
        raise VoiceError("silent", "the clip is silent")
    rms_dbfs = 10 * np.log10(float(np.mean(x.astype(np.float64) ** 2)) + 1e-20)
    if rms_dbfs < MIN_RMS_DBFS:
        raise VoiceError(
            "too_quiet",
            f"the clip is too quiet ({rms_dbfs:.0f} dBFS RMS; at least "
            f"{MIN_RMS_DBFS:.0f} dBFS): record closer to the microphone",
        )
    share = clipped_share(x)
    if share > MAX_CLIPPED_SHARE:
        raise VoiceError(
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
    """The form's language (None: detect), or a VoiceError for one GPT-SoVITS does not speak."""
    if value is None or value.strip().lower() in ("", AUTO_LANGUAGE):
        return None
    language = value.strip().lower()
    if language not in GPT_SOVITS_LANGUAGES:
        raise VoiceError(
            "unsupported_language",
            f"language {value!r} is not one GPT-SoVITS speaks: {', '.join(GPT_SOVITS_LANGUAGES)}",
        )
    return language


def spoken_language(language: str) -> str:
    """A transcript's language, or a VoiceError when GPT-SoVITS does not speak it."""
    if language not in GPT_SOVITS_LANGUAGES:
        raise VoiceError(
            "unsupported_language",
            f"the clip sounds like {language!r}, which GPT-SoVITS does not speak",
        )
    return language


def speaker_name(value: str | None) -> str:
    """The form's speaker name (DEFAULT_SPEAKER when empty), or a VoiceError for a bad one."""
    speaker = (value or "").strip() or DEFAULT_SPEAKER
    if not _SPEAKER.match(speaker):
        raise VoiceError("bad_speaker", "speaker must be 1-40 letters, digits, _ or -")
    return speaker
