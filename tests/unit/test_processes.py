"""stop_process: the signal, the SIGKILL after the timeout, process groups, and pids of
processes that are not our children (real processes, each a few lines of Python)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from avatar_core.processes import stop_process

# Sleeps for a minute; with argument "ignore" it ignores SIGTERM and SIGINT. Says "ready" first.
SLEEPER = (
    "import signal, sys, time\n"
    "if 'ignore' in sys.argv:\n"
    "    for s in (signal.SIGTERM, signal.SIGINT): signal.signal(s, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)
# Starts a sleeper (its arguments passed on), prints its pid once it is ready, and waits for it.
PARENT = (
    "import subprocess, sys\n"
    f"child = subprocess.Popen([sys.executable, '-c', {SLEEPER!r}, *sys.argv[1:]],"
    " stdout=subprocess.PIPE, text=True)\n"
    "child.stdout.readline()\n"
    "print(child.pid, flush=True)\n"
    "child.wait()\n"
)


def start(code: str, *args: str, new_session: bool = False) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            text=True, start_new_session=new_session)
    return proc, proc.stdout.readline().strip()


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its parent does not)."""
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


def test_a_child_that_ends_on_the_signal_gives_its_exit_status():
    proc, _ = start(SLEEPER)
    assert stop_process(proc, timeout=10) == -signal.SIGTERM


def test_a_child_that_ignores_the_signal_is_killed_after_the_timeout():
    proc, _ = start(SLEEPER, "ignore")
    began = time.monotonic()
    assert stop_process(proc, timeout=0.5) == -signal.SIGKILL
    assert time.monotonic() - began >= 0.5


def test_a_group_is_signalled_and_what_is_left_of_it_is_killed():
    leader, child = start(PARENT, "ignore", new_session=True)
    stop_process(leader, timeout=10, group=True)
    deadline = time.monotonic() + 5
    while alive(int(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(int(child))


def test_a_pid_that_is_not_our_child_gets_the_given_signal():
    parent, child = start(PARENT)
    began = time.monotonic()
    assert stop_process(int(child), timeout=10, signum=signal.SIGINT) is None
    assert time.monotonic() - began < 5 and not alive(int(child))
    parent.wait(10)


def test_an_ended_process_is_left_as_it_is():
    proc, _ = start(SLEEPER)
    proc.kill()
    proc.wait()
    assert stop_process(proc, timeout=1) == -signal.SIGKILL
