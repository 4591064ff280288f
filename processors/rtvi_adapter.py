"""RTVI 2.2 as this project's clients read it: Pipecat 1.14's RTVI processor and observer, adapted.

In this pipeline Pipecat 1.14's `RTVIObserver` sends, to a 2.2.0 client, messages the protocol
does not allow or a client cannot use:
  - `bot-output` "in-progress" before the segment's "new" (the "new" waits in the observer for
    the bot to start speaking, while its word progress comes from the transport's clock);
  - `bot-interrupted` on every user turn, also while the bot was silent;
  - `metrics` with empty data (metrics kinds the observer does not translate);
  - the v1 field `spoken` on `bot-output` for every client.
It also sends a `server-message` when it is pushed, never at playout. This module is the one
place that adapts them, at the observer's documented override point (`send_rtvi_message`), and
adds the `PlayoutServerMessageFrame`, sent when the output transport passes it on or hands
over the audio after it (with its `played_ms` corrected by the audio LiveKit still holds then).
tests/unit/test_rtvi_adapter_pipecat_1_14.py pins the Pipecat behaviour relied on.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

import pipecat.processors.frameworks.rtvi.models as RTVI
from loguru import logger
from pipecat.frames.frames import InterruptionFrame, OutputAudioRawFrame
from pipecat.observers.base_observer import FramePushed
from pipecat.processors.frame_processor import FrameDirection
from pipecat.processors.frameworks.rtvi import RTVIObserver, RTVIObserverParams, RTVIProcessor
from pipecat.transports.base_output import BaseOutputTransport
from pydantic import BaseModel

from processors.frames import PlayoutServerMessageFrame
from processors.livekit_transport_adapter import queued_audio_s

# Key of a playout message's data saying how much of its audio had been played when it was sent.
PLAYED_MS_KEY = "played_ms"
# Segments remembered as announced ("new" sent): enough for every segment of a long reply.
ANNOUNCED_SEGMENTS_KEPT = 256


class PlayoutRTVIObserver(RTVIObserver):
    """Pipecat's RTVI observer with the protocol fixes above and playout-timed server messages."""

    def __init__(self, rtvi: RTVIProcessor, *, params: RTVIObserverParams | None = None,
                 **kwargs):
        super().__init__(rtvi, params=params, **kwargs)
        self._rtvi_processor = rtvi
        self._bot_speaking = False
        # Segment id → True, for the bot-output segments whose "new" message went out.
        self._announced: OrderedDict[int, bool] = OrderedDict()
        # Playout messages the transport passed on that wait for the audio after them.
        self._awaiting_audio: list[PlayoutServerMessageFrame] = []

    async def on_push_frame(self, data: FramePushed):
        frame = data.frame
        played_out = (isinstance(data.source, BaseOutputTransport)
                      and data.direction == FrameDirection.DOWNSTREAM)
        if isinstance(frame, PlayoutServerMessageFrame):
            if played_out and frame.with_next_audio:
                self._awaiting_audio.append(frame)
            elif played_out:
                # played_out checked that the source is a BaseOutputTransport
                await self._send_playout(frame, queued_audio_s(data.source))  # type: ignore[arg-type]
            return
        if played_out and self._awaiting_audio and isinstance(frame, OutputAudioRawFrame):
            # That audio was just handed over: what is still queued before it has to play first.
            ahead = queued_audio_s(data.source) - frame.num_frames / frame.sample_rate  # type: ignore[arg-type]
            waiting, self._awaiting_audio = self._awaiting_audio, []
            for message in waiting:
                await self._send_playout(message, max(ahead, 0.0))
        elif isinstance(frame, InterruptionFrame):
            self._awaiting_audio.clear()
        await super().on_push_frame(data)

    async def _send_playout(self, frame: PlayoutServerMessageFrame, unplayed_s: float):
        logger.debug(
            f"{self}: {frame.data.get('type')} at playout, {unplayed_s:.3f} s queued ahead"
        )
        await self.send_rtvi_message(RTVI.ServerMessage(data=_at_playout(frame.data, unplayed_s)))

    async def send_rtvi_message(self, model: BaseModel, exclude_none: bool = True):
        for message in self._conforming(model):
            await super().send_rtvi_message(message, exclude_none)

    def _conforming(self, model: BaseModel) -> list[BaseModel]:
        """The messages to send for one the observer would send (none, it, or more)."""
        if isinstance(model, RTVI.MetricsMessage):
            return [model] if model.data else []
        if isinstance(model, RTVI.BotStartedSpeakingMessage):
            self._bot_speaking = True
        elif isinstance(model, RTVI.BotStoppedSpeakingMessage):
            self._bot_speaking = False
        elif isinstance(model, RTVI.BotInterruptedMessage):
            return [model] if self._bot_speaking else []
        elif isinstance(model, RTVI.BotOutputMessage) and not self._legacy_client:
            return self._bot_output(model)
        return [model]

    @property
    def _legacy_client(self) -> bool:
        return self._rtvi_processor.client_version[0] == RTVI.LEGACY_SUPPORTED_MAJOR

    def _bot_output(self, model: RTVI.BotOutputMessage) -> list[BaseModel]:
        """A 2.x `bot-output`: without `spoken`, and each segment's "new" first and once."""
        data = model.data.model_copy(update={"spoken": None})
        segment = data.segment_id
        if segment is None:
            return [model.model_copy(update={"data": data})]
        out: list[BaseModel] = []
        if data.spoken_status == "new":
            if segment in self._announced:
                return []  # announced already, when its first word came before it
        elif segment not in self._announced and data.spoken_progress is not None:
            progress = data.spoken_progress
            whole = progress.accumulated_text + progress.remaining_text
            out.append(
                RTVI.BotOutputMessage(
                    data=data.model_copy(
                        update={
                            "text": whole,
                            "spoken_status": "new",
                            "spoken_progress": RTVI.SpokenProgressData(
                                accumulated_text="", remaining_text=whole
                            ),
                        }
                    )
                )
            )
        self._announced[segment] = True
        while len(self._announced) > ANNOUNCED_SEGMENTS_KEPT:
            self._announced.popitem(last=False)
        out.append(model.model_copy(update={"data": data}))
        return out


def _at_playout(data: dict, unplayed_s: float) -> dict:
    """A playout message's data, its `played_ms` (if any) less the audio still queued."""
    if PLAYED_MS_KEY not in data:
        return data
    return {**data, PLAYED_MS_KEY: data[PLAYED_MS_KEY] - round(unplayed_s * 1000)}


class PlayoutRTVIProcessor(RTVIProcessor):
    """Pipecat's RTVI processor that creates a PlayoutRTVIObserver and can be awaited ready.

    Give it to `PipelineWorker(rtvi_processor=...)`; the worker then adds its observer.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._ready = asyncio.Event()

    def create_rtvi_observer(self, *, params: RTVIObserverParams | None = None, **kwargs):
        return PlayoutRTVIObserver(self, params=params, **kwargs)

    async def set_bot_ready(self, about=None):
        await super().set_bot_ready(about=about)
        self._ready.set()

    async def wait_bot_ready(self, timeout: float) -> bool:  # noqa: ASYNC109 (poll deadline)
        """Wait until `bot-ready` was sent (a client said client-ready), at most `timeout` s."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True
