"""A simulated phone caller that speaks Twilio's Media Streams protocol to a bot's websocket."""

import asyncio
import base64
import bisect
import contextlib
import json
import secrets
import time
import warnings
import wave
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

with warnings.catch_warnings():
    # Deprecated on 3.11-3.12; on 3.13+ pipecat installs audioop-lts under the same name.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

SAMPLE_RATE = 8000
FRAME_SECS = 0.02
FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law, one byte per sample
ULAW_SILENCE = b"\xff" * FRAME_BYTES
# Bot audio quieter than this (RMS of 16-bit samples, about -66 dBFS) is silence, not speech.
QUIET_RMS = 16
DTMF_DIGITS = "0123456789*#"
DTMF_SPACING_SECS = 0.1
# Looks like an account SID but cannot be mistaken for a real one ("7e57ca11" reads "test call").
TEST_ACCOUNT_SID = "AC" + "7e57ca11" * 4
POLL_SECS = 0.01
# The waits below take a ``timeout`` (ruff ASYNC109) so that they can say what did not happen.


def pcm16_to_ulaw(pcm: bytes) -> bytes:
    """Encode 16-bit little-endian PCM as G.711 mu-law."""
    return audioop.lin2ulaw(pcm, 2)


def ulaw_to_pcm16(ulaw: bytes) -> bytes:
    """Decode G.711 mu-law to 16-bit little-endian PCM."""
    return audioop.ulaw2lin(ulaw, 2)


def read_wav_8k(path: str | Path) -> bytes:
    """Return the PCM of an 8 kHz mono 16-bit WAV, refusing any other format.

    Resampling here would hide a test-data mistake, so other formats are an error.
    """
    with wave.open(str(path), "rb") as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        if (rate, channels, width) != (SAMPLE_RATE, 1, 2):
            raise ValueError(
                f"{path}: need an 8000 Hz mono 16-bit WAV, "
                f"got {rate} Hz, {channels} channel(s), {8 * width}-bit"
            )
        return wav.readframes(wav.getnframes())


def new_sid(prefix: str) -> str:
    """A fresh Twilio-style SID: two-letter prefix and 32 hex digits."""
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True)
class Utterance:
    """When the caller's speech went out: send times of its first and last media frames."""

    started_at: float
    ended_at: float


@dataclass(frozen=True)
class ReceivedMedia:
    """One ``media`` message from the bot, decoded to PCM16."""

    arrived_at: float
    stream_sid: str
    pcm: bytes


@dataclass
class _PlayedChunk:
    """Bot audio on the play-out clock; ``clear`` may cut ``end`` and ``pcm`` short."""

    start: float
    end: float
    pcm: bytes


@dataclass
class _QueuedSpeech:
    """Caller audio waiting to be streamed, and the future ``say`` waits on."""

    frames: list[bytes]
    done: asyncio.Future[Utterance]
    next_index: int = 0
    started_at: float | None = None


@dataclass
class _PendingMark:
    """A ``mark`` from the bot, echoed once the audio queued before it has played."""

    name: str
    task: asyncio.Task[None] | None = None


