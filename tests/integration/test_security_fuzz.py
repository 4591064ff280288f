"""Schema-based fuzzing of the real token server (issue 17: "CI fuzzer: 0 x 5xx, 0 ERROR log
lines, no temporary files left after failed requests").

Schemathesis generates requests from /api/openapi.json (valid and invalid ones, bounded number
of examples per operation) against `python -m token_server` with the default settings, the
real livekit-server and Ollama, and no agent worker (tokens ask LiveKit for an avatar that no
worker takes: a real bot per fuzzed room would not fit a 2-core machine). Any 5xx fails the
run, and afterwards the server's log must have no ERROR line and its storage no upload temp file.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support.token_server_process import start_token_server

MAX_EXAMPLES = 8
SEED = 17
RUN_TIMEOUT_S = 240


def test_openapi_fuzzing_finds_no_5xx_error_line_or_leftover(tmp_path, livekit, ollama):
    server = start_token_server(
        tmp_path,
        LIVEKIT_URL=livekit.url,
        OLLAMA_URL=ollama.url,
        OLLAMA_MODEL=ollama.model,
        AVATAR_CHAT_MAX_TOKENS="24",
        AVATAR_CLIENT_CHATS="1",
        AVATAR_CHAT_MAX_S="120",
    )
    try:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{server.url}/api/openapi.json",
                "--checks",
                "not_a_server_error",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                str(SEED),
                "--workers",
                "1",
                "--request-timeout",
                "60",
                "--phases",
                "examples,fuzzing",
                "--suppress-health-check",
                "all",
            ],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            cwd=tmp_path,  # its cache stays there
        )
        report = run.stdout[-6000:] + run.stderr[-2000:]
        assert run.returncode == 0, report
        assert server.error_lines() == [], server.error_lines()
        assert server.temp_files() == []
    finally:
        server.stop()
