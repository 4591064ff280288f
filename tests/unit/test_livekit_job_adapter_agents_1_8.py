"""The job adapter (bot/livekit_job_adapter.py) against the pinned LiveKit Agents 1.8: the
token it reads is checked on a real `JobContext` (no server), so an upgrade that moves it fails
here, by name."""

from __future__ import annotations

from livekit import rtc
from livekit.agents import JobContext, __version__
from livekit.agents.job import JobAcceptArguments, RunningJobInfo
from livekit.protocol import agent

from bot.livekit_job_adapter import job_token

PINNED = "1.8"


def test_the_pinned_version():
    assert __version__.startswith(PINNED), (
        f"LiveKit Agents {__version__}: re-check bot/livekit_job_adapter.py against this "
        f"version's JobContext and rename this test")


async def test_job_token_is_the_token_the_job_was_assigned():
    info = RunningJobInfo(
        accept_arguments=JobAcceptArguments(name="Ava", identity="avatar-bot", metadata=""),
        job=agent.Job(id="job"), url="ws://localhost:1", token="assigned", worker_id="worker",
        fake_job=True)
    ctx = JobContext(proc=None, info=info, room=rtc.Room(),  # type: ignore[arg-type]
                     on_connect=lambda: None, on_shutdown=lambda _: None,
                     inference_executor=None)  # type: ignore[arg-type]
    assert job_token(ctx) == "assigned"
