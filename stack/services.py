"""Start, health-check and stop the local servers (livekit-server, Ollama) on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

from avatar_core.errors import StackError
from avatar_core.processes import stop_process

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def require_free(port: int, *, what: str, setting: str, udp: bool = False) -> None:
    """Raise StackError with the fix when a port the stack needs is taken."""
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        if not udp:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            proto = "UDP" if udp else "TCP"
            raise StackError(
                f"{proto} port {port} on {LOOPBACK}, needed by {what}, is in use by another "
                f"program: stop that program or set {setting} to a free port"
            ) from None


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when an HTTP GET of url answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class ManagedServer:
    """A server subprocess we started: waits for readiness, stops by pid, keeps a log file.

    Ready when `ready_url` answers 2xx, or (for a server without a readiness URL, such as an
    agent worker) when its log gains a line containing `ready_log`.
    """

    name: str
    cmd: list[str]
    env: dict[str, str]
    ready_url: str | None
    log_path: Path
    niceness: int = 0
    ready_log: str | None = None
    process: subprocess.Popen | None = field(default=None, init=False)
    _ready_marks: int = field(default=0, init=False)

    def spawn(self) -> ManagedServer:
        """Start the process without waiting for it to be ready."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._ready_marks = self._log_marks()
        log = open(self.log_path, "ab")
        logger.info(f"starting {self.name}: {' '.join(self.cmd)} (log: {self.log_path})")
        self.process = subprocess.Popen(
            self.cmd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=(lambda: os.nice(self.niceness)) if self.niceness else None,
        )
        log.close()
        return self

    def _log_marks(self) -> int:
        if self.ready_log is None or not self.log_path.exists():
            return 0
        return self.log_path.read_text(errors="replace").count(self.ready_log)

    def ready(self) -> bool:
        if self.ready_log is not None:
            return self._log_marks() > self._ready_marks
        return self.ready_url is not None and http_ok(self.ready_url)

    def start(self, *, timeout: float = 60.0) -> ManagedServer:
        self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace").splitlines()[-8:]
                raise StackError(
                    f"{self.name} exited with code {self.process.returncode} at start-up; "
                    f"last log lines ({self.log_path}):\n" + "\n".join(tail)
                )
            if self.ready():
                return self
            time.sleep(0.2)
        self.stop()
        raise StackError(
            f"{self.name} was not ready ({self.ready_url or self.ready_log!r}) within "
            f"{timeout:.0f}s; see {self.log_path}"
        )

    def exited(self) -> int | None:
        """The exit status once the process has ended, else None."""
        return None if self.process is None else self.process.poll()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self, *, timeout: float = 10.0) -> None:
        """Terminate the server's process group, then kill it (and whatever of the group is left:
        a worker's job processes, a crashed server's children) if it does not exit."""
        if self.process:
            stop_process(self.process, timeout=timeout, group=True)


# Restart delays after a supervised server exits: doubling from the first to the last; a server
# that ran this long since its last start counts as healthy again (the delay starts over).
RESTART_BACKOFF_S = (1.0, 30.0)
HEALTHY_AFTER_S = 60.0


@dataclass
class _Watched:
    server: ManagedServer
    started_at: float
    delay_s: float = RESTART_BACKOFF_S[0]
    restart_at: float | None = None
    restarts: int = 0


class Supervisor:
    """Keeps started servers running: one that exits is started again after a backoff delay."""

    def __init__(self) -> None:
        self._watched: list[_Watched] = []

    def watch(self, server: ManagedServer) -> None:
        self._watched.append(_Watched(server=server, started_at=time.monotonic()))

    def restarts(self, name: str) -> int:
        return sum(w.restarts for w in self._watched if w.server.name == name)

    def check(self) -> None:
        """Note servers that exited, and start those whose backoff delay has passed."""
        now = time.monotonic()
        for w in self._watched:
            if w.restart_at is None:
                code = w.server.exited()
                if code is None:
                    continue
                if now - w.started_at >= HEALTHY_AFTER_S:
                    w.delay_s = RESTART_BACKOFF_S[0]
                logger.warning(
                    f"{w.server.name} exited with code {code}; starting it again in "
                    f"{w.delay_s:.0f} s (log: {w.server.log_path})"
                )
                w.server.stop()  # leftovers of its process group
                w.restart_at = now + w.delay_s
                w.delay_s = min(w.delay_s * 2, RESTART_BACKOFF_S[1])
            elif now >= w.restart_at:
                w.server.spawn()
                w.started_at, w.restart_at = now, None
                w.restarts += 1

    def stop(self) -> None:
        """Stop every watched server, the last started first."""
        for w in reversed(self._watched):
            w.server.stop()


