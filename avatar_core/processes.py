"""Stopping a process: ask it to end with a signal, kill it if it does not in time.

The one stop primitive of the stack's servers, the tests' bot, worker and token server
processes, and the tests' PostgreSQL, so they all escalate the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

from loguru import logger

# How often a process that is not our child is looked for while it ends.
_POLL_S = 0.05


def stop_process(
    target: subprocess.Popen | int,
    *,
    timeout: float,
    signum: int = signal.SIGTERM,
    group: bool = False,
) -> int | None:
    """Send `signum` to `target`, wait up to `timeout` s for it to end, then SIGKILL it.

    `target` is a child we started (its exit status is returned) or the pid of a process that is
    not our child, such as a daemon's (None is returned). With `group`, the signals go to the
    process group `target` leads (started with `start_new_session=True`), and whatever of the
    group is left once the leader has ended is killed too (its children, a crashed server's
    workers). A process that has already ended is not signalled, but its group still is.
    """
    pid = target.pid if isinstance(target, subprocess.Popen) else target
    send = os.killpg if group else os.kill
    if _running(target):
        with contextlib.suppress(ProcessLookupError):
            send(pid, signum)
        if not _ended(target, timeout=timeout):
            logger.warning(f"pid {pid} did not end within {timeout:.0f} s of "
                           f"{signal.Signals(signum).name}; killing it")
            with contextlib.suppress(ProcessLookupError):
                send(pid, signal.SIGKILL)
    if group:  # whatever of the group is left
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    if isinstance(target, subprocess.Popen):
        return target.wait(timeout)
    _ended(target, timeout=timeout)
    return None


def _running(target: subprocess.Popen | int) -> bool:
    """Whether `target` has not ended yet (a child that has is reaped)."""
    if isinstance(target, subprocess.Popen):
        return target.poll() is None
    try:
        os.kill(target, 0)
    except ProcessLookupError:
        return False
    return True


def _ended(target: subprocess.Popen | int, *, timeout: float) -> bool:
    """Whether `target` ended within `timeout` s."""
    if isinstance(target, subprocess.Popen):
        try:
            target.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + timeout
    while _running(target):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_S)
    return True
