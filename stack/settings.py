"""The stack's settings, owned by the runtime (`avatar_core.settings`); named here for the
installer's callers (tests, benchmarks) that configure the local servers."""

from avatar_core.settings import (
    DEFAULT_CACHE,
    DEFAULT_OLLAMA_MODEL,
    DEV_API_KEY,
    DEV_API_SECRET,
    StackSettings,
    cache_dir,
)

__all__ = [
    "DEFAULT_CACHE",
    "DEFAULT_OLLAMA_MODEL",
    "DEV_API_KEY",
    "DEV_API_SECRET",
    "StackSettings",
    "cache_dir",
]
