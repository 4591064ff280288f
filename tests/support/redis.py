"""A real Redis (Debian's `redis-server`) on a free loopback port, for the LiveKit cluster test.

Started without persistence, stopped by its pid (stack.services.ManagedServer). When the binary
is missing, `apt-get install -y redis-server` is tried once (`python -m stack setup --browser`
installs it with the other test packages).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from stack import services

BINARY = "redis-server"
# What redis-server logs once it takes connections (its readiness: it has no HTTP endpoint).
READY_LOG = "Ready to accept connections"
START_TIMEOUT_S = 30.0


def redis_binary() -> str | None:
    """Debian's redis-server, installing the package when absent (root and apt-get only)."""
    if not shutil.which(BINARY) and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", BINARY], capture_output=True,
                       timeout=600)
    return shutil.which(BINARY)


def redis_server(binary: str, *, log_path: Path) -> tuple[services.ManagedServer, str]:
    """A started redis-server on loopback, and its address (host:port)."""
    port = services.free_port()
    server = services.ManagedServer(
        name="redis-server",
        cmd=[binary, "--bind", services.LOOPBACK, "--port", str(port), "--save", "",
             "--appendonly", "no", "--protected-mode", "yes"],
        env={},
        ready_url=None,
        ready_log=READY_LOG,
        log_path=log_path,
    ).start(timeout=START_TIMEOUT_S)
    return server, f"{services.LOOPBACK}:{port}"