def livekit_config(
    *,
    port: int,
    tcp_port: int,
    udp_port: int,
    api_key: str,
    api_secret: str,
    webhook_urls: list[str],
    redis_address: str | None = None,
) -> str:
    """livekit-server config for loopback: ICE candidates advertise 127.0.0.1 only. With
    `redis_address` (host:port) the node joins the LiveKit cluster that shares that Redis."""
    config: dict = {
        "port": port,
        "bind_addresses": [LOOPBACK],
        "rtc": {
            "tcp_port": tcp_port,
            "udp_port": udp_port,
            "node_ip": LOOPBACK,
            "use_external_ip": False,
            "enable_loopback_candidate": True,
        },
        "keys": {api_key: api_secret},
        "logging": {"level": "info"},
        "room": {"empty_timeout": 60, "departure_timeout": 10},
    }
    if webhook_urls:
        config["webhook"] = {"api_key": api_key, "urls": webhook_urls}
    if redis_address:
        config["redis"] = {"address": redis_address}
    return json.dumps(config)  # JSON is valid YAML


def livekit_server(
    binary: Path,
    *,
    port: int,
    tcp_port: int,
    udp_port: int,
    api_key: str,
    api_secret: str,
    log_path: Path,
    webhook_urls: list[str] | None = None,
    redis_address: str | None = None,
) -> ManagedServer:
    """A livekit-server bound to loopback (dev mode logging), not yet started; a node of a
    cluster with `redis_address`."""
    for p, what, setting, udp in (
        (port, "livekit-server", "LIVEKIT_URL", False),
        (tcp_port, "livekit-server (RTC over TCP)", "LIVEKIT_RTC_TCP_PORT", False),
        (udp_port, "livekit-server (RTC over UDP)", "LIVEKIT_RTC_UDP_PORT", True),
    ):
        require_free(p, what=what, setting=setting, udp=udp)
    config = livekit_config(
        port=port,
        tcp_port=tcp_port,
        udp_port=udp_port,
        api_key=api_key,
        api_secret=api_secret,
        webhook_urls=webhook_urls or [],
        redis_address=redis_address,
    )
    env = {**os.environ, "LIVEKIT_CONFIG": config}
    env.pop("LIVEKIT_KEYS", None)
    return ManagedServer(
        name="livekit-server",
        cmd=[str(binary), "--bind", LOOPBACK],
        env=env,
        ready_url=f"http://{LOOPBACK}:{port}/",
        log_path=log_path,
    )


# The LLM is throughput work; audio, video and VAD in the bots are real-time work. On a small
# machine Ollama yields the CPU to them (it still gets every idle cycle).
OLLAMA_NICENESS = 5


def ollama_server(binary: Path, *, port: int, models_dir: Path, log_path: Path) -> ManagedServer:
    """`ollama serve` on loopback with the cache's model store, lower CPU priority; not started."""
    require_free(port, what="Ollama", setting="OLLAMA_URL")
    env = {
        **os.environ,
        "OLLAMA_HOST": f"{LOOPBACK}:{port}",
        "OLLAMA_MODELS": str(models_dir),
        "OLLAMA_KEEP_ALIVE": "-1",
        "OLLAMA_NOPRUNE": "1",
        # Two requests at once: a room's reply runs beside a text chat instead of behind it.
        "OLLAMA_NUM_PARALLEL": os.environ.get("OLLAMA_NUM_PARALLEL", "2"),
    }
    return ManagedServer(
        name="ollama",
        cmd=[str(binary), "serve"],
        env=env,
        ready_url=f"http://{LOOPBACK}:{port}/",
        log_path=log_path,
        niceness=OLLAMA_NICENESS,
    )
