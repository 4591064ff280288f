"""`python -m bot worker`: a LiveKit agent worker that runs one avatar per dispatched room.

The worker registers with livekit-server under an agent name (livekit-agents' `AgentServer`);
LiveKit dispatches one job per room that asks for that agent (the token server's tokens carry
the dispatch) to a registered worker chosen by load, on any host. Each job runs in its own
process, started ahead of time and prewarmed with the models (Whisper, the embedded voice), so
a room gets its greeting without waiting for a Python start-up or a model load. The worker
reports its load (rooms / BOT_WORKER_MAX_ROOMS), takes no job at or above
BOT_WORKER_LOAD_THRESHOLD, passes on a job that comes within BOT_WORKER_SPREAD_S of the one it
took last (so LiveKit offers it to another worker), and on SIGTERM or SIGINT drains: it
finishes its rooms, takes no new ones, then exits. A job process that dies is noticed at once:
its bot is removed from the room, and the token server's BotKeeper has LiveKit dispatch a new one.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import time
from dataclasses import dataclass
from functools import partial

import aiohttp
from livekit import api
from livekit.agents import AgentServer, JobContext, JobProcess, JobRequest
from loguru import logger

from avatar_core.whisper import load_whisper
from bot.livekit_job_adapter import job_token
from bot.llm_warm_up import warm_up_llm
from bot.pipeline import AvatarBot, BotModels
from bot.reply_guard import warm_up_language_detector
from bot.settings import REDISPATCH_METADATA, BotSettings, WorkerSettings
from records.options import RecordsOptions

# Participant attribute of the bot: the LiveKit job it runs for.
JOB_ATTRIBUTE = "avatar.job"
# How often the worker looks for jobs that ended (ended → their bots must have left).
JOB_WATCH_S = 0.5
# JobProcess.userdata key of the models a job process loaded before its job arrived.
MODELS_KEY = "avatar.models"
# Loading Whisper and the voice takes a few seconds on a busy 2-core machine; livekit-agents'
# default of 10 s would kill prewarming processes there.
PREWARM_TIMEOUT_S = 60.0


@dataclass(frozen=True, kw_only=True)
class _Load:
    """The worker's load: its share of BOT_WORKER_MAX_ROOMS (picklable, for livekit-agents)."""

    max_rooms: int

    def __call__(self, server: AgentServer) -> float:
        return len(server.active_jobs) / self.max_rooms


def prewarm(proc: JobProcess, *, settings: BotSettings) -> None:
    """Load the models into a job process before any job is handed to it."""
    proc.userdata[MODELS_KEY] = BotModels(
        whisper=load_whisper(settings.whisper_model, compute_type=settings.whisper_compute_type),
        voice=settings.voice.load(),
    )
    warm_up_language_detector()
    # Imported on the first LLM request otherwise, blocking that room's event loop.
    importlib.import_module("anyio._backends._asyncio")
    warm_up_llm(settings)
    logger.info(f"job process {proc.pid} prewarmed")


class JobOffers:
    """Answers LiveKit's job offers: takes the room as the bot, or passes it to another worker.

    livekit-server 1.13 picks a worker at random, weighted by the load each reported last, and
    livekit-agents reports it every 2.5 s: rooms created within a few seconds of each other all
    see every worker idle, and several land on one worker while another stays idle. A worker
    that took a room less than `spread_s` ago declines the next offer (not terminating it), and
    LiveKit offers that job to another registered worker; if every worker declines, the token
    server's BotKeeper dispatches the room again, and that dispatch (REDISPATCH_METADATA) is
    taken by the first worker offered it. With one worker host `spread_s` is 0 (off): there a
    declined room would wait for that re-dispatch.
    """

    def __init__(self, *, bot: BotSettings, spread_s: float) -> None:
        self._bot = bot
        self._spread_s = spread_s
        self._last_taken = -float("inf")

    async def __call__(self, request: JobRequest) -> None:
        since = time.monotonic() - self._last_taken
        if since < self._spread_s and request.job.metadata != REDISPATCH_METADATA:
            logger.info(f"passing room {request.room.name} to another worker: took one "
                        f"{since:.1f} s ago")
            await request.reject(terminate=False)
            return
        self._last_taken = time.monotonic()
        # One bot per room is LiveKit's guarantee; the job id in an attribute tells this job's
        # participant from a later bot of the room.
        await request.accept(identity=self._bot.identity, name=self._bot.name,
                             attributes={JOB_ATTRIBUTE: request.id})


