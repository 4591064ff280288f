"""Per-client limits of anonymous clients: tokens, new rooms and chat turns per time window.

A client is its remote address. A request with the API key is an operator's and is not limited;
without one every client is, so no single client can hold every bot slot by asking tokens for
new rooms it never joins, or keep the LLM busy with chat turns. A refusal carries Retry-After.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from aiohttp import web

# request[OPERATOR]: the request carries the API key (set by the API-key middleware).
OPERATOR = web.RequestKey("operator", bool)
# Forget clients and rooms after this many windows without activity.
PRUNE_EVERY = 256

TOKENS, NEW_ROOMS, CHATS = "tokens", "new rooms", "chat turns"


class RateLimited(Exception):
    """Too many requests of one kind from one client; retry after `retry_after_s`."""

    def __init__(self, what: str, limit: int, window_s: float, retry_after_s: float) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        super().__init__(
            f"at most {limit} {what} per {window_s:g} s from one client; "
            f"retry in {self.retry_after_s} s"
        )


class ClientLimits:
    """Sliding-window counters per (client, kind), and when each room was last asked for."""

    def __init__(
        self,
        *,
        window_s: float,
        tokens: int,
        new_rooms: int,
        chats: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window_s = window_s
        self._limits = {TOKENS: tokens, NEW_ROOMS: new_rooms, CHATS: chats}
        self._clock = clock
        self._events: dict[tuple[str, str], deque[float]] = {}
        self._rooms: dict[str, float] = {}
        self._calls = 0

    def admit_token(self, client: str, room: str) -> None:
        """Count a token request (and a new room when nobody asked for `room` in the window),
        or raise RateLimited without counting anything."""
        now = self._tick()
        last = self._rooms.get(room)
        new_room = last is None or now - last > self._window_s
        self._check(client, TOKENS, now)
        if new_room:
            self._check(client, NEW_ROOMS, now)
            self._events[(client, NEW_ROOMS)].append(now)
        self._events[(client, TOKENS)].append(now)
        self._rooms[room] = now

    def admit_chat(self, client: str) -> None:
        """Count a chat turn, or raise RateLimited."""
        now = self._tick()
        self._check(client, CHATS, now)
        self._events[(client, CHATS)].append(now)

    def _check(self, client: str, kind: str, now: float) -> None:
        events = self._events.setdefault((client, kind), deque())
        while events and now - events[0] > self._window_s:
            events.popleft()
        if len(events) >= self._limits[kind]:
            raise RateLimited(
                kind, self._limits[kind], self._window_s, events[0] + self._window_s - now
            )

    def _tick(self) -> float:
        now = self._clock()
        self._calls += 1
        if self._calls % PRUNE_EVERY == 0:
            horizon = now - self._window_s
            self._events = {k: v for k, v in self._events.items() if v and v[-1] > horizon}
            self._rooms = {r: t for r, t in self._rooms.items() if t > horizon}
        return now
