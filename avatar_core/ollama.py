"""How Ollama names an installed model, for the health check and setup alike."""

from __future__ import annotations

from typing import Any

DEFAULT_TAG = ":latest"


def lists_model(tags: Any, *, model: str) -> bool:
    """Whether Ollama's /api/tags answer `tags` lists `model` (a bare name means its ':latest'
    tag); an answer of another shape lists nothing."""
    if not isinstance(tags, dict):
        return False
    wanted = model if ":" in model else model + DEFAULT_TAG
    return any(
        wanted in (m.get("name"), m.get("model"))
        for m in tags.get("models", [])
        if isinstance(m, dict)
    )