async def entrypoint(ctx: JobContext, *, settings: BotSettings,
                     records: RecordsOptions | None) -> None:
    """Run the avatar in the job's room until the room empties or the job is shut down."""
    room = ctx.job.room.name
    # Pipecat's LiveKit transport opens its own connection; it joins with the job's token, so
    # LiveKit sees the dispatched agent participant (identity, name, agent kind and attributes).
    bot = AvatarBot(settings=settings, room=room, token=job_token(ctx),
                    models=ctx.proc.userdata.get(MODELS_KEY), records=records)

    async def stop(reason: str) -> None:
        await bot.worker.end(reason=reason)

    ctx.add_shutdown_callback(stop)
    logger.info(f"job {ctx.job.id} in process {os.getpid()}: avatar joining room {room}")
    await bot.run(handle_signals=False)
    ctx.shutdown(reason="avatar left the room")


def build_server(settings: WorkerSettings, bot: BotSettings, *,
                 records: RecordsOptions | None = None) -> AgentServer:
    """The agent server: explicit dispatch by agent name, prewarmed processes, room-count load."""
    server = AgentServer(
        ws_url=bot.livekit_url,
        api_key=bot.livekit_api_key,
        api_secret=bot.livekit_api_secret,
        # Partials of module functions: livekit-agents pickles them into the job processes.
        setup_fnc=partial(prewarm, settings=bot),
        load_fnc=_Load(max_rooms=settings.max_rooms),
        load_threshold=settings.load_threshold,
        num_idle_processes=settings.idle_processes,
        initialize_process_timeout=PREWARM_TIMEOUT_S,
        # Imported once in the forkserver: a new job process (a replacement too) starts as a fork
        # with Pipecat and the pipeline's modules in memory, and only loads the models.
        preload_modules=[AvatarBot.__module__],
        drain_timeout=settings.drain_timeout_s,
        host=settings.http_host,
        port=settings.http_port,
    )
    server.rtc_session(
        partial(entrypoint, settings=bot, records=records),
        agent_name=settings.agent_name,
        on_request=JobOffers(bot=bot, spread_s=settings.spread_s),
    )
    return server


class StaleBotRemover:
    """Removes the bot of a job whose process died from its room at once.

    A job process that ends normally has left its room. One that was killed stays listed as a
    participant until LiveKit times its connection out (~20 s), and with it the room looks as
    if it had its avatar; removing it lets the token server's BotKeeper dispatch a new one now.
    """

    def __init__(self, *, server: AgentServer, bot: BotSettings) -> None:
        self._server = server
        self._bot = bot
        self._jobs: dict[str, str] = {}  # job id → room

    async def run(self) -> None:
        async with api.LiveKitAPI(
            self._bot.livekit_url, self._bot.livekit_api_key, self._bot.livekit_api_secret
        ) as lkapi:
            while True:
                await asyncio.sleep(JOB_WATCH_S)
                jobs = {info.job.id: info.job.room.name for info in self._server.active_jobs}
                for job_id, room in self._jobs.items():
                    if job_id not in jobs:
                        await self._remove_if_still_there(lkapi, job_id, room)
                self._jobs = jobs

    async def _remove_if_still_there(self, lkapi: api.LiveKitAPI, job_id: str, room: str) -> None:
        who = api.RoomParticipantIdentity(room=room, identity=self._bot.identity)
        try:
            participant = await lkapi.room.get_participant(who)
            if participant.attributes.get(JOB_ATTRIBUTE) == job_id:
                await lkapi.room.remove_participant(who)
                logger.warning(f"job {job_id} ended without leaving room {room}; removed its bot")
        except (api.TwirpError, aiohttp.ClientError, TimeoutError) as exc:
            logger.debug(f"room {room}: no stale bot of job {job_id} removed ({exc})")


async def run(
    settings: WorkerSettings, bot: BotSettings, *, records: RecordsOptions | None = None
) -> None:
    """Take jobs until SIGTERM/SIGINT, then drain (finish rooms, take none) and exit."""
    server = build_server(settings, bot, records=records)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    serving = asyncio.create_task(server.run())
    remover = asyncio.create_task(StaleBotRemover(server=server, bot=bot).run())
    logger.info(f"worker for agent {settings.agent_name!r} connecting to {bot.livekit_url}")
    await asyncio.wait(
        {serving, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED
    )
    if not serving.done():
        logger.info(f"draining: finishing {len(server.active_jobs)} room(s), taking no new ones")
        try:
            await server.drain()
        except TimeoutError:
            logger.warning(f"rooms still running after {settings.drain_timeout_s} s; closing them")
    remover.cancel()
    await server.aclose()
    if serving.done() and (error := serving.exception()) is not None:
        raise error
