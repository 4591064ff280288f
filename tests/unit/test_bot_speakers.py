"""SpeakerSelector: one human voice reaches STT, agents never do."""

from __future__ import annotations

from pipecat.frames.frames import TextFrame, UserAudioRawFrame
from pipecat.tests.utils import run_test

from processors.speakers import SpeakerSelector


def _audio(identity: str) -> UserAudioRawFrame:
    return UserAudioRawFrame(audio=b"\x00\x00" * 160, sample_rate=16000, num_channels=1,
                             user_id=identity)


def _is_agent(identity: str) -> bool:
    return identity.startswith("agent-")


async def _passed(selector: SpeakerSelector, frames) -> list[str]:
    down, _ = await run_test(selector, frames_to_send=frames)
    return [f.user_id for f in down if isinstance(f, UserAudioRawFrame)]


async def test_first_human_heard_is_listened_to_and_agents_are_dropped():
    selector = SpeakerSelector(is_agent=_is_agent)
    frames = [_audio("agent-x"), _audio("alice"), _audio("bob"), _audio("agent-x"), _audio("alice")]
    assert await _passed(selector, frames) == ["alice", "alice"]
    assert selector.speaker == "alice"


async def test_active_speaker_switches_and_leaving_frees_the_floor():
    selector = SpeakerSelector(is_agent=_is_agent)
    selector.set_active_speaker("agent-x")  # an agent never takes the floor
    assert selector.speaker is None
    selector.set_active_speaker("bob")
    assert await _passed(selector, [_audio("alice"), _audio("bob")]) == ["bob"]
    selector.remove_participant("bob")
    assert await _passed(selector, [_audio("alice"), _audio("bob")]) == ["alice"]


async def test_other_frames_pass_untouched():
    down, _ = await run_test(SpeakerSelector(is_agent=_is_agent),
                             frames_to_send=[TextFrame("hi")], expected_down_frames=[TextFrame])
    assert down[0].text == "hi"
