"""LiveKit Agents 1.8's job context where its public API stops short: the job's room token.

The bot joins the room through Pipecat's own LiveKit connection, with the token the server
assigned to the job, so LiveKit sees the dispatched agent participant. `JobContext` keeps that
token in its private `RunningJobInfo` (`_info.token`) and exposes only its claims
(`token_claims()`). tests/unit/test_livekit_job_adapter_agents_1_8.py pins it.

Upstream: a public `JobContext.token` (the assigned room token, beside `token_claims()`) would
remove this module.
"""

from __future__ import annotations

from livekit.agents import JobContext


def job_token(ctx: JobContext) -> str:
    """The room token LiveKit assigned to the job (its identity, name, kind and attributes)."""
    return ctx._info.token
