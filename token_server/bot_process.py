"""One room's bot subprocess: start it, restart it with exponential backoff, stop it."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum

from loguru import logger

ROOM_ARGUMENT = "--room"
STOP_TIMEOUT_S = 5.0
# A bot that ran this long before exiting counts as healthy: the next restart starts from the base delay.
STABLE_RUN_S = 60.0


class BotState(StrEnum):
    """Lifecycle of a supervised bot."""

    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    STOPPED = "stopped"


class BotProcess:
    """Keeps `command --room ROOM` alive until stopped or until `should_restart(room, exit_code)` says no."""

    def __init__(
        self,
        *,
        room: str,
        command: tuple[str, ...],
        make_env: Callable[[], dict[str, str]],
        should_restart: Callable[[str, int], Awaitable[bool]],
        backoff_s: float,
        backoff_max_s: float,
    ) -> None:
        self.room = room
        self._command = (*command, ROOM_ARGUMENT, room)
        self._make_env = make_env
        self._should_restart = should_restart
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._process: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task | None = None
        self.state = BotState.STOPPED
        self.restarts = 0
        self.last_exit_code: int | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process and self._process.returncode is None else None

    @property
    def active(self) -> bool:
        """Running or waiting to restart (counts against the per-machine cap)."""
        return self.state in (BotState.RUNNING, BotState.BACKOFF)

    def start(self) -> asyncio.Task:
        """Start supervising; the returned task ends when the bot is finally gone."""
        self.state = BotState.RUNNING
        self._task = asyncio.create_task(self._supervise(), name=f"bot:{self.room}")
        return self._task

    def snapshot(self) -> dict:
        return {
            "state": self.state.value,
            "pid": self.pid,
            "restarts": self.restarts,
            "last_exit_code": self.last_exit_code,
        }

    async def _supervise(self) -> None:
        delay = self._backoff_s
        try:
            while True:
                self.state = BotState.RUNNING
                started = time.monotonic()
                self._process = await asyncio.create_subprocess_exec(*self._command, env=self._make_env())
                logger.bind(room=self.room, pid=self._process.pid).info("bot started")
                self.last_exit_code = await self._process.wait()
                ran_s = time.monotonic() - started
                logger.bind(room=self.room, exit_code=self.last_exit_code, ran_s=round(ran_s, 1)).log(
                    "INFO" if self.last_exit_code == 0 else "WARNING", "bot exited"
                )
                if not await self._should_restart(self.room, self.last_exit_code):
                    break
                delay = self._backoff_s if ran_s >= STABLE_RUN_S else delay
                self.state = BotState.BACKOFF
                logger.bind(room=self.room, delay_s=delay).info("bot restarting after backoff")
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff_max_s)
                self.restarts += 1
        except OSError as exc:
            logger.bind(room=self.room).error("bot command could not start: {!r}", exc)
        finally:
            await self._terminate()
            self.state = BotState.STOPPED

    async def _terminate(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            logger.bind(room=self.room, pid=process.pid).warning("bot ignored SIGTERM, killing it")
            process.kill()
            await process.wait()

    async def stop(self) -> None:
        """Stop the bot (SIGTERM, then SIGKILL) and end supervision."""
        if self._task is None or self._task.done():
            return
        self.state = BotState.STOPPING
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            if not self._task.cancelled():
                raise
