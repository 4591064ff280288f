"""JobOffers: how a worker answers LiveKit's job offers (livekit-agents' own JobRequest objects,
their answers recorded where the worker would send them to livekit-server)."""

from __future__ import annotations

from livekit.agents import JobRequest
from livekit.api import TokenVerifier
from livekit.protocol import agent, models

from bot.settings import REDISPATCH_METADATA, BotSettings
from bot.token import bot_token
from bot.worker import JOB_ATTRIBUTE, JobOffers


class Answers(list):
    """What the worker told livekit-server, one entry per offer."""

    def offer(self, room: str, *, metadata: str = "") -> JobRequest:
        async def on_reject(terminate: bool) -> None:
            self.append(("declined", room, terminate))

        async def on_accept(args) -> None:
            self.append(("accepted", room, args))

        job = agent.Job(id=f"AJ_{room}", room=models.Room(name=room), metadata=metadata)
        return JobRequest(job=job, on_reject=on_reject, on_accept=on_accept)


def offers(spread_s: float) -> JobOffers:
    return JobOffers(bot=BotSettings.from_env(), spread_s=spread_s)


async def test_takes_the_room_as_the_bot_with_its_job_id():
    answers = Answers()
    await offers(0.0)(answers.offer("a"))
    (what, room, args), = answers
    bot = BotSettings.from_env()
    assert (what, room, args.identity, args.name) == ("accepted", "a", bot.identity, bot.name)
    assert args.attributes == {JOB_ATTRIBUTE: "AJ_a"}


async def test_without_spreading_every_offer_is_taken():
    answers, answer = Answers(), offers(0.0)
    for room in ("a", "b", "c"):
        await answer(answers.offer(room))
    assert [what for what, *_ in answers] == ["accepted"] * 3


async def test_an_offer_right_after_a_taken_room_is_passed_on_not_ended():
    answers, answer = Answers(), offers(60.0)
    await answer(answers.offer("a"))
    await answer(answers.offer("b"))
    # terminate=False: livekit-server offers the job to the next worker instead of ending it.
    assert answers[1] == ("declined", "b", False)


async def test_the_token_servers_redispatch_is_always_taken():
    answers, answer = Answers(), offers(60.0)
    await answer(answers.offer("a"))
    await answer(answers.offer("b", metadata=REDISPATCH_METADATA))
    assert [what for what, *_ in answers] == ["accepted", "accepted"]


async def test_a_dispatched_bot_and_a_bot_started_alone_show_the_name_they_answer_to(monkeypatch):
    monkeypatch.delenv("BOT_TOKEN", raising=False)
    monkeypatch.setenv("LIVEKIT_API_KEY", "k1")
    monkeypatch.setenv("LIVEKIT_API_SECRET", "s" * 32)
    bot = BotSettings.from_env()
    answers = Answers()
    await JobOffers(bot=bot, spread_s=0.0)(answers.offer("a"))
    (_, _, dispatched), = answers
    alone = TokenVerifier("k1", "s" * 32).verify(bot_token(bot, "a"))
    assert (dispatched.identity, dispatched.name) == (alone.identity, alone.name)
    assert alone.name in bot.names
