"""Start, health-check and stop the local servers (livekit-server, Ollama) on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

from stack.errors import StackError

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
            raise StackError(f"{proto} port {port} on {LOOPBACK}, needed by {what}, is in use by another "
                             f"program: stop that program or set {setting} to a free port") from None


def http_ok(url: str, timeout: float = 2.0) -> bool:
    """True when an HTTP GET of url answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class ManagedServer:
    """A server subprocess we started: waits for readiness, stops by pid, keeps a log file."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    ready_url: str
    log_path: Path
    niceness: int = 0
    process: subprocess.Popen | None = field(default=None, init=False)

    def start(self, *, timeout: float = 60.0) -> "ManagedServer":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        logger.info(f"starting {self.name}: {' '.join(self.cmd)} (log: {self.log_path})")
        self.process = subprocess.Popen(self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True,
                                        preexec_fn=(lambda: os.nice(self.niceness)) if self.niceness else None)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log_path.read_text(errors="replace").splitlines()[-8:]
                raise StackError(f"{self.name} exited with code {self.process.returncode} at start-up; "
                                 f"last log lines ({self.log_path}):\n" + "\n".join(tail))
            if http_ok(self.ready_url):
                return self
            time.sleep(0.2)
        self.stop()
        raise StackError(f"{self.name} did not answer on {self.ready_url} within {timeout:.0f}s; "
                         f"see {self.log_path}")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def stop(self, *, timeout: float = 10.0) -> None:
        """Terminate the server's process group, then kill it if it does not exit."""
        if not self.process or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)
        except ProcessLookupError:
            pass


def livekit_config(*, port: int, tcp_port: int, udp_port: int, api_key: str, api_secret: str,
                   webhook_urls: list[str]) -> str:
    """livekit-server config for loopback: ICE candidates advertise 127.0.0.1 only."""
    config: dict = {
        "port": port,
        "bind_addresses": [LOOPBACK],
        "rtc": {"tcp_port": tcp_port, "udp_port": udp_port, "node_ip": LOOPBACK,
                "use_external_ip": False, "enable_loopback_candidate": True},
        "keys": {api_key: api_secret},
        "logging": {"level": "info"},
        "room": {"empty_timeout": 60, "departure_timeout": 10},
    }
    if webhook_urls:
        config["webhook"] = {"api_key": api_key, "urls": webhook_urls}
    return json.dumps(config)  # JSON is valid YAML


def livekit_server(binary: Path, *, port: int, tcp_port: int, udp_port: int, api_key: str,
                   api_secret: str, log_path: Path, webhook_urls: list[str] | None = None) -> ManagedServer:
    """A livekit-server bound to loopback (dev mode logging), not yet started."""
    for p, what, setting, udp in ((port, "livekit-server", "LIVEKIT_URL", False),
                                  (tcp_port, "livekit-server (RTC over TCP)", "LIVEKIT_RTC_TCP_PORT", False),
                                  (udp_port, "livekit-server (RTC over UDP)", "LIVEKIT_RTC_UDP_PORT", True)):
        require_free(p, what=what, setting=setting, udp=udp)
    config = livekit_config(port=port, tcp_port=tcp_port, udp_port=udp_port, api_key=api_key,
                            api_secret=api_secret, webhook_urls=webhook_urls or [])
    env = {**os.environ, "LIVEKIT_CONFIG": config}
    env.pop("LIVEKIT_KEYS", None)
    return ManagedServer(name="livekit-server", cmd=[str(binary), "--bind", LOOPBACK], env=env,
                         ready_url=f"http://{LOOPBACK}:{port}/", log_path=log_path)


# The LLM is throughput work; audio, video and VAD in the bots are real-time work. On a small
# machine Ollama yields the CPU to them (it still gets every idle cycle).
OLLAMA_NICENESS = 5


def ollama_server(binary: Path, *, port: int, models_dir: Path, log_path: Path) -> ManagedServer:
    """`ollama serve` on loopback with the cache's model store, at lower CPU priority; not yet started."""
    require_free(port, what="Ollama", setting="OLLAMA_URL")
    env = {**os.environ, "OLLAMA_HOST": f"{LOOPBACK}:{port}", "OLLAMA_MODELS": str(models_dir),
           "OLLAMA_KEEP_ALIVE": "-1", "OLLAMA_NOPRUNE": "1",
           # Two requests at once: a room's reply runs beside a text chat instead of behind it.
           "OLLAMA_NUM_PARALLEL": os.environ.get("OLLAMA_NUM_PARALLEL", "2")}
    return ManagedServer(name="ollama", cmd=[str(binary), "serve"], env=env,
                         ready_url=f"http://{LOOPBACK}:{port}/", log_path=log_path,
                         niceness=OLLAMA_NICENESS)
