"""A benchmark stopped with SIGTERM (a timeout, `kill`) stops the livekit-server and Ollama it
started, the model runner included: before, they outlived it and an orphaned runner kept taking
a share of the CPU from every later measurement."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
# A benchmark in miniature: the servers, then a long wait (a benchmark's measuring).
SCRIPT = """
import time
from bench.servers import bench_servers
with bench_servers("sigterm-test") as s:
    import psutil
    ollama = psutil.Process(s.ollama.process.pid)
    pids = [s.livekit.process.pid, ollama.pid, *(c.pid for c in ollama.children(recursive=True))]
    print("pids", *pids, flush=True)
    time.sleep(300)
"""

pytestmark = pytest.mark.integration


def test_sigterm_stops_the_servers_of_a_benchmark():
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    try:
        line = ""
        while proc.stdout and not line.startswith("pids"):  # setup prints progress first
            line = proc.stdout.readline()
            assert line, "the benchmark script ended before its servers were up"
        pids = [int(p) for p in line.split()[1:]]
        assert len(pids) >= 3, f"expected livekit-server, Ollama and its model runner: {line!r}"
        proc.terminate()
        assert proc.wait(30) == 128 + 15
        deadline = time.monotonic() + 15
        alive = pids
        while alive and time.monotonic() < deadline:
            alive = [p for p in pids if psutil.pid_exists(p)
                     and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
            time.sleep(0.2)
        assert not alive, f"still running after the benchmark ended: {alive}"
    finally:
        if proc.poll() is None:  # a failed assertion above: still let it stop its servers
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
