"""Progress output for long setup steps: a step banner, subprocess output streamed with a count."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from avatar_core.errors import StackError

# Terminal control sequences (spinners, cursor moves) that tools print for interactive use.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def step(message: str) -> None:
    """Print one setup step line (plain text; setup runs in terminals and CI logs alike)."""
    print(f"==> {message}", flush=True)


def run_streamed(cmd: Sequence[str], *, what: str, env: dict | None = None, cwd: Path | None = None,
                 log: Path | None = None) -> None:
    """Run a long command, echo one progress line per output line with elapsed time, keep a log.

    Raises StackError naming the log file and its last lines when the command fails.
    """
    started = time.monotonic()
    tail: list[str] = []
    if log:
        log.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log, "w") if log else None
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env, cwd=cwd, bufsize=1)
    except FileNotFoundError as exc:
        raise StackError(f"{what}: cannot run {cmd[0]!r} ({exc.strerror})") from exc
    assert proc.stdout is not None
    count = 0
    for raw in proc.stdout:
        line = _ANSI.sub("", raw)
        count += 1
        tail = (tail + [line.rstrip()])[-15:]
        if log_file:
            log_file.write(line)
        print(f"    [{what} {time.monotonic() - started:5.0f}s #{count}] {line.rstrip()[:110]}",
              file=sys.stderr, flush=True)
    rc = proc.wait()
    if log_file:
        log_file.close()
    if rc != 0:
        detail = "\n".join(tail)
        where = f" (full log: {log})" if log else ""
        raise StackError(f"{what} failed with exit code {rc}{where}:\n{detail}")
    print(f"    [{what}] done in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
