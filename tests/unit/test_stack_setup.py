"""Bad setup input gets one clear line saying what to do (issue 2)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stack import binaries, models, services
from stack.errors import StackError

ROOT = Path(__file__).resolve().parents[2]


def test_missing_go_and_no_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    for name in ("go", "livekit-server", "ollama"):
        assert not os.path.exists(f"/usr/bin/{name}"), (
            f"/usr/bin/{name} exists; the test needs it absent"
        )
    with pytest.raises(StackError, match="Go is not installed") as err:
        binaries.livekit_server(tmp_path)
    assert "livekit-server" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(StackError, match="ollama.com/download"):
        binaries.ollama(tmp_path)


def test_port_in_use_is_named(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StackError, match=rf"TCP port {port} .* in use .*LIVEKIT_URL"):
            services.livekit_server(
                Path("/bin/true"),
                port=port,
                tcp_port=services.free_port(),
                udp_port=services.free_udp_port(),
                api_key="k",
                api_secret="s",
                log_path=tmp_path / "lk.log",
            )


def test_corrupt_model_file_is_deleted_with_instructions(tmp_path):
    gguf = tmp_path / "models" / models.LLM_GGUF_NAME
    gguf.parent.mkdir(parents=True)
    gguf.write_bytes(b"GGUF" + b"\0" * 1000)  # a partial download
    with pytest.raises(StackError, match="sha256 check .* run setup again"):
        models.smollm2_gguf(tmp_path)
    assert not gguf.exists()


def test_unreachable_ollama_url_cli_says_what_to_do(tmp_path):
    env = {**os.environ, "OLLAMA_URL": "http://ollama.invalid:11434", "AVATAR_CACHE": str(tmp_path)}
    env.pop("WHISPER_MODEL", None)
    # A fake livekit-server where setup keeps its build, so that setup reaches the Ollama step
    # without building anything (the build would leave its log in the cache).
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / f"livekit-server-{binaries.LIVEKIT_VERSION}").symlink_to("/bin/true")
    proc = subprocess.run(
        [sys.executable, "-m", "stack", "setup"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert "Ollama does not answer at OLLAMA_URL=http://ollama.invalid:11434" in errors[0]
    assert "Traceback" not in proc.stderr
    assert "building livekit-server" not in proc.stdout + proc.stderr, "it built livekit-server"


def test_whisper_folder_without_model(tmp_path):
    with pytest.raises(StackError, match="without model.bin"):
        models.whisper_model(str(tmp_path), tmp_path)


def test_offline_whisper_model_is_packaged(tmp_path):
    path = Path(models.whisper_model("", tmp_path))
    assert (path / "model.bin").stat().st_size > 10_000_000
