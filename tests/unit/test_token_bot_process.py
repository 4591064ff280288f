"""BotProcess supervision with real subprocesses: restart with backoff, give up when told, stop."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from token_server import bot_process
from token_server.bot_process import BotProcess, BotState

CRASH = (sys.executable, "-c", "import sys; sys.exit(3)")
SLEEP = (sys.executable, "-c", "import time; time.sleep(60)")
# Ignores SIGTERM, then touches the file named by its first argument to say so.
STUBBORN = (
    "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "pathlib.Path(sys.argv[1]).touch(); time.sleep(60)"
)


def make(command, should_restart, **kw):
    return BotProcess(
        room="r1",
        command=command,
        make_env=lambda: dict(os.environ),
        should_restart=should_restart,
        backoff_s=kw.get("backoff_s", 0.05),
        backoff_max_s=kw.get("backoff_max_s", 0.2),
    )


async def test_crashing_bot_is_restarted_until_told_to_stop_and_gets_its_room_argument():
    calls = []

    async def should_restart(room, code):
        calls.append((room, code))
        return len(calls) < 4

    bot = make((*CRASH[:2], "import sys; sys.exit(3 if sys.argv[1:] == ['--room', 'r1'] else 9)"), should_restart)
    await asyncio.wait_for(bot.start(), 30)
    assert calls == [("r1", 3)] * 4
    assert bot.restarts == 3
    assert bot.state is BotState.STOPPED and bot.pid is None


async def test_backoff_doubles_up_to_the_maximum(monkeypatch):
    delays = []
    real_sleep = asyncio.sleep

    async def record_sleep(seconds):
        delays.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(bot_process.asyncio, "sleep", record_sleep)
    count = 0

    async def should_restart(room, code):
        nonlocal count
        count += 1
        return count <= 5

    await asyncio.wait_for(make(CRASH, should_restart, backoff_s=0.05, backoff_max_s=0.3).start(), 30)
    assert delays == [0.05, 0.1, 0.2, 0.3, 0.3]


async def test_stop_terminates_a_running_bot():
    async def never(room, code):
        raise AssertionError("a stopped bot must not ask to restart")

    bot = make(SLEEP, never)
    task = bot.start()
    while bot.pid is None:
        await asyncio.sleep(0.05)
    pid = bot.pid
    await bot.stop()
    assert task.done() and bot.state is BotState.STOPPED
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_stop_kills_a_bot_that_ignores_sigterm(monkeypatch, tmp_path):
    monkeypatch.setattr(bot_process, "STOP_TIMEOUT_S", 0.5)

    async def never(room, code):
        raise AssertionError("a stopped bot must not ask to restart")

    ready = tmp_path / "ready"
    bot = BotProcess(
        room="r1",
        command=(sys.executable, "-c", STUBBORN, str(ready)),
        make_env=lambda: dict(os.environ),
        should_restart=never,
        backoff_s=0.05,
        backoff_max_s=0.1,
    )
    bot.start()
    while not ready.exists():  # its SIGTERM handler is installed
        await asyncio.sleep(0.05)
    pid = bot.pid
    await asyncio.wait_for(bot.stop(), 10)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_a_missing_bot_command_ends_supervision_without_crashing():
    async def never(room, code):
        raise AssertionError("nothing ran")

    bot = make(("/nonexistent/bot-binary",), never)
    await asyncio.wait_for(bot.start(), 10)
    assert bot.state is BotState.STOPPED and not bot.active
