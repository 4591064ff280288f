"""The local servers a whole-stack benchmark talks to: livekit-server and Ollama on loopback.

One place for what every voice benchmark starts before its bots: the real livekit-server and
Ollama from the cache on free ports (the offline model pulled into Ollama), a log folder, the
environment a bot or worker process needs to reach them, and join tokens for the measuring
participants. Stopped by pid when the `with` block ends, however it ends.
"""

from __future__ import annotations

import contextlib
import signal
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from avatar_core.tokens import STANDARD_KIND, join_token
from stack import binaries, models, services
from stack.settings import DEV_API_KEY, DEV_API_SECRET, StackSettings

BENCH_IDENTITY = "bench-person"
# A benchmark run is over within hours.
BENCH_TOKEN_TTL = timedelta(hours=6)


@dataclass(frozen=True)
class BenchServers:
    """Running livekit-server and Ollama, and where their logs go."""

    settings: StackSettings
    logs: Path
    url: str
    ollama_url: str
    livekit: services.ManagedServer
    ollama: services.ManagedServer

    def bot_env(self, **extra: str) -> dict[str, str]:
        """Environment for `python -m bot` (or its worker) against these servers, plus `extra`."""
        return {
            "LIVEKIT_URL": self.url,
            "LIVEKIT_API_KEY": DEV_API_KEY,
            "LIVEKIT_API_SECRET": DEV_API_SECRET,
            "OLLAMA_URL": self.ollama_url,
            "OLLAMA_MODEL": self.settings.ollama_model,
            "WHISPER_MODEL": models.whisper_model(self.settings.whisper_model, self.settings.cache),
            **extra,
        }

    def token(self, room: str, identity: str = BENCH_IDENTITY, *, name: str | None = None) -> str:
        """A join token for `room` on this livekit-server, shown as `name` (else the identity)."""
        return join_token(api_key=DEV_API_KEY, api_secret=DEV_API_SECRET, room=room,
                          identity=identity, name=name or identity, kind=STANDARD_KIND,
                          ttl=BENCH_TOKEN_TTL)


def _exit_on_sigterm(signum: int, _frame) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM (a timeout, `kill`) ends the benchmark the way Ctrl-C does: the `with` blocks
    unwind and stop the servers they started. By default Python dies at once on SIGTERM and its
    livekit-server, Ollama and loaded model runners live on, taking CPU from the next run."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def bench_servers(prefix: str) -> Iterator[BenchServers]:
    """Start livekit-server and Ollama (logs in a new temp folder named `prefix`-...); they are
    stopped when the block ends, however it ends, SIGTERM included."""
    settings = StackSettings.from_env()
    with _livekit(settings, prefix) as (url, logs, livekit), \
            bench_ollama(settings, logs) as (ollama_url, ollama):
        yield BenchServers(settings=settings, logs=logs, url=url, ollama_url=ollama_url,
                           livekit=livekit, ollama=ollama)


@contextlib.contextmanager
def bench_livekit(prefix: str) -> Iterator[tuple[str, Path]]:
    """Only livekit-server (for a benchmark without a bot's models): its url and the log folder
    (a new temp folder named `prefix`-...); stopped when the block ends, however it ends."""
    with _livekit(StackSettings.from_env(), prefix) as (url, logs, _):
        yield url, logs


@contextlib.contextmanager
def _livekit(settings: StackSettings,
             prefix: str) -> Iterator[tuple[str, Path, services.ManagedServer]]:
    logs = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    lk_port, tcp, udp = services.free_port(), services.free_port(), services.free_udp_port()
    livekit = services.livekit_server(
        binaries.livekit_server(settings.cache),
        port=lk_port,
        tcp_port=tcp,
        udp_port=udp,
        api_key=DEV_API_KEY,
        api_secret=DEV_API_SECRET,
        log_path=logs / "livekit.log",
    )
    with _sigterm_unwinds():
        try:
            livekit.start()
            yield f"ws://127.0.0.1:{lk_port}", logs, livekit
        finally:
            livekit.stop()


@contextlib.contextmanager
def bench_ollama(settings: StackSettings,
                 logs: Path) -> Iterator[tuple[str, services.ManagedServer]]:
    """The stack's Ollama on a free loopback port with the configured model loaded: its url and
    server (log in `logs`), stopped when the block ends, however it ends, SIGTERM included."""
    binary = binaries.ollama(settings.cache)
    port = services.free_port()
    server = services.ollama_server(binary, port=port, models_dir=settings.cache / "ollama",
                                    log_path=logs / "ollama.log")
    url = f"http://127.0.0.1:{port}"
    with _sigterm_unwinds():
        try:
            server.start()
            models.ensure_ollama_model(ollama_bin=binary, url=url, name=settings.ollama_model,
                                       cache=settings.cache)
            yield url, server
        finally:
            server.stop()
