"""Why an upload or recording cannot make a voice or a dataset: a stable code and the reason.

The token server answers them as JSON errors: 400, or 415 for an UnsupportedFormat, 422 for
NoSpeech and 503 for TranscriberFailed (token_server/errors.py).
"""


class VoiceError(Exception):
    """The audio or a field of the upload is not usable; `error` is a stable code, `detail` why."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


class UnsupportedFormat(VoiceError):
    """The file is in a container the voices do not accept (only WAV, MP3, OGG)."""


class NoSpeech(VoiceError):
    """The audio decoded and passed its checks, but no speech was recognized in it."""


class TranscriberFailed(VoiceError):
    """The upload was fine, but the transcription worker failed; sending it again may work."""
