"""A simulated phone caller that speaks Twilio's Media Streams protocol to a bot's websocket."""

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from testkit import media_stream
from testkit.media_stream import DTMF_DIGITS, TEST_ACCOUNT_SID, new_sid
from testkit.paced_media import PacedMedia, Utterance
from testkit.phone_audio import read_wav_8k, ulaw_to_pcm16
from testkit.playout import Playout, ReceivedMedia

DTMF_SPACING_SECS = 0.1
POLL_SECS = 0.01
# Bot audio arrives on pipecat's send clock, a few milliseconds late at times: a gap in the
# play-out this short is that, not a pause.
JITTER_SECS = 0.03
# The waits below take a ``timeout`` (ruff ASYNC109) so that they can say what did not happen.


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
        account_sid: str | None = TEST_ACCOUNT_SID,
        call_sid: str | None = None,
        stream_sid: str | None = None,
        handshake: bool = True,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Prepare a call to ``url``; nothing is sent before ``async with``.

        ``headers`` go with the WebSocket upgrade (Twilio's ``X-Twilio-Signature``).

        With ``handshake=False`` neither ``connected``/``start`` nor media are sent,
        so a test can drive the socket with ``send_raw`` (malformed handshakes).
        """
        self.url = url
        self.custom_parameters = dict(custom_parameters or {})
        self.account_sid = account_sid
        self.call_sid = call_sid or new_sid("CA")
        self.stream_sid = stream_sid or new_sid("MZ")
        self.handshake = handshake
        self.headers = dict(headers or {})

        self.start_sent_at: float | None = None
        self.media: list[ReceivedMedia] = []  # every stream's, as it arrived
        self.playout = Playout(echo_mark=self._echo_mark)  # this stream's: what was heard
        self.clears: list[float] = []
        self.marks_echoed: list[tuple[float, str]] = []
        self.unexpected: list[tuple[float, str | bytes]] = []
        self.wrong_stream_sid_messages = 0
        self.closed_by_server = False
        self.close_code: int | None = None

        self._ws: ClientConnection | None = None
        self._sequence = 0
        self._hung_up = False
        self._outgoing = PacedMedia()
        self._sender: asyncio.Task[None] | None = None
        self._receiver: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "SimulatedCaller":
        self._ws = await connect(
            self.url, compression=None, close_timeout=2, additional_headers=self.headers
        )
        self._receiver = asyncio.create_task(self._receive(), name="caller-receive")
        if self.handshake:
            try:
                await self._send(media_stream.connected())
                await self._send_event(
                    media_stream.start,
                    account_sid=self.account_sid,
                    call_sid=self.call_sid,
                    custom_parameters=self.custom_parameters,
                )
            except BaseException:
                await self.__aexit__(None, None, None)
                raise
            self.start_sent_at = time.monotonic()
            self._sender = asyncio.create_task(
                self._outgoing.run(self._send_media), name="caller-media"
            )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if not self._hung_up and not self.closed_by_server:
            with contextlib.suppress(ConnectionClosed):
                await self.hang_up()
        tasks = [t for t in (self._sender, self._receiver) if t]
        tasks += self.playout.echo_tasks()
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
        return await self._outgoing.queue(pcm)

    async def press(self, digits: str) -> None:
        """Press keys: one ``dtmf`` event per digit, about 100 ms apart."""
        if not digits or any(d not in DTMF_DIGITS for d in digits):
            raise ValueError(f"DTMF digits must be from {DTMF_DIGITS!r}, got {digits!r}")
        for i, digit in enumerate(digits):
            if i:
                await asyncio.sleep(DTMF_SPACING_SECS)
            await self._send_event(media_stream.dtmf, digit=digit)

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
            await self._send_event(
                media_stream.stop, account_sid=self.account_sid, call_sid=self.call_sid
            )
        await ws.close()

    async def wait_closed(self, timeout: float) -> None:  # noqa: ASYNC109
        """Wait for the socket to close (``closed_by_server`` says who closed it)."""
        assert self._receiver is not None, "use SimulatedCaller in 'async with'"
        done, _ = await asyncio.wait({self._receiver}, timeout=timeout)
        if not done:
            raise TimeoutError(f"the server did not close the stream within {timeout} s")

    # --- what the caller heard (see Playout) ----------------------------------------

    def first_media_after(self, t: float) -> float | None:
        """Arrival time of the first bot ``media`` message after ``t``, if any."""
        return self.playout.first_arrival_after(t)

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
        while time.monotonic() - self.playout.heard_until() < quiet_secs:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"the bot was not quiet for {quiet_secs} s within {timeout} s")
            await asyncio.sleep(POLL_SECS)
        return self.playout.end

    def bot_audio_pcm(self) -> bytes:
        """Everything the bot sent on this stream, as 8 kHz PCM16 (``clear`` not applied)."""
        return b"".join(m.pcm for m in self.media if m.stream_sid == self.stream_sid)

    def heard_pcm(self, since: float, until: float | None = None) -> bytes:
        """Bot audio as heard from ``since`` on the play-out clock (see ``Playout.pcm``)."""
        return self.playout.pcm(since, until)

    def bot_segments(
        self, gap_secs: float = 0.1, *, speech_only: bool = False
    ) -> list[tuple[float, float]]:
        """Bot speech as heard: (start, end) on the play-out clock (see ``Playout.segments``)."""
        return self.playout.segments(gap_secs, speech_only=speech_only)

    def bot_quiet_from(self, t: float) -> float:
        """When the caller heard the bot stop talking, from ``t`` on (``t`` if it was quiet).

        Gaps up to ``JITTER_SECS`` are not a stop: bot audio arrives on pipecat's send
        clock, a few milliseconds late at times.
        """
        for start, end in self.playout.segments(JITTER_SECS):
            if end > t:
                return end if start <= t else t
        return t

    def stereo_wav(self, path: str | Path) -> None:
        """Write the call as heard: caller on the left, bot on the right, on one clock."""
        caller_from = self._outgoing.started_at or self.start_sent_at or time.monotonic()
        caller_pcm = ulaw_to_pcm16(bytes(self._outgoing.sent_ulaw))
        self.playout.write_call_wav(path, caller_pcm=caller_pcm, caller_from=caller_from)

    # --- the websocket --------------------------------------------------------------

    def _connection(self) -> ClientConnection:
        if self._ws is None:
            raise RuntimeError("use SimulatedCaller in 'async with'")
        return self._ws

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence

    async def _send(self, message: dict[str, Any]) -> None:
        await self._connection().send(json.dumps(message))

    async def _send_event(self, build: Callable[..., dict[str, Any]], **fields: Any) -> None:
        """Send a ``media_stream`` message, numbered in sequence, on this stream."""
        await self._send(
            build(sequence=self._next_sequence(), stream_sid=self.stream_sid, **fields)
        )

    async def _send_media(self, chunk: int, payload: bytes) -> None:
        await self._send_event(media_stream.media, chunk=chunk, payload=payload)

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
        """Act on one bot message as Twilio does; other streams' marks and clears do nothing."""
        parsed = media_stream.bot_message(message)
        if parsed is None:
            self.unexpected.append((now, message))
            return
        stream_sid = parsed.get("streamSid")
        if stream_sid != self.stream_sid:
            self.wrong_stream_sid_messages += 1
        if parsed["event"] == "media":
            self._on_media(now, stream_sid, parsed)
        elif stream_sid != self.stream_sid:
            return
        elif parsed["event"] == "clear":
            self.clears.append(now)
            self.playout.clear(now)
        else:
            self.playout.mark(now, str(parsed.get("mark", {}).get("name", "")))

    def _on_media(self, now: float, stream_sid: Any, message: dict[str, Any]) -> None:
        try:
            pcm = ulaw_to_pcm16(media_stream.media_payload(message))
        except ValueError:
            self.unexpected.append((now, json.dumps(message)))
            return
        self.media.append(ReceivedMedia(now, str(stream_sid), pcm))
        # Twilio would not play another stream's audio.
        if stream_sid == self.stream_sid:
            self.playout.add(now, pcm)

    async def _echo_mark(self, name: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._send_event(media_stream.mark, name=name)
            self.marks_echoed.append((time.monotonic(), name))
