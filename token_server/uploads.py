"""The one multipart reader of the token server: a form with a few files and text fields.

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
# Bytes of a part beyond its content: its headers and boundary.
PART_OVERHEAD_BYTES = 1024


class ClientGone(ApiError):
    """The client closed the connection mid-upload (nobody reads the answer)."""

    def __init__(self) -> None:
        super().__init__(
            400, "upload_aborted", "the client closed the connection during the upload"
        )


@dataclass(frozen=True, slots=True)
class UploadedForm:
    """The text fields, and the uploaded files (temporary paths) and the names the client gave
    them, by field."""

    fields: dict[str, str]
    files: dict[str, Path]
    filenames: dict[str, str]


@dataclass(frozen=True, slots=True)
class FormShape:
    """What a form may hold: its file and text fields, the files it must have, and limits."""

    file_fields: frozenset[str]
    text_fields: frozenset[str]
    max_file_bytes: int
    required_files: frozenset[str] = frozenset()
    max_text_bytes: int = MAX_TEXT_FIELD_BYTES

    @property
    def max_form_bytes(self) -> int:
        """The whole form: every file, and text fields, part headers and boundaries."""
        return len(self.file_fields) * self.max_file_bytes + MAX_PARTS * (
            self.max_text_bytes + PART_OVERHEAD_BYTES
        )


@asynccontextmanager
async def uploaded_form(
    request: web.Request, shape: FormShape, *, directory: Path
) -> AsyncIterator[UploadedForm]:
    """Read the form into `directory` (4xx for anything malformed, 413 past the limits) and
    yield it; its temporary files are deleted when the block ends, whatever happens."""
    if not request.content_type.startswith(MULTIPART_PREFIX):
        named = ", ".join(sorted(shape.file_fields))
        raise ApiError(
            400, "expected_multipart", f"send multipart/form-data (file fields: {named})"
        )
    files: dict[str, Path] = {}
    try:
        fields, filenames = await _read_form(request, shape, directory, files)
        missing = sorted(shape.required_files - files.keys())
        if missing:
            raise ApiError(400, f"missing_{missing[0]}", f"no '{missing[0]}' file in the form")
        yield UploadedForm(fields=fields, files=files, filenames=filenames)
    finally:
        for path in files.values():
            path.unlink(missing_ok=True)


async def _read_form(
    request: web.Request, shape: FormShape, directory: Path, files: dict[str, Path]
) -> tuple[dict[str, str], dict[str, str]]:
    """The text fields and file names; each file is streamed into a temporary file in `files`
    as soon as its part starts (so the caller deletes it whatever happens next)."""
    fields: dict[str, str] = {}
    filenames: dict[str, str] = {}
    budget = shape.max_form_bytes
    parts = 0
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            parts += 1
            if parts > MAX_PARTS:
                raise ApiError(400, "too_many_parts", f"the form has more than {MAX_PARTS} parts")
            if not isinstance(part, BodyPartReader):
                raise ApiError(400, "bad_multipart", "nested multipart forms are not accepted")
            if part.name in files or part.name in fields:
                raise ApiError(
                    400, "duplicate_field", f"the form has more than one '{part.name}' field"
                )
            if part.name in shape.file_fields:
                files[part.name] = _temporary_file(directory)
                filenames[part.name] = part.filename or ""
                budget -= await _stream_to(part, files[part.name], shape.max_file_bytes)
            elif part.name in shape.text_fields:
                value = await part.read_chunk(shape.max_text_bytes + 1)
                if len(value) > shape.max_text_bytes or await part.read_chunk(1):
                    raise ApiError(
                        400,
                        "field_too_long",
                        f"field {part.name!r} is over {shape.max_text_bytes} bytes",
                    )
                try:
                    fields[part.name] = value.decode("utf-8")
                except UnicodeDecodeError:
                    raise ApiError(
                        400, "bad_field", f"field {part.name!r} is not UTF-8 text"
                    ) from None
                budget -= len(value)
            else:
                accepted = ", ".join(sorted(shape.file_fields | shape.text_fields))
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
    return fields, filenames


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
