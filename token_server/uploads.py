"""The one multipart reader of the token server: a form with one file and a few text fields.

Every malformed part is a 4xx with the reason (never a 500), the whole form is bounded (file,
text fields and parts together), and the temporary file is always deleted when the request
ends: after success, refusal, a malformed part or a client that goes away mid-upload.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from loguru import logger

from token_server.errors import ApiError

MULTIPART_PREFIX = "multipart/"
UPLOAD_PREFIX = ".upload-"
CHUNK_BYTES = 1 << 16
MAX_TEXT_FIELD_BYTES = 1000
MAX_PARTS = 16
# What aiohttp's multipart reader raises for a bad boundary, headers, encodings or a truncated
# body: a malformed form, answered 400.
MALFORMED_MULTIPART = (
    ValueError,
    LookupError,
    HttpProcessingError,
    AssertionError,
    asyncio.IncompleteReadError,
)
# Bytes of a form beyond its file: text fields, part headers and boundaries.
FORM_OVERHEAD_BYTES = MAX_PARTS * (MAX_TEXT_FIELD_BYTES + 1024)


class ClientGone(ApiError):
    """The client closed the connection mid-upload (nobody reads the answer)."""

    def __init__(self) -> None:
        super().__init__(
            400, "upload_aborted", "the client closed the connection during the upload"
        )


@dataclass(frozen=True, slots=True)
class UploadedForm:
    """The text fields, the uploaded file (a temporary path) and the name the client gave it."""

    fields: dict[str, str]
    file: Path
    filename: str


@asynccontextmanager
async def uploaded_form(
    request: web.Request,
    *,
    file_field: str,
    text_fields: frozenset[str],
    max_file_bytes: int,
    directory: Path,
) -> AsyncIterator[UploadedForm]:
    """Read the form into `directory` (4xx for anything malformed, 413 past the limits) and
    yield it; the temporary file is deleted when the block ends, whatever happens."""
    if not request.content_type.startswith(MULTIPART_PREFIX):
        raise ApiError(
            400, "expected_multipart", f"send multipart/form-data with a '{file_field}' file field"
        )
    holder: list[Path] = []
    try:
        fields, filename = await _read_form(
            request, file_field, text_fields, max_file_bytes, directory, holder
        )
        if not holder:
            raise ApiError(400, "missing_audio", f"no '{file_field}' file in the form")
        yield UploadedForm(fields=fields, file=holder[0], filename=filename)
    finally:
        for path in holder:
            path.unlink(missing_ok=True)


async def _read_form(
    request: web.Request,
    file_field: str,
    text_fields: frozenset[str],
    max_file_bytes: int,
    directory: Path,
    holder: list[Path],
) -> tuple[dict[str, str], str]:
    fields: dict[str, str] = {}
    filename = ""
    budget = max_file_bytes + FORM_OVERHEAD_BYTES
    parts = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            parts += 1
            if parts > MAX_PARTS:
                raise ApiError(400, "too_many_parts", f"the form has more than {MAX_PARTS} parts")
            if not isinstance(part, BodyPartReader):
                raise ApiError(400, "bad_multipart", "nested multipart forms are not accepted")
            if part.name == file_field:
                if holder:
                    raise ApiError(
                        400, "duplicate_field", f"the form has more than one '{file_field}' file"
                    )
                holder.append(_temporary_file(directory))
                filename = part.filename or ""
                size = await _stream_to(part, holder[0], max_file_bytes)
                budget -= size
            elif part.name in text_fields:
                if part.name in fields:
                    raise ApiError(
                        400, "duplicate_field", f"the form has more than one '{part.name}' field"
                    )
                value = await part.read_chunk(MAX_TEXT_FIELD_BYTES + 1)
                if len(value) > MAX_TEXT_FIELD_BYTES or await part.read_chunk(1):
                    raise ApiError(
                        400,
                        "field_too_long",
                        f"field {part.name!r} is over {MAX_TEXT_FIELD_BYTES} bytes",
                    )
                try:
                    fields[part.name] = value.decode("utf-8")
                except UnicodeDecodeError:
                    raise ApiError(
                        400, "bad_field", f"field {part.name!r} is not UTF-8 text"
                    ) from None
                budget -= len(value)
            else:
                accepted = ", ".join(sorted({file_field, *text_fields}))
                raise ApiError(
                    400,
                    "unknown_field",
                    f"unexpected form field {part.name!r}; accepted: {accepted}",
                )
            if budget < 0:
                raise ApiError(413, "too_large", "the form is larger than the upload limit")
    except ApiError:
        raise
    except ConnectionError:
        raise ClientGone() from None
    except MALFORMED_MULTIPART as exc:
        detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise ApiError(400, "bad_multipart", f"could not read the form: {detail}") from None
    return fields, filename


def _temporary_file(directory: Path) -> Path:
    """A new temporary file for an upload, or a 507 that says the storage is not usable."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=directory, prefix=UPLOAD_PREFIX)
    except OSError as exc:
        logger.warning("uploads cannot be stored in {}: {}", directory, exc.strerror or exc)
        raise ApiError(
            507,
            "storage_unavailable",
            "the server cannot store uploads: its storage is not writable or is full",
        ) from None
    os.close(handle)
    return Path(name)


async def _stream_to(part: BodyPartReader, path: Path, max_bytes: int) -> int:
    """Copy a part to `path` chunk by chunk; 413 past max_bytes, 507 when the disk refuses."""
    size = 0
    try:
        with open(path, "wb") as out:  # noqa: ASYNC230 (local file, small writes)
            while chunk := await part.read_chunk(CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise ApiError(
                        413, "too_large", f"the upload is over {max_bytes / (1 << 20):g} MB"
                    )
                out.write(chunk)
    except OSError as exc:
        if isinstance(exc, ConnectionError):
            raise
        logger.warning("upload could not be written: {}", exc.strerror or exc)
        raise ApiError(
            507,
            "storage_unavailable",
            "the server could not store the upload: its storage is not writable or is full",
        ) from None
    return size
