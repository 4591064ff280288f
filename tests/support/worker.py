"""`python -m bot worker` as a subprocess for tests and benchmarks: started in its own process
group (the worker, its forkserver and its job processes: one "host"), ready once livekit-server
registered it, stopped by its own pid."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

from avatar_core.processes import stop_process
from bot.settings import WORKER_REGISTERED_LOG as REGISTERED_LOG
from tests.support.bot_process import LoggedProcess

# Importing Pipecat, forking the first job process and loading its models, on 2 busy cores.
REGISTER_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 30.0
JOB_LINE = re.compile(r"job (\S+) in process (\d+): avatar joining room (\S+)")


class WorkerProcess(LoggedProcess):
    """One worker host: `python -m bot worker` leading its own process group."""

    def __init__(self, *, env: dict[str, str], log_path: Path):
        super().__init__(args=["-m", "bot", "worker"], env=env, log_path=log_path,
                         new_session=True)

    def registrations(self) -> int:
        return self.log().count(REGISTERED_LOG)

    def wait_registered(self, *, after: int = 0, timeout: float = REGISTER_TIMEOUT_S) -> None:
        """Wait until livekit-server has registered the worker (more than `after` times)."""
        deadline = time.monotonic() + timeout
        while self.registrations() <= after:
            if self.exit_code() is not None:
                raise AssertionError(f"worker exited ({self.exit_code()}):\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker not registered in {timeout:.0f} s; "
                                     f"see {self.log_path}")
            time.sleep(0.2)

    def jobs(self) -> dict[str, int]:
        """Room → pid of the job process that joined it (the latest one per room)."""
        return {room: int(pid) for _job, pid, room in JOB_LINE.findall(self.log())}

    def terminate(self) -> None:
        """SIGTERM: the worker drains (finishes its rooms) and exits."""
        self._proc.send_signal(signal.SIGTERM)

    def kill_host(self) -> None:
        """SIGKILL to the worker and all its processes, as when its machine dies."""
        stop_process(self._proc, timeout=STOP_TIMEOUT_S, signum=signal.SIGKILL, group=True)

    def stop(self) -> None:
        """Drain and exit (the job processes ignore SIGTERM: the worker ends them); the whole
        process group is killed if that takes too long, and whatever of it is left."""
        if self._proc is not None:
            stop_process(self._proc, timeout=STOP_TIMEOUT_S, group=True)
