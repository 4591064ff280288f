"""The main job, `python -m stack up` (what `./avatar up` runs): it brings up livekit-server,
Ollama, an avatar worker and the token server on loopback, serves the page, starts again any of
them that dies, and stops everything on SIGTERM."""

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


# Each server under `stack up`, by a word of its command line.
SERVERS = {"livekit-server": "livekit-server", "ollama": "ollama", "worker": "bot worker",
           "token server": "token_server"}
RESTART_TIMEOUT_S = 240.0  # the worker imports Pipecat and loads its models again
# Setup, then the servers; the worker registers once its first job process is prewarmed.
UP_TIMEOUT_S = 480.0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _servers(pid: int) -> dict[str, int]:
    """Which server each child of `stack up` is."""
    found = {}
    for child in _children(pid):
        line = _cmdline(child)
        found.update({name: child for name, word in SERVERS.items() if word in line})
    return found


def _restarted(stack_pid: int, name: str, old_pid: int, ready) -> None:
    deadline = time.monotonic() + RESTART_TIMEOUT_S
    while time.monotonic() < deadline:
        new = _servers(stack_pid).get(name)
        if new not in (None, old_pid) and ready():
            return
        time.sleep(0.5)
    raise AssertionError(f"{name} was not started again within {RESTART_TIMEOUT_S:.0f} s")


def _answers(url: str) -> bool:
    return services.http_ok(url, timeout=2)


def test_stack_up_serves_the_page_and_stops_cleanly(tmp_path, stack_settings):
    worker_log = stack_settings.cache / "logs" / "worker.log"  # appended to by every run
    worker_log_from = worker_log.stat().st_size if worker_log.exists() else 0
    port, lk_port, ollama_port = services.free_port(), services.free_port(), services.free_port()
    env = {**os.environ, "TOKEN_SERVER_PORT": str(port), "LIVEKIT_URL": f"ws://127.0.0.1:{lk_port}",
           "LIVEKIT_RTC_TCP_PORT": str(services.free_port()),
           "LIVEKIT_RTC_UDP_PORT": str(services.free_udp_port()),
           "OLLAMA_URL": f"http://127.0.0.1:{ollama_port}", "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "up.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "stack", "up"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + UP_TIMEOUT_S
        while "is up" not in (tmp_path / "up.log").read_text():
            assert proc.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (
                f"stack up did not come up in {UP_TIMEOUT_S:.0f} s:\n"
                + (tmp_path / "up.log").read_text()[-3000:])
            time.sleep(0.5)
        assert f"http://127.0.0.1:{port}/" in (tmp_path / "up.log").read_text()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30) as health:
            report = json.load(health)
        assert report["ok"] and report["livekit"]["ok"] and report["model"]["ok"], report
        # The worker's job processes warmed the LLM up with the system prompt (stack's Ollama).
        with worker_log.open("rb") as f:
            f.seek(worker_log_from)
            this_run = f.read().decode(errors="replace")
        assert "prewarmed" in this_run and "could not warm up the LLM" not in this_run, (
            this_run[-3000:])
        started = _servers(proc.pid)
        assert set(started) == set(SERVERS), f"expected {set(SERVERS)}, got {started}"
        # Each server killed outright is started again by `stack up` (finding 12).
        checks = {"ollama": lambda: _answers(f"http://127.0.0.1:{ollama_port}/"),
                  "livekit-server": lambda: _answers(f"http://127.0.0.1:{lk_port}/"),
                  "worker": lambda: True}
        for name, ready in checks.items():
            old = _servers(proc.pid)[name]
            os.kill(old, signal.SIGKILL)
            killed_at = time.monotonic()
            _restarted(proc.pid, name, old, ready)
            print(f"{name}: killed, back in {time.monotonic() - killed_at:.1f} s")
            assert proc.poll() is None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30) as health:
            assert json.load(health)["ok"]
        servers = list(_servers(proc.pid).values())
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        log.close()
    assert rc == 0, (tmp_path / "up.log").read_text()[-3000:]
    alive = [p for p in servers if os.path.exists(f"/proc/{p}")]
    assert not alive, f"servers still running after stop: {alive}"
