"""Writes one session's record off the real-time path: a bounded queue drained by a thread.

`submit` never waits: on a full queue the write is dropped, logged and counted. The writer
thread runs each write as its own transaction; a database error drops that write (logged and
counted) and the next write tries again, so recording resumes by itself when the database
returns. After a lost write the session row is written again first (idempotently), so later
utterances always have their session.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from loguru import logger

from records.store import RecordStore, SessionInfo, Utterance

DEFAULT_MAX_PENDING = 1000
# Write latencies kept for statistics (submit → committed), newest last.
LATENCY_WINDOW = 10_000
_STOP = object()


@dataclass(frozen=True)
class RecorderStats:
    written: int
    lost: int
    pending: int


class SessionRecorder:
    """The record of one room session, written in order by a background thread."""

    def __init__(
        self, *, store: RecordStore, session: SessionInfo, max_pending: int = DEFAULT_MAX_PENDING
    ):
        self.session = session
        self._store = store
        self._queue: queue.Queue = queue.Queue(maxsize=max_pending)
        self._lock = threading.Lock()
        self._written = 0
        self._lost = 0
        self._resync = False  # set after a lost write: the session row is written again first
        self.write_latencies_s: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._thread = threading.Thread(
            target=self._drain, name=f"records-{session.id}", daemon=True
        )
        self._thread.start()
        self._submit("session start", lambda store: store.ensure_session(session))

    @property
    def stats(self) -> RecorderStats:
        with self._lock:
            return RecorderStats(
                written=self._written, lost=self._lost, pending=self._queue.qsize()
            )

    def participant_joined(self, identity: str, name: str, at: datetime) -> bool:
        return self._submit(
            f"join of {identity}",
            lambda s: s.participant_joined(self.session.id, identity, name, at),
        )

    def participant_left(self, identity: str, at: datetime) -> bool:
        return self._submit(
            f"leave of {identity}", lambda s: s.participant_left(self.session.id, identity, at)
        )

    def utterance(self, utterance: Utterance) -> bool:
        return self._submit(
            f"{utterance.role} utterance", lambda s: s.add_utterance(self.session.id, utterance)
        )

    def end(self, at: datetime) -> bool:
        return self._submit("session end", lambda s: s.end_session(self.session.id, at))

    def close(self, timeout: float) -> RecorderStats:
        """Write what is queued (up to `timeout` s), then stop the writer; the final stats."""
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            pass  # the writer is stuck or slow: what is still queued is reported as unwritten
        self._thread.join(max(0.0, deadline - time.monotonic()))
        stats = self.stats
        if stats.lost or stats.pending:
            logger.warning(
                f"records of session {self.session.id}: {stats.written} written, "
                f"{stats.lost} lost, {stats.pending} unwritten at close"
            )
        return stats

    def _submit(self, what: str, write: Callable[[RecordStore], None]) -> bool:
        try:
            self._queue.put_nowait((time.perf_counter(), what, write))
            return True
        except queue.Full:
            self._count_lost(f"records queue full ({self._queue.maxsize}); dropped the {what}")
            return False

    def _drain(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            submitted, what, write = item
            try:
                if self._resync:
                    self._store.ensure_session(self.session)
                    self._resync = False
                    if self._lost:
                        logger.info(f"records of session {self.session.id}: writing again")
                write(self._store)
            except Exception as exc:  # any driver or connection error: the call goes on
                self._resync = True
                self._count_lost(f"records: could not write the {what}: {exc!r:.300}")
                continue
            with self._lock:
                self._written += 1
            self.write_latencies_s.append(time.perf_counter() - submitted)

    def _count_lost(self, message: str) -> None:
        with self._lock:
            self._lost += 1
            lost = self._lost
        logger.warning(f"{message} (lost so far: {lost})")
