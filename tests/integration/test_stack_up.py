"""The main job, `python -m stack up` (what `./avatar up` runs): it brings up livekit-server,
Ollama and the token server on loopback, serves the page, and stops everything on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from stack import services

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_stack_up_serves_the_page_and_stops_cleanly(tmp_path):
    port, lk_port, ollama_port = services.free_port(), services.free_port(), services.free_port()
    env = {**os.environ, "TOKEN_SERVER_PORT": str(port), "LIVEKIT_URL": f"ws://127.0.0.1:{lk_port}",
           "LIVEKIT_RTC_TCP_PORT": str(services.free_port()),
           "LIVEKIT_RTC_UDP_PORT": str(services.free_udp_port()),
           "OLLAMA_URL": f"http://127.0.0.1:{ollama_port}", "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "up.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "stack", "up"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while "is up" not in (tmp_path / "up.log").read_text():
            assert proc.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "stack up did not come up in 180 s"
            time.sleep(0.5)
        assert f"http://127.0.0.1:{port}/" in (tmp_path / "up.log").read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30) as health:
            report = json.load(health)
        assert report["ok"] and report["livekit"]["ok"] and report["model"]["ok"], report
        servers = _children(proc.pid)
        assert len(servers) >= 3, f"expected livekit-server, Ollama and the token server, got {servers}"
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        log.close()
    assert rc == 0, (tmp_path / "up.log").read_text()[-3000:]
    alive = [p for p in servers if os.path.exists(f"/proc/{p}")]
    assert not alive, f"servers still running after stop: {alive}"
