"""File digests shared by the caches (landmarks, SadTalker coefficients) and setup's download
checks, so every layer hashes a file the same way."""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK_BYTES = 1 << 20


def file_sha256(path: Path) -> str:
    """The hex sha256 of the file at `path`, read in 1 MiB blocks (GGUFs are gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()
