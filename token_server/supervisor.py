"""One avatar bot per room: dispatch on demand, release when the room has no human, cap per machine.

Across machines the LiveKit room itself is the lock. The bot's identity is the same in every room
(BOT_IDENTITY) and LiveKit lets only one participant hold an identity in a room: a second join with it
disconnects the first (DUPLICATE_IDENTITY). Each bot's token carries the attribute
`avatar.supervisor = <instance id>`. Before starting a bot an instance asks LiveKit whether the bot
identity is already in the room; if so, another instance owns it and nothing is started. If two
instances race past that check, the later bot replaces the earlier one in the room, and the
earlier instance sees a foreign supervisor id on the bot (on its bot's exit, or at the next room
check) and gives the room up instead of restarting. So one bot stays, whatever the number of machines.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from enum import StrEnum

from loguru import logger

from token_server.bot_process import BotProcess
from token_server.rooms import LiveKitUnavailable, ParticipantView, RoomDirectory
from token_server.settings import TokenServerSettings
from token_server.tokens import TokenMinter

# Environment the bot reads (bot/ and stack/ use the same names).
BOT_ENV_URL = "LIVEKIT_URL"
BOT_ENV_TOKEN = "BOT_TOKEN"
BOT_ENV_IDENTITY = "BOT_IDENTITY"
BOT_ENV_OLLAMA_URL = "OLLAMA_URL"
BOT_ENV_OLLAMA_MODEL = "OLLAMA_MODEL"
BOT_ENV_WHISPER_MODEL = "WHISPER_MODEL"
BOT_ENV_SYSTEM_PROMPT = "BOT_SYSTEM_PROMPT"
# Secrets the bot does not need: it gets a room-scoped token instead.
WITHHELD_FROM_BOT = ("LIVEKIT_API_SECRET", "AVATAR_API_KEY")


class Dispatch(StrEnum):
    """What ensure_bot found or did."""

    STARTED = "started"
    LOCAL = "local"
    REMOTE = "remote"


class BotCapacityError(RuntimeError):
    """This machine already runs its maximum number of bots."""

    def __init__(self, *, max_bots: int, retry_after_s: int) -> None:
        super().__init__(f"this machine already runs its maximum of {max_bots} avatar bots")
        self.retry_after_s = retry_after_s


class BotSupervisor:
    """Starts, watches and releases the bots this token-server instance owns."""

    def __init__(self, *, settings: TokenServerSettings, minter: TokenMinter, rooms: RoomDirectory) -> None:
        self._settings = settings
        self._minter = minter
        self._rooms = rooms
        self.instance_id = uuid.uuid4().hex[:12]
        self._bots: dict[str, BotProcess] = {}
        self._empty_since: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self._checker: asyncio.Task | None = None
        self._grace_checks: dict[str, asyncio.Task] = {}

    @property
    def running(self) -> int:
        return sum(1 for bot in self._bots.values() if bot.active)

    @property
    def max_bots(self) -> int:
        return self._settings.max_bots

    def bot(self, room: str) -> BotProcess | None:
        return self._bots.get(room)

    def snapshot(self) -> dict[str, dict]:
        """Local bots by room, for /api/rooms."""
        return {room: bot.snapshot() for room, bot in self._bots.items()}

    def _bot_env(self, room: str) -> dict[str, str]:
        """The bot's environment: ours less the secrets, plus its room token and the shared persona and models."""
        settings = self._settings
        return {k: v for k, v in os.environ.items() if k not in WITHHELD_FROM_BOT} | {
            BOT_ENV_URL: settings.livekit_url,
            BOT_ENV_IDENTITY: self._minter.bot_identity,
            BOT_ENV_TOKEN: self._minter.bot_token(room=room, supervisor_id=self.instance_id),
            BOT_ENV_OLLAMA_URL: settings.ollama_url,
            BOT_ENV_OLLAMA_MODEL: settings.ollama_model,
            BOT_ENV_WHISPER_MODEL: settings.whisper_model,
            BOT_ENV_SYSTEM_PROMPT: settings.system_prompt,
        }

    def _find_bot(self, participants: list[ParticipantView]) -> ParticipantView | None:
        return next((p for p in participants if p.is_bot), None)

    async def ensure_bot(self, room: str) -> Dispatch:
        """Make sure one bot serves `room`; raises BotCapacityError or LiveKitUnavailable."""
        async with self._lock:
            local = self._bots.get(room)
            if local is not None and local.active:
                self._expect_person(room)
                return Dispatch.LOCAL
            present = self._find_bot(await self._rooms.participants(room))
            if present is not None and present.supervisor != self.instance_id:
                logger.bind(room=room, supervisor=present.supervisor).info("bot already in room, owned elsewhere")
                return Dispatch.REMOTE
            if self.running >= self._settings.max_bots:
                raise BotCapacityError(
                    max_bots=self._settings.max_bots, retry_after_s=max(1, round(self._settings.bot_grace_s))
                )
            bot = BotProcess(
                room=room,
                command=self._settings.bot_command,
                make_env=lambda: self._bot_env(room),
                should_restart=self._should_restart,
                backoff_s=self._settings.bot_backoff_s,
                backoff_max_s=self._settings.bot_backoff_max_s,
            )
            self._bots[room] = bot
            bot.start().add_done_callback(lambda _task: self._forget(room, bot))
            self._expect_person(room)
            logger.bind(room=room, running=self.running).info("bot dispatched")
            return Dispatch.STARTED

    def _forget(self, room: str, bot: BotProcess) -> None:
        if self._bots.get(room) is bot:
            del self._bots[room]
            self._empty_since.pop(room, None)

    def _expect_person(self, room: str) -> None:
        """A person was just given a token: the room's grace period starts (again) now."""
        self._empty_since[room] = time.monotonic()
        self._check_when_grace_ends(room)

    def _check_when_grace_ends(self, room: str) -> None:
        """Re-check `room` when its grace period ends, so release does not wait for the periodic check."""
        pending = self._grace_checks.get(room)
        if pending is not None and not pending.done():
            return
        remaining = self._empty_since[room] + self._settings.bot_grace_s - time.monotonic()
        self._grace_checks[room] = asyncio.create_task(self._check_later(room, remaining), name=f"grace:{room}")

    async def _check_later(self, room: str, delay_s: float) -> None:
        await asyncio.sleep(max(0.0, delay_s))
        self._grace_checks.pop(room, None)
        await self.check_room(room)

    def _release_reason(self, room: str, participants: list[ParticipantView]) -> str | None:
        """Why this instance should give the room up now, or None to keep its bot."""
        present = self._find_bot(participants)
        if present is not None and present.supervisor != self.instance_id:
            return f"bot identity taken over by supervisor {present.supervisor}"
        now = time.monotonic()
        if any(p.is_human for p in participants):
            self._empty_since.pop(room, None)
            return None
        since = self._empty_since.setdefault(room, now)
        if now - since >= self._settings.bot_grace_s:
            return f"no human in the room for {self._settings.bot_grace_s:g} s"
        return None

    async def _should_restart(self, room: str, exit_code: int) -> bool:
        """After an exit: restart a crash, but not a bot that ended its session in an empty room."""
        try:
            participants = await self._rooms.participants(room)
        except LiveKitUnavailable:
            return True
        reason = self._release_reason(room, participants)
        if reason is None and exit_code == 0 and not any(p.is_human for p in participants):
            reason = "bot left its empty room by itself"
        if reason:
            logger.bind(room=room, reason=reason).info("bot not restarted")
        return reason is None

    async def check_room(self, room: str) -> None:
        """Release the room's bot if another instance owns the room or it had no human for the grace period."""
        bot = self._bots.get(room)
        if bot is None or not bot.active:
            return
        try:
            reason = self._release_reason(room, await self._rooms.participants(room))
        except LiveKitUnavailable:
            return
        if reason and self._bots.get(room) is bot:
            logger.bind(room=room, reason=reason).info("releasing bot")
            await bot.stop()
        elif room in self._empty_since:
            self._check_when_grace_ends(room)

    async def _check_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.room_check_s)
            for room in list(self._bots):
                try:
                    await self.check_room(room)
                except Exception:  # the safety net must outlive any one failed check
                    logger.bind(room=room).exception("room check failed")

    def start(self) -> None:
        """Start the periodic room check (the safety net behind webhooks)."""
        self._checker = asyncio.create_task(self._check_loop(), name="room-check")

    async def stop(self) -> None:
        """Stop the room check and every local bot."""
        timers = [t for t in (self._checker, *self._grace_checks.values()) if t is not None]
        for task in timers:
            task.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        await asyncio.gather(*(bot.stop() for bot in list(self._bots.values())))
