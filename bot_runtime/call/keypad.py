"""The phone keypad: a lone 0 asks for a person; other key sequences reach the conversation."""

import time
from collections.abc import Awaitable, Callable

from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import Frame, InputDTMFFrame
from pipecat.processors.aggregators.dtmf_aggregator import DTMFAggregator
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

# A pause this long ends a key sequence, as does the pound key.
SEQUENCE_TIMEOUT_SECS = 2.0
# How key sequences appear to the LLM (the system prompt explains it).
DTMF_PREFIX = "Keypad: "


def keypad_to_text() -> DTMFAggregator:
    """pipecat's aggregator: one transcription per key sequence, ended by # or a pause."""
    return DTMFAggregator(
        timeout=SEQUENCE_TIMEOUT_SECS, termination_digit=KeypadEntry.POUND, prefix=DTMF_PREFIX
    )


class TransferKey(FrameProcessor):
    """Turns a 0 pressed on its own into a transfer request; every other press passes on.

    "On its own" means not in the middle of a sequence (an order number may contain
    zeros): the previous key was # or came more than SEQUENCE_TIMEOUT_SECS ago.
    Every key pressed is also reported to ``on_key`` (for the call record).
    """

    def __init__(
        self, on_transfer: Callable[[], Awaitable[None]], *, on_key: Callable[[str], None]
    ):
        super().__init__()
        self._on_transfer = on_transfer
        self._on_key = on_key
        self._sequence_open_until = 0.0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputDTMFFrame):
            self._on_key(frame.button.value)
            now = time.monotonic()
            in_sequence = now < self._sequence_open_until
            if frame.button == KeypadEntry.ZERO and not in_sequence:
                await self._on_transfer()
                return
            ends_sequence = frame.button == KeypadEntry.POUND
            self._sequence_open_until = 0.0 if ends_sequence else now + SEQUENCE_TIMEOUT_SECS
        await self.push_frame(frame, direction)
