"""The page's friendly messages, in headless Chromium: a full server (HTTP 503 from the token
endpoint), a rate-limited join (HTTP 429) and a denied microphone. The 503 and 429 come from a
STAND-IN token endpoint (a real token server answers 503 only with all its bots busy, 429 after
too many joins from one address); the room is a real livekit-server."""

from __future__ import annotations

import time
from collections.abc import Sequence

from aiohttp import web

from tests.e2e.browser import run_browser
from tests.e2e.conftest import serve_client

RETRY_AFTER_S = 2
NOTICE = (
    "({text: document.getElementById('notice-text').textContent, "
    "hidden: document.getElementById('notice').hidden, "
    "action: document.getElementById('notice-action').hidden ? null "
    ": document.getElementById('notice-action').textContent, "
    "state: window.avatarStats.state, mic: document.getElementById('mic').disabled, "
    "errors: window.avatarStats.errors})"
)


async def _notice_of_a_failed_join(site_url: str, room: str, *, timeout_s: float,
                                   then: Sequence[dict] = ()) -> dict:
    """Autojoin `room`, wait for the page's error state and return its notice (NOTICE); `then`:
    steps that must also pass after it."""
    report = await run_browser(
        {
            "url": f"{site_url}/?room={room}&name=Tester&autojoin=1",
            "steps": [
                {"waitFor": "window.avatarStats?.state === 'error'", "timeout_s": 30},
                {"eval": NOTICE},
                *then,
            ],
        },
        timeout_s=timeout_s,
    )
    assert report["ok"], report["error"]
    return report["results"][1]


async def test_full_server_says_so_and_offers_retry(client_dist):
    async def full(_request: web.Request) -> web.Response:
        return web.json_response(
            {"error": "capacity", "detail": "all 3 avatars are busy"}, status=503
        )

    async with serve_client(client_dist, full) as site:
        notice = await _notice_of_a_failed_join(site.url, "busy", timeout_s=90)
    assert not notice["hidden"]
    assert "full" in notice["text"]
    assert notice["action"] == "Try again"


async def test_a_rate_limited_join_says_so_and_joins_by_itself_after_the_wait(
        client_dist, livekit, make_token):
    asked: list[float] = []

    async def limited(request: web.Request) -> web.Response:
        body = await request.json()
        asked.append(time.monotonic())
        if len(asked) == 1:
            return web.json_response({"error": "rate_limited", "detail": "too many joins"},
                                     status=429, headers={"Retry-After": str(RETRY_AFTER_S)})
        return web.json_response({"url": livekit.url, "token": make_token(
            body["room"], body["identity"], name=body["name"])})

    async with serve_client(client_dist, limited) as site:
        notice = await _notice_of_a_failed_join(
            site.url, "limited", timeout_s=120,
            then=[{"waitFor": "window.avatarStats.state === 'connected'", "timeout_s": 45}])
    assert f"joining again in {RETRY_AFTER_S} s" in notice["text"], notice
    assert notice["action"] == "Try again"
    assert len(asked) == 2 and asked[1] - asked[0] >= RETRY_AFTER_S - 0.1, asked


async def test_denied_microphone_is_explained_and_the_page_still_joins(standin_site):
    report = await run_browser(
        {
            "url": f"{standin_site.url}/?room=nomic&name=Tester&autojoin=1",
            "denyMic": True,
            "steps": [
                {"waitFor": "window.avatarStats?.state === 'connected'", "timeout_s": 45},
                {"eval": NOTICE},
            ],
        },
        timeout_s=120,
    )
    assert report["ok"], report["error"]
    notice = report["results"][-1]
    assert "Microphone access is blocked" in notice["text"]
    assert notice["mic"] is True  # the mute button is disabled: there is no microphone to mute
    assert notice["errors"] == ["mic: permissions"]
