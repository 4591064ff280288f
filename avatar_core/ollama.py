"""Ollama's HTTP API as setup and the bot call it, and how it names an installed model (for the
health check and setup alike)."""

from __future__ import annotations

import json
import urllib.request
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


def ollama_api(url: str, path: str, body: dict | None = None, timeout: float = 30) -> dict:
    """POST `body` (GET without one) to the Ollama at `url` and return its JSON answer; raises
    OSError (urllib's errors) when Ollama cannot be reached or answers with an error."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url.rstrip("/") + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"{}")
