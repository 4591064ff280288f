"""Replay and dev-key protection of LiveKit's webhooks (the signature itself is checked by
livekit-api's WebhookReceiver)."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable


class WebhookRefused(Exception):
    """A correctly signed webhook that is still refused (replay, stale, dev key from afar)."""


class WebhookGuard:
    """Refuses a webhook event seen before or older than `max_age_s`, and webhooks signed with
    LiveKit's public development key unless they come from this machine."""

    def __init__(
        self, *, dev_keys: bool, max_age_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._dev_key = dev_keys
        self._max_age_s = max_age_s
        self._clock = clock
        self._seen: dict[str, float] = {}

    def check_sender(self, remote: str | None) -> None:
        """Before the signature: the dev key is public, so only a local LiveKit may use it."""
        if self._dev_key and not _is_loopback(remote):
            raise WebhookRefused(
                "webhooks signed with LiveKit's public development key are accepted "
                "only from this machine; set LIVEKIT_API_KEY/SECRET"
            )

    def check_event(self, event_id: str, created_at: int) -> None:
        """After the signature: each event once, and only while fresh."""
        now = self._clock()
        self._seen = {e: t for e, t in self._seen.items() if now - t <= self._max_age_s}
        if created_at and now - created_at > self._max_age_s:
            raise WebhookRefused(f"webhook event is older than {self._max_age_s:g} s")
        if event_id in self._seen:
            raise WebhookRefused("webhook event was already received (replay)")
        self._seen[event_id] = now


def _is_loopback(remote: str | None) -> bool:
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback
