"""JSON error responses ({error, detail}) and the middleware that turns every failure into one."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from loguru import logger

from token_server.validation import InvalidInput
from voices.errors import NoSpeech, TranscriberFailed, UnsupportedFormat, VoiceError

# The status of the voices package's refusals (voices/errors.py); any other VoiceError is a 400.
VOICE_ERROR_STATUS: dict[type[VoiceError], int] = {
    UnsupportedFormat: 415, NoSpeech: 422, TranscriberFailed: 503,
}


class ApiError(Exception):
    """An HTTP error with a stable code and a human-readable reason."""

    def __init__(
        self, status: int, error: str, detail: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}


def error_response(
    status: int, error: str, detail: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": error, "detail": detail}, status=status, headers=headers)


def _http_error_code(exc: web.HTTPException) -> str:
    return exc.reason.lower().replace(" ", "_") if exc.reason else "http_error"


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying what is wrong with it."""
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8"))  # json.loads(bytes) would also take UTF-16/32
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "the body is not UTF-8 text") from None
    except ValueError as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the body nests too deeply") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    return body


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    """ApiError, InvalidInput, VoiceError and aiohttp's HTTP errors become JSON; anything else a
    logged 500."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.error, exc.detail, headers=exc.headers)
    except InvalidInput as exc:
        return error_response(400, exc.error, exc.detail)
    except VoiceError as exc:
        return error_response(VOICE_ERROR_STATUS.get(type(exc), 400), exc.error, exc.detail)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        return error_response(
            exc.status, _http_error_code(exc), detail, headers=_passthrough_headers(exc)
        )
    except ConnectionError:  # the client went away: nobody reads an answer, nothing failed here
        logger.bind(method=request.method, path=request.path).info("client closed the connection")
        raise
    except Exception:
        logger.bind(method=request.method, path=request.path).exception("unhandled error")
        return error_response(
            500, "internal_error", "the server failed on this request; see its log"
        )


def _passthrough_headers(exc: web.HTTPException) -> dict[str, str]:
    return {
        k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After", "WWW-Authenticate")
    }
