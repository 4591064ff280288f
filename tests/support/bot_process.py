"""Starting and stopping one `python -m bot --room NAME` process (tests, benchmarks)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from loguru import logger

from avatar_core.processes import stop_process

ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_SECS = 10.0


class BotProcess:
    """A bot subprocess for one room, with its output in `log_path`; stopped by its own pid."""

    def __init__(self, *, room: str, env: dict[str, str], log_path: Path,
                 script: Path | None = None):
        """`env` is added to this process's environment (LIVEKIT_URL, OLLAMA_URL, BOT_*...);
        `script` runs another bot program taking `--room` (a benchmark's baseline bot)."""
        self.room = room
        self._program = [str(script)] if script else ["-m", "bot"]
        self.log_path = log_path
        self._env = {**os.environ, **env}
        self._proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None, "bot not started"
        return self._proc.pid

    def start(self) -> BotProcess:
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, *self._program, "--room", self.room],
                cwd=ROOT, env=self._env, stdout=log, stderr=subprocess.STDOUT,
            )
        logger.info(f"bot for room {self.room} started (pid {self._proc.pid}, log {self.log_path})")
        return self

    def exit_code(self) -> int | None:
        """The exit status once the bot has ended on its own, else None."""
        return None if self._proc is None else self._proc.poll()

    def wait(self, timeout: float) -> int:
        """Wait for the bot to end by itself; subprocess.TimeoutExpired if it does not."""
        assert self._proc is not None, "bot not started"
        return self._proc.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int | None:
        """SIGTERM (the bot leaves the room cleanly), SIGKILL if it does not end in time."""
        return None if self._proc is None else stop_process(self._proc, timeout=STOP_TIMEOUT_SECS)

    def __enter__(self) -> BotProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
