"""Items stored on disk by id, one folder each (voices, training datasets): the id's shape and
the lookup that never leaves the store's folder. Shared by the voices API that writes them and
the GPT-SoVITS service that reads a stored voice by GPT_SOVITS_VOICE_ID."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

STORED_ID = re.compile(r"^[0-9a-f]{12}$")


def new_id() -> str:
    """A fresh id for a stored item (voice, dataset): 12 hex digits."""
    return uuid.uuid4().hex[:12]


def stored_folder(root: Path, item_id: str, *, marker: str) -> Path | None:
    """The folder of a stored item (voice, dataset) by id, or None when there is none (the id is
    checked first, so no id reaches outside root)."""
    folder = root / item_id
    if not STORED_ID.match(item_id) or not (folder / marker).is_file():
        return None
    return folder
