"""What a simulated caller heard: the bot's audio played out in real time, as Twilio plays it."""

import asyncio
import bisect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from testkit.phone_audio import is_quiet, pcm16_bytes, pcm16_secs, write_stereo_wav


@dataclass(frozen=True)
class ReceivedMedia:
    """One ``media`` message from the bot, decoded to PCM16."""

    arrived_at: float
    stream_sid: str
    pcm: bytes


@dataclass
class _PendingMark:
    """A ``mark`` from the bot, echoed once the audio queued before it has played."""

    name: str
    task: asyncio.Task[None] | None = None


@dataclass
class PlayedChunk:
    """Bot audio on the play-out clock; ``clear`` may cut ``end`` and ``pcm`` short."""

    start: float
    end: float
    pcm: bytes


class Playout:
    """The bot's audio on one stream, on the caller's play-out clock (``time.monotonic``).

    Twilio buffers what the bot sends and plays it in real time: audio that arrives
    while earlier audio plays waits its turn, ``clear`` drops what has not played, and
    a ``mark`` is echoed (with ``echo_mark``) once the audio before it has played.
    """

    def __init__(self, *, echo_mark: Callable[[str], Awaitable[None]]) -> None:
        self.chunks: list[PlayedChunk] = []
        self.arrivals: list[float] = []  # in order, for fast look-ups
        self.end = 0.0  # when the last chunk has played
        self._echo_mark = echo_mark
        self._pending_marks: list[_PendingMark] = []

    def add(self, now: float, pcm: bytes) -> None:
        """Audio that arrived at ``now``: it plays once everything before it has."""
        self.arrivals.append(now)
        start = max(now, self.end)
        self.end = start + pcm16_secs(pcm)
        self.chunks.append(PlayedChunk(start, self.end, pcm))

    def clear(self, now: float) -> None:
        """Drop what has not played by ``now``, cutting short the chunk playing then.

        Marks waiting for the dropped audio are echoed at once, as Twilio does.
        """
        kept: list[PlayedChunk] = []
        for chunk in self.chunks:
            if chunk.start >= now:
                continue
            if chunk.end > now:
                chunk.pcm = chunk.pcm[: pcm16_bytes(now - chunk.start)]
                chunk.end = now
            kept.append(chunk)
        self.chunks = kept
        self.end = min(self.end, now)
        pending, self._pending_marks = self._pending_marks, []
        for mark in pending:
            if mark.task:
                mark.task.cancel()
            self._spawn_echo(mark.name, delay=0.0)

    def mark(self, now: float, name: str) -> None:
        """A mark that arrived at ``now``: echoed when the audio queued before it has played."""
        self._spawn_echo(name, delay=max(0.0, self.end - now))

    def echo_tasks(self) -> list[asyncio.Task[None]]:
        """The echoes still waiting for their audio to play, for the caller to end."""
        return [mark.task for mark in self._pending_marks if mark.task]

    def _spawn_echo(self, name: str, *, delay: float) -> None:
        mark = _PendingMark(name)
        mark.task = asyncio.create_task(self._echo_after(mark, delay), name=f"caller-mark-{name}")
        self._pending_marks.append(mark)

    async def _echo_after(self, mark: _PendingMark, delay: float) -> None:
        await asyncio.sleep(delay)
        self._pending_marks.remove(mark)
        await self._echo_mark(mark.name)

    def first_arrival_after(self, t: float) -> float | None:
        """When the first audio after ``t`` arrived, if any has."""
        index = bisect.bisect_right(self.arrivals, t)
        return self.arrivals[index] if index < len(self.arrivals) else None

    def heard_until(self) -> float:
        """The latest of the end of play-out and the last arrival."""
        return max(self.end, self.arrivals[-1] if self.arrivals else float("-inf"))

    def pcm(self, since: float, until: float | None = None) -> bytes:
        """Bot audio as the caller heard it (``clear`` applied), played from ``since`` on.

        This is what to transcribe to check that a reply was intelligible.
        """
        return b"".join(
            chunk.pcm
            for chunk in self.chunks
            if chunk.start >= since and (until is None or chunk.start < until)
        )

    def segments(
        self, gap_secs: float = 0.1, *, speech_only: bool = False
    ) -> list[tuple[float, float]]:
        """Bot speech as heard: (start, end) on the play-out clock.

        A gap longer than ``gap_secs`` splits segments, so a gap inside one utterance
        shows the bot's audio arriving too late to play smoothly (an underrun). With
        ``speech_only``, silent media counts as a gap: a bot that pads with silence
        must not hide the moments its speech ran dry.
        """
        segments: list[tuple[float, float]] = []
        for chunk in self.chunks:
            if chunk.end <= chunk.start or (speech_only and is_quiet(chunk.pcm)):
                continue
            if segments and chunk.start - segments[-1][1] <= gap_secs:
                segments[-1] = (segments[-1][0], max(segments[-1][1], chunk.end))
            else:
                segments.append((chunk.start, chunk.end))
        return segments

    def write_call_wav(self, path: str | Path, *, caller_pcm: bytes, caller_from: float) -> None:
        """The call as heard, on one clock: ``caller_pcm`` (sent from ``caller_from``) on the
        left, this audio on the right."""
        ends = [pcm16_bytes(c.start - caller_from) + len(c.pcm) for c in self.chunks]
        bot = bytearray(max(ends, default=0))
        for chunk in self.chunks:
            offset = pcm16_bytes(chunk.start - caller_from)
            bot[offset : offset + len(chunk.pcm)] = chunk.pcm
        write_stereo_wav(path, left=caller_pcm, right=bytes(bot))
