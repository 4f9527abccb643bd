"""The caller's audio on a Media Stream: a 20 ms frame every 20 ms, speech queued, else silence."""

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from websockets.exceptions import ConnectionClosed

from testkit.phone_audio import MEDIA_FRAME_SECS, ULAW_SILENCE, ulaw_frames

# Sends the ``chunk``-th media message (counted from 1) with its mu-law payload.
SendFrame = Callable[[int, bytes], Awaitable[None]]


@dataclass(frozen=True)
class Utterance:
    """When the caller's speech went out: send times of its first and last media frames."""

    started_at: float
    ended_at: float


@dataclass
class _QueuedSpeech:
    """Caller audio waiting to be streamed, and the future ``say`` waits on."""

    frames: list[bytes]
    done: asyncio.Future[Utterance]
    next_index: int = 0
    started_at: float | None = None


class PacedMedia:
    """Twilio streams the caller's line for the whole call, silence included, in real time."""

    def __init__(self) -> None:
        self.started_at: float | None = None  # when the first frame went out
        self.sent_ulaw = bytearray()  # everything sent, for the call's recording
        self._speech: deque[_QueuedSpeech] = deque()

    def queue(self, pcm: bytes) -> asyncio.Future[Utterance]:
        """Queue 8 kHz PCM16 behind what is still being said; the future says when it went out."""
        frames = ulaw_frames(pcm)
        if not frames:
            raise ValueError("no audio to say")
        speech = _QueuedSpeech(frames, asyncio.get_running_loop().create_future())
        self._speech.append(speech)
        return speech.done

    async def run(self, send_frame: SendFrame) -> None:
        """Send one frame per tick until the connection closes or this is cancelled.

        Each tick is scheduled against the start, so the stream never drifts.
        """
        started = self.started_at = time.monotonic()
        chunk = 0
        try:
            while True:
                chunk += 1
                speech = self._speech[0] if self._speech else None
                payload = speech.frames[speech.next_index] if speech else ULAW_SILENCE
                sent_at = time.monotonic()
                await send_frame(chunk, payload)
                self.sent_ulaw += payload
                if speech:
                    self._advance(speech, sent_at)
                await asyncio.sleep(max(0.0, started + chunk * MEDIA_FRAME_SECS - time.monotonic()))
        except ConnectionClosed:
            pass
        finally:
            for speech in self._speech:
                if not speech.done.done():
                    speech.done.set_exception(
                        ConnectionError("the call ended before this was said")
                    )
            self._speech.clear()

    def _advance(self, speech: _QueuedSpeech, sent_at: float) -> None:
        if speech.started_at is None:
            speech.started_at = sent_at
        speech.next_index += 1
        if speech.next_index == len(speech.frames):
            self._speech.popleft()
            if not speech.done.done():
                speech.done.set_result(Utterance(speech.started_at, sent_at))
