"""The real token server as users run it: `python -m token_server` in its own process on a free
loopback port, configured only through the environment (defaults unless a test overrides one),
its JSON log captured so tests can assert that no ERROR line was written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from avatar_core.processes import stop_process
from stack.services import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 15.0
# Settings a test environment may carry that would change the defaults under test.
_CLEARED_PREFIXES = ("AVATAR_", "TOKEN_SERVER_", "BOT_", "GPT_SOVITS_", "LIVEKIT_PUBLIC_URL")
UPLOAD_PREFIX = ".upload-"


@dataclass
class TokenServerProcess:
    """A started token server: its URL, pid, log file and storage folders."""

    url: str
    port: int
    process: subprocess.Popen
    log_path: Path
    voices_dir: Path
    datasets_dir: Path

    def rss_mb(self) -> float:
        """Resident memory of the server process (MB)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def log_records(self) -> list[dict]:
        """Every log line: loguru's JSON records, other text as {"text": line}."""
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                records.append(json.loads(line)["record"])
            except (ValueError, KeyError, TypeError):
                records.append({"text": line})
        return records

    def error_lines(self) -> list[str]:
        """ERROR/CRITICAL records and any traceback or aiohttp 'Error handling request' text."""
        bad = []
        for record in self.log_records():
            if "text" in record:
                if any(
                    marker in record["text"]
                    for marker in ("Traceback", "Error handling request", "ERROR")
                ):
                    bad.append(record["text"])
            elif record["level"]["name"] in ("ERROR", "CRITICAL"):
                bad.append(f"{record['level']['name']}: {record['message']}")
        return bad

    def temp_files(self) -> list[Path]:
        """Upload temporary files left in the storage folders."""
        return [
            p
            for d in (self.voices_dir, self.datasets_dir)
            if d.exists()
            for p in d.rglob(f"{UPLOAD_PREFIX}*")
        ]

    def stop(self) -> int | None:
        """SIGTERM, SIGKILL if the server does not end in time; its exit status."""
        return stop_process(self.process, timeout=STOP_TIMEOUT_S)


def start_token_server(tmp: Path, **env: str) -> TokenServerProcess:
    """Start `python -m token_server` with the default settings, LiveKit and Ollama at closed
    loopback ports unless `env` names real ones; storage under `tmp`. Waits until it answers."""
    port = free_port()
    voices, datasets = tmp / "voices", tmp / "datasets"
    base = {k: v for k, v in os.environ.items() if not k.startswith(_CLEARED_PREFIXES)}
    base |= {
        "TOKEN_SERVER_PORT": str(port),
        "LIVEKIT_URL": f"ws://127.0.0.1:{free_port()}",
        "OLLAMA_URL": f"http://127.0.0.1:{free_port()}",
        "AVATAR_VOICES_DIR": str(voices),
        "AVATAR_DATASETS_DIR": str(datasets),
        "AVATAR_CLIENT_DIST": str(tmp / "dist"),
    }
    base |= env
    log_path = tmp / f"token_server-{port}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "token_server"],
            cwd=ROOT,
            env=base,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = TokenServerProcess(
        url=f"http://127.0.0.1:{port}",
        port=port,
        process=process,
        log_path=log_path,
        voices_dir=voices,
        datasets_dir=datasets,
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"token server exited {process.returncode}: {log_path.read_text()[-2000:]}"
            )
        try:
            httpx.get(f"{server.url}/api/openapi.json", timeout=1.0)
            return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"token server did not answer within {READY_TIMEOUT_S} s")
