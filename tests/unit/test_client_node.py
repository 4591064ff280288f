"""The browser client's own unit tests (node's test runner), run as part of the pytest tiers."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[2] / "client"


def test_client_node_unit_tests():
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed (needed for the client's unit tests)")
    if not (CLIENT / "node_modules").exists():
        pytest.skip("client/node_modules is missing: run `./avatar setup --client` (npm ci)")
    proc = subprocess.run(["npm", "test", "--silent"], cwd=CLIENT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout, proc.stdout[-2000:]
