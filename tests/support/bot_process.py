"""`python -m bot` programs as subprocesses for tests and benchmarks: one room's bot here, a
worker host in tests/support/worker.py; each logs to a file and is stopped by its own pid."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Self

from loguru import logger

from avatar_core.processes import stop_process

ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT_SECS = 10.0


class LoggedProcess:
    """A Python program run from the repository root with its output in `log_path`; `env` is
    added to this process's environment (LIVEKIT_URL, OLLAMA_URL, BOT_*...); `new_session`
    makes it lead its own process group."""

    def __init__(self, *, args: list[str], env: dict[str, str], log_path: Path,
                 new_session: bool = False):
        self.log_path = log_path
        self._args = args
        self._env = {**os.environ, **env}
        self._new_session = new_session
        self._proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    def start(self) -> Self:
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, *self._args], cwd=ROOT, env=self._env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=self._new_session,
            )
        logger.info(f"{' '.join(self._args)} started (pid {self._proc.pid}, log {self.log_path})")
        return self

    def exit_code(self) -> int | None:
        """The exit status once the process has ended on its own, else None."""
        return None if self._proc is None else self._proc.poll()

    def wait(self, timeout: float) -> int:
        """Wait for the process to end by itself; subprocess.TimeoutExpired if it does not."""
        assert self._proc is not None, "not started"
        return self._proc.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int | None:
        """SIGTERM (a bot leaves the room cleanly), SIGKILL if it does not end in time."""
        return None if self._proc is None else stop_process(self._proc, timeout=STOP_TIMEOUT_SECS)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class BotProcess(LoggedProcess):
    """A bot subprocess for one room (`python -m bot --room NAME`)."""

    def __init__(self, *, room: str, env: dict[str, str], log_path: Path,
                 script: Path | None = None, module: str = "bot"):
        """`script` runs another bot program taking `--room` (a benchmark's baseline bot);
        `module` another bot module (tests.support.probe_bot: the bot with the A/V probe)."""
        program = [str(script)] if script else ["-m", module]
        super().__init__(args=[*program, "--room", room], env=env, log_path=log_path)
        self.room = room