class SimulatedCaller:
    """A caller on a Twilio ``<Connect><Stream>``, as seen by the bot's websocket.

    It behaves like Twilio: ``connected`` and ``start``, then one 20 ms ``media``
    message in real time for the whole call (silence when the caller is quiet), DTMF
    events, and ``stop`` on hang-up. Bot audio is played out in real time so that
    ``clear`` and ``mark`` behave as they do on a real call.
    """

    def __init__(
        self,
        url: str,
        *,
        custom_parameters: dict[str, str] | None = None,
        account_sid: str = TEST_ACCOUNT_SID,
        call_sid: str | None = None,
        stream_sid: str | None = None,
        handshake: bool = True,
    ) -> None:
        """Prepare a call to ``url``; nothing is sent before ``async with``.

        With ``handshake=False`` neither ``connected``/``start`` nor media are sent,
        so a test can drive the socket with ``send_raw`` (malformed handshakes).
        """
        self.url = url
        self.custom_parameters = dict(custom_parameters or {})
        self.account_sid = account_sid
        self.call_sid = call_sid or new_sid("CA")
        self.stream_sid = stream_sid or new_sid("MZ")
        self.handshake = handshake

        self.start_sent_at: float | None = None
        self.media: list[ReceivedMedia] = []
        self._heard_arrivals: list[float] = []  # this stream's media, for fast look-ups
        self.clears: list[float] = []
        self.marks_echoed: list[tuple[float, str]] = []
        self.unexpected: list[tuple[float, str | bytes]] = []
        self.wrong_stream_sid_messages = 0
        self.closed_by_server = False
        self.close_code: int | None = None

        self._ws: ClientConnection | None = None
        self._sequence = 0
        self._hung_up = False
        self._speech: deque[_QueuedSpeech] = deque()
        self._sent_ulaw = bytearray()
        self._media_started_at: float | None = None
        self._playout: list[_PlayedChunk] = []
        self._playout_end = 0.0
        self._pending_marks: list[_PendingMark] = []
        self._sender: asyncio.Task[None] | None = None
        self._receiver: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "SimulatedCaller":
        self._ws = await connect(self.url, compression=None, close_timeout=2)
        self._receiver = asyncio.create_task(self._receive(), name="caller-receive")
        if self.handshake:
            try:
                await self._send_json(
                    {"event": "connected", "protocol": "Call", "version": "1.0.0"}
                )
                await self._send_json(self._start_message())
            except BaseException:
                await self.__aexit__(None, None, None)
                raise
            self.start_sent_at = time.monotonic()
            self._sender = asyncio.create_task(self._stream_media(), name="caller-media")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if not self._hung_up and not self.closed_by_server:
            with contextlib.suppress(ConnectionClosed):
                await self.hang_up()
        tasks = [t for t in (self._sender, self._receiver) if t]
        tasks += [m.task for m in self._pending_marks if m.task]
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                raise result

    # --- what the caller does -------------------------------------------------------

    async def say(self, audio: str | Path | bytes) -> Utterance:
        """Speak a WAV file (8 kHz mono 16-bit) or raw 8 kHz PCM16; return when it was sent.

        Audio queues behind anything still being said, like a caller who keeps talking.
        """
        if isinstance(audio, bytes):
            if len(audio) % 2:
                raise ValueError("PCM16 audio must have an even number of bytes")
            pcm = audio
        else:
            pcm = read_wav_8k(audio)
        if self._sender is None or self._sender.done():
            raise RuntimeError("the media stream is not running (handshake off or call ended)")
        ulaw = pcm16_to_ulaw(pcm)
        frames = [
            ulaw[i : i + FRAME_BYTES].ljust(FRAME_BYTES, b"\xff")
            for i in range(0, len(ulaw), FRAME_BYTES)
        ]
        if not frames:
            raise ValueError("no audio to say")
        speech = _QueuedSpeech(frames, asyncio.get_running_loop().create_future())
        self._speech.append(speech)
        return await speech.done

    async def press(self, digits: str) -> None:
        """Press keys: one ``dtmf`` event per digit, about 100 ms apart."""
        if not digits or any(d not in DTMF_DIGITS for d in digits):
            raise ValueError(f"DTMF digits must be from {DTMF_DIGITS!r}, got {digits!r}")
        for i, digit in enumerate(digits):
            if i:
                await asyncio.sleep(DTMF_SPACING_SECS)
            await self._send_json(
                {
                    "event": "dtmf",
                    "streamSid": self.stream_sid,
                    "sequenceNumber": self._next_sequence(),
                    "dtmf": {"track": "inbound_track", "digit": digit},
                }
            )

    async def send_raw(self, data: str | bytes) -> None:
        """Send anything as-is, for tests of malformed input."""
        await self._connection().send(data)

    async def hang_up(self) -> None:
        """Send ``stop`` and close the socket, as Twilio does when the caller hangs up."""
        if self._hung_up:
            return
        self._hung_up = True
        ws = self._connection()
        if self._sender:
            self._sender.cancel()
        with contextlib.suppress(ConnectionClosed):
            await self._send_json(
                {
                    "event": "stop",
                    "sequenceNumber": self._next_sequence(),
                    "streamSid": self.stream_sid,
                    "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                }
            )
        await ws.close()

    async def wait_closed(self, timeout: float) -> None:  # noqa: ASYNC109
        """Wait for the socket to close (``closed_by_server`` says who closed it)."""
        assert self._receiver is not None, "use SimulatedCaller in 'async with'"
        done, _ = await asyncio.wait({self._receiver}, timeout=timeout)
        if not done:
            raise TimeoutError(f"the server did not close the stream within {timeout} s")

    # --- what the caller heard ------------------------------------------------------

    def first_media_after(self, t: float) -> float | None:
        """Arrival time of the first bot ``media`` message after ``t``, if any."""
        index = bisect.bisect_right(self._heard_arrivals, t)
        return self._heard_arrivals[index] if index < len(self._heard_arrivals) else None

    async def wait_for_bot_audio(
        self,
        *,
        after: float | None = None,
        timeout: float,  # noqa: ASYNC109
    ) -> float:
        """Wait for bot audio that arrives after ``after`` (default: any); return its arrival."""
        since = float("-inf") if after is None else after
        deadline = time.monotonic() + timeout
        while (arrived := self.first_media_after(since)) is None:
            if self._receiver is None or self._receiver.done():
                raise ConnectionError(
                    f"the stream closed (code {self.close_code}) before any bot audio"
                )
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no bot audio within {timeout} s")
            await asyncio.sleep(POLL_SECS)
        return arrived

    async def wait_for_bot_silence(
        self,
        *,
        quiet_secs: float = 0.6,
        timeout: float,  # noqa: ASYNC109
    ) -> float:
        """Wait until play-out has finished and nothing new came for ``quiet_secs``.

        Returns when the caller stopped hearing the bot (end of play-out).
        """
        deadline = time.monotonic() + timeout
        while True:
            last_arrival = self._heard_arrivals[-1] if self._heard_arrivals else float("-inf")
            heard_until = max(self._playout_end, last_arrival)
            if time.monotonic() - heard_until >= quiet_secs:
                return self._playout_end
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the bot was not quiet for {quiet_secs} s within {timeout} s")
            await asyncio.sleep(POLL_SECS)

    def bot_audio_pcm(self) -> bytes:
        """Everything the bot sent on this stream, as 8 kHz PCM16 (``clear`` not applied)."""
        return b"".join(m.pcm for m in self._heard())

    def heard_pcm(self, since: float, until: float | None = None) -> bytes:
        """Bot audio as the caller heard it (``clear`` applied), played from ``since`` on.

        Times are on the play-out clock, as returned by ``wait_for_bot_silence``; this
        is what to transcribe to check that a reply was intelligible.
        """
        return b"".join(
            chunk.pcm
            for chunk in self._playout
            if chunk.start >= since and (until is None or chunk.start < until)
        )

    def bot_segments(
        self, gap_secs: float = 0.1, *, speech_only: bool = False
    ) -> list[tuple[float, float]]:
        """Bot speech as heard: (start, end) on the play-out clock.

        A gap longer than ``gap_secs`` splits segments, so a gap inside one utterance
        shows the bot's audio arriving too late to play smoothly (an underrun). With
        ``speech_only``, silent media counts as a gap: a bot that pads with silence
        must not hide the moments its speech ran dry.
        """
        segments: list[tuple[float, float]] = []
        for chunk in self._playout:
            if chunk.end <= chunk.start:
                continue
            if speech_only and audioop.rms(chunk.pcm, 2) < QUIET_RMS:
                continue
            if segments and chunk.start - segments[-1][1] <= gap_secs:
                segments[-1] = (segments[-1][0], max(segments[-1][1], chunk.end))
            else:
                segments.append((chunk.start, chunk.end))
        return segments

    def stereo_wav(self, path: str | Path) -> None:
        """Write the call as heard: caller on the left, bot on the right, on one clock."""
        t0 = self._media_started_at or self.start_sent_at or time.monotonic()
        left = ulaw_to_pcm16(bytes(self._sent_ulaw))
        ends = [self._byte_offset(c.start, t0) + len(c.pcm) for c in self._playout]
        right = bytearray(max([len(left), *ends]))
        for chunk in self._playout:
            offset = self._byte_offset(chunk.start, t0)
            right[offset : offset + len(chunk.pcm)] = chunk.pcm
        left = left.ljust(len(right), b"\x00")
        stereo = audioop.add(
            audioop.tostereo(left, 2, 1, 0), audioop.tostereo(bytes(right), 2, 0, 1), 2
        )
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(SAMPLE_RATE)
            wav.writeframes(stereo)

    # --- internals --------------------------------------------------------------

    def _connection(self) -> ClientConnection:
        if self._ws is None:
            raise RuntimeError("use SimulatedCaller in 'async with'")
        return self._ws

    def _heard(self) -> list[ReceivedMedia]:
        """Media on this call's stream; Twilio would not play another stream's audio."""
        return [m for m in self.media if m.stream_sid == self.stream_sid]

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    async def _send_json(self, message: dict[str, Any]) -> None:
        await self._connection().send(json.dumps(message))

    @staticmethod
    def _byte_offset(t: float, t0: float) -> int:
        return max(0, round((t - t0) * SAMPLE_RATE)) * 2

    def _start_message(self) -> dict[str, Any]:
        return {
            "event": "start",
            "sequenceNumber": self._next_sequence(),
            "streamSid": self.stream_sid,
            "start": {
                "streamSid": self.stream_sid,
                "accountSid": self.account_sid,
                "callSid": self.call_sid,
                "tracks": ["inbound"],
                "customParameters": self.custom_parameters,
                "mediaFormat": {
                    "encoding": "audio/x-mulaw",
                    "sampleRate": SAMPLE_RATE,
                    "channels": 1,
                },
            },
        }

    async def _stream_media(self) -> None:
        """Send one 20 ms frame per tick, scheduled against the clock so it never drifts."""
        started = self._media_started_at = time.monotonic()
        chunk = 0
        try:
            while True:
                chunk += 1
                speech = self._speech[0] if self._speech else None
                payload = speech.frames[speech.next_index] if speech else ULAW_SILENCE
                sent_at = time.monotonic()
                await self._send_json(
                    {
                        "event": "media",
                        "sequenceNumber": self._next_sequence(),
                        "streamSid": self.stream_sid,
                        "media": {
                            "track": "inbound",
                            "chunk": str(chunk),
                            "timestamp": str(chunk * 20),
                            "payload": base64.b64encode(payload).decode(),
                        },
                    }
                )
                self._sent_ulaw += payload
                if speech:
                    self._advance(speech, sent_at)
                await asyncio.sleep(max(0.0, started + chunk * FRAME_SECS - time.monotonic()))
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

    async def _receive(self) -> None:
        ws = self._connection()
        try:
            async for message in ws:
                self._handle(time.monotonic(), message)
        except ConnectionClosed:
            pass
        finally:
            self.close_code = ws.close_code
            self.closed_by_server = not self._hung_up

    def _handle(self, now: float, message: str | bytes) -> None:
        """Sort one server message; Twilio accepts only JSON text ``media``/``clear``/``mark``."""
        parsed = None
        if isinstance(message, str):
            with contextlib.suppress(ValueError):
                parsed = json.loads(message)
        event = parsed.get("event") if isinstance(parsed, dict) else None
        if event not in ("media", "clear", "mark"):
            self.unexpected.append((now, message))
            return
        stream_sid = parsed.get("streamSid")
        if stream_sid != self.stream_sid:
            self.wrong_stream_sid_messages += 1
        if event == "media":
            self._on_media(now, stream_sid, parsed)
        elif stream_sid != self.stream_sid:
            return
        elif event == "clear":
            self._on_clear(now)
        else:
            self._on_mark(now, str(parsed.get("mark", {}).get("name", "")))

    def _on_media(self, now: float, stream_sid: Any, message: dict[str, Any]) -> None:
        try:
            pcm = ulaw_to_pcm16(base64.b64decode(message["media"]["payload"], validate=True))
        except (KeyError, TypeError, ValueError):
            self.unexpected.append((now, json.dumps(message)))
            return
        self.media.append(ReceivedMedia(now, str(stream_sid), pcm))
        if stream_sid != self.stream_sid:
            return
        self._heard_arrivals.append(now)
        start = max(now, self._playout_end)
        self._playout_end = start + len(pcm) / 2 / SAMPLE_RATE
        self._playout.append(_PlayedChunk(start, self._playout_end, pcm))

    def _on_clear(self, now: float) -> None:
        """Drop what has not been played yet; marks behind it are echoed at once."""
        self.clears.append(now)
        kept: list[_PlayedChunk] = []
        for chunk in self._playout:
            if chunk.start >= now:
                continue
            if chunk.end > now:
                chunk.pcm = chunk.pcm[: round((now - chunk.start) * SAMPLE_RATE) * 2]
                chunk.end = now
            kept.append(chunk)
        self._playout = kept
        self._playout_end = min(self._playout_end, now)
        pending, self._pending_marks = self._pending_marks, []
        for mark in pending:
            if mark.task:
                mark.task.cancel()
            self._spawn_echo(mark.name, delay=0.0)

    def _on_mark(self, now: float, name: str) -> None:
        self._spawn_echo(name, delay=max(0.0, self._playout_end - now))

    def _spawn_echo(self, name: str, *, delay: float) -> None:
        mark = _PendingMark(name)
        mark.task = asyncio.create_task(self._echo_mark(mark, delay), name=f"caller-mark-{name}")
        self._pending_marks.append(mark)

    async def _echo_mark(self, mark: _PendingMark, delay: float) -> None:
        await asyncio.sleep(delay)
        self._pending_marks.remove(mark)
        with contextlib.suppress(ConnectionClosed):
            await self._send_json(
                {
                    "event": "mark",
                    "streamSid": self.stream_sid,
                    "sequenceNumber": self._next_sequence(),
                    "mark": {"name": mark.name},
                }
            )
            self.marks_echoed.append((time.monotonic(), mark.name))
