"""Twilio Media Streams on the bot's side: the stream's handshake and the guarded serializer."""

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket
from loguru import logger
from pipecat.audio.utils import create_stream_resampler, ulaw_to_pcm
from pipecat.evals.serializer import EvalConnectionFlags, parse_eval_connect
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.serializers.twilio import TwilioFrameSerializer

from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from bot_runtime.turns.speech_hold import SpeechHold
from bot_runtime.twilio.messages import (
    Malformed,
    dtmf_key,
    mark_name,
    media_payload,
    parse_message,
)

# The custom parameters of a TwiML <Stream>, as Pipecat Cloud forwards them, are small.
MAX_CUSTOM_PARAMETERS_BYTES = 8 * 1024
# Twilio's SIDs: a two-letter prefix and 32 lowercase hex digits. An id of any other shape
# never reaches a REST path or a log line.
_TWILIO_SID = {
    "callSid": re.compile(r"CA[0-9a-f]{32}"),
    "streamSid": re.compile(r"MZ[0-9a-f]{32}"),
    "accountSid": re.compile(r"AC[0-9a-f]{32}"),
}
# pipecat-examples' local Twilio test client names its call and stream with str(uuid.uuid4()).
_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
# Twilio sends the caller's audio in 20 ms messages. Every frame costs the same to move
# through the pipeline whatever its length, so two go on together as one 40 ms frame:
# half the per-frame work for every processor and the STT socket, for a few ms of delay.
CALLER_FRAME_SECS = 0.04
# Twilio answers a hang-up in well under a second: one unanswered after a few seconds is not
# coming, and the end of the call (and its record) waits for it. The stream's close, which
# follows, ends a call whose TwiML has nothing after <Connect> anyway.
HANG_UP_TIMEOUT_SECS = 5.0


class StreamRejected(Exception):
    """The peer did not open the stream the way Twilio does; the message says how."""


@dataclass(frozen=True)
class StreamStart:
    """What Twilio's ``start`` message says about the call."""

    stream_sid: str
    call_sid: str
    account_sid: str | None
    custom_parameters: dict[str, str] = field(default_factory=dict)
    # A local test client's call (uuid ids, development runner only): Twilio does not know it.
    local_test: bool = False
    # When the bot read it (time.monotonic): what a caller's wait for the greeting counts from.
    received_at: float = field(default_factory=time.monotonic, compare=False)


@dataclass(frozen=True)
class EvalConnect:
    """pipecat's eval harness opened the socket: its ``eval-connect`` message came first."""

    flags: EvalConnectionFlags
    received_at: float = field(default_factory=time.monotonic, compare=False)


async def read_stream_start(
    websocket: WebSocket, *, accept_local_test_ids: bool = False, timeout_secs: float = 10.0
) -> StreamStart | EvalConnect:
    """Read messages up to and including ``start``, and return what it says.

    Twilio sends ``connected`` and then ``start`` before any audio, and Pipecat
    Cloud forwards both. Anything else before ``start`` means the peer is not a
    Media Stream (or is broken), so it raises StreamRejected instead of guessing.
    So does a ``start`` whose ids are not Twilio's SIDs, unless
    ``accept_local_test_ids`` (the development runner) and they are the uuid4 ids
    of pipecat-examples' local test client: such a stream is ``local_test``.
    The one exception is pipecat's eval harness, whose ``eval-connect`` comes as the
    first message: that is returned as an ``EvalConnect``, for the caller to authorise.
    """
    deadline = time.monotonic() + timeout_secs
    first = True
    while True:
        remaining = deadline - time.monotonic()
        try:
            message = await asyncio.wait_for(websocket.receive(), timeout=max(remaining, 0))
        except TimeoutError:
            raise StreamRejected(f"no 'start' message within {timeout_secs:g} s") from None
        if message["type"] == "websocket.disconnect":
            raise StreamRejected("the socket closed before the 'start' message")
        event = _decode_handshake_message(message)
        if first and (harness := _eval_connect(event)):
            return harness
        first = False
        if event.get("event") == "connected":
            continue
        if event.get("event") == "start":
            return _parse_start(event, accept_local_test_ids=accept_local_test_ids)
        raise StreamRejected(f"expected 'connected' or 'start', got {_describe_event(event)}")


def _decode_handshake_message(message: dict[str, Any]) -> dict[str, Any]:
    text = message.get("text")
    if text is None:
        raise StreamRejected("binary frame before 'start' (Twilio sends JSON text)")
    try:
        return parse_message(text)
    except Malformed as problem:
        raise StreamRejected(f"{problem} before 'start'") from None


def _eval_connect(event: dict[str, Any]) -> EvalConnect | None:
    try:
        flags = parse_eval_connect(event)
    except ValueError:  # pydantic's ValidationError: flags that are not booleans
        raise StreamRejected("'eval-connect' message with malformed flags") from None
    return EvalConnect(flags) if flags is not None else None


def _parse_start(event: dict[str, Any], *, accept_local_test_ids: bool) -> StreamStart:
    start = event.get("start")
    if not isinstance(start, dict):
        raise StreamRejected("'start' message has no 'start' object")
    stream_sid = start.get("streamSid") or event.get("streamSid")
    call_sid = start.get("callSid")
    if not isinstance(stream_sid, str) or not stream_sid:
        raise StreamRejected("'start' message has no streamSid")
    if not isinstance(call_sid, str) or not call_sid:
        raise StreamRejected("'start' message has no callSid")
    account_sid = start.get("accountSid")
    ids = {"callSid": call_sid, "streamSid": stream_sid, "accountSid": account_sid}
    local_test = accept_local_test_ids and all(
        isinstance(ids[name], str) and _UUID4.fullmatch(ids[name])
        for name in ("callSid", "streamSid")
    )
    if not local_test:
        _check_twilio_sids(ids)
    return StreamStart(
        stream_sid=stream_sid,
        call_sid=call_sid,
        account_sid=account_sid if isinstance(account_sid, str) else None,
        custom_parameters=_parse_custom_parameters(start.get("customParameters")),
        local_test=local_test,
    )


def _check_twilio_sids(ids: dict[str, Any]) -> None:
    """Refuse ids that are not Twilio's SIDs, saying what is wrong but never the value."""
    for name, pattern in _TWILIO_SID.items():
        value = ids[name]
        if not isinstance(value, str):
            raise StreamRejected(f"'start' message has no {name}")
        if not pattern.fullmatch(value):
            prefix = pattern.pattern[:2]
            raise StreamRejected(
                f"{name} is not a Twilio SID ({prefix} and 32 lowercase hex digits; "
                f"got {len(value)} characters)"
            )


def _parse_custom_parameters(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise StreamRejected("'start.customParameters' is not a JSON object")
    if len(json.dumps(raw)) > MAX_CUSTOM_PARAMETERS_BYTES:
        raise StreamRejected(
            f"'start.customParameters' is larger than {MAX_CUSTOM_PARAMETERS_BYTES} bytes"
        )
    return {str(key): str(value) for key, value in raw.items()}


def _describe_event(event: dict[str, Any]) -> str:
    name = event.get("event")
    return f"'{name}'" if isinstance(name, str) and len(name) < 40 else "a message with no event"


class GuardedTwilioSerializer(TwilioFrameSerializer):
    """pipecat's Twilio serializer, hardened against bad input and able to wait for play-out.

    The stock serializer lets a binary frame, a bad base64 payload or a ``dtmf``
    message without an object raise, which ends the transport's receive loop and
    with it the call, and it logs unparsable text in full. Here every inbound
    message is decoded and checked in this class, and each bad one is dropped with
    one short warning, so a glitch costs a message, never the call. The caller's
    audio comes out in 40 ms frames instead of Twilio's 20 ms ones
    (``CALLER_FRAME_SECS``).

    pipecat sends audio faster than real time and Twilio buffers it, so "sent" is
    not "heard". ``mark_message``/``wait_for_mark`` use Twilio's marks, which come
    back once everything sent before them has played, to tell when the caller
    has heard the goodbye. After a transfer the call belongs to someone else:
    ``release_call()`` stops the hang-up that ending the pipeline would send. The
    hang-up gives up after ``HANG_UP_TIMEOUT_SECS``.

    While ``speech_hold`` is held the bot's audio waits here (pipecat's output
    sends a message, then waits its length, so Twilio has at most one queued):
    the caller hears the bot pause at once. Audio held when a barge-in clears
    the stream is dropped, not sent after the ``clear``.
    """

    def __init__(self, stream_sid: str, *, speech_hold: SpeechHold | None = None, **options: Any):
        super().__init__(stream_sid, **options)
        self.stream_sid = stream_sid
        self._speech_hold = speech_hold
        self._dropped_messages = 0
        self._marks: dict[str, asyncio.Event] = {}
        self._caller_audio = bytearray()
        self._caller_resampler = create_stream_resampler()
        self._pipeline_rate = PHONE_SAMPLE_RATE
        self._caller_frame_bytes = 0

    async def setup(self, setup: FrameProcessorSetup) -> None:
        await super().setup(setup)
        self._pipeline_rate = setup.audio_in_sample_rate
        self._caller_frame_bytes = 2 * round(CALLER_FRAME_SECS * self._pipeline_rate)  # PCM16

    async def serialize(self, frame: Frame) -> str | bytes | None:
        """Encode one outbound frame; the bot's audio waits while the speech hold is held."""
        if self._speech_hold and not await self._speech_hold.passes(frame):
            return None
        return await super().serialize(frame)

    def release_call(self) -> None:
        """Leave the call up when the pipeline ends (it was handed to someone else)."""
        # pipecat: private. The serializer hangs up on EndFrame unless it already tried;
        # it has no public way to leave a call it does not own any more.
        self._hangup_attempted = True

    async def _hang_up_call(self) -> None:
        # pipecat: private. The serializer's REST hang-up on EndFrame/CancelFrame has no
        # timeout of its own (aiohttp's default is 300 s), and the pipeline's end waits for it.
        try:
            await asyncio.wait_for(super()._hang_up_call(), HANG_UP_TIMEOUT_SECS)
        except TimeoutError:
            logger.error(
                f"Twilio did not answer the hang-up within {HANG_UP_TIMEOUT_SECS:g} s; "
                "ending the call's stream anyway"
            )

    def mark_message(self, name: str) -> dict[str, Any]:
        """A ``mark`` to send after some audio; ``wait_for_mark(name)`` then waits for its echo."""
        self._marks[name] = asyncio.Event()
        return {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}

    async def wait_for_mark(self, name: str, *, timeout_secs: float) -> bool:
        """Wait until Twilio echoes mark ``name``: the audio before it has been played."""
        try:
            await asyncio.wait_for(self._marks[name].wait(), timeout_secs)
        except TimeoutError:
            return False
        finally:
            self._marks.pop(name, None)
        return True

    async def deserialize(self, data: str | bytes) -> Frame | None:
        """Decode one inbound message, dropping anything Twilio would not send.

        Every field read is checked for the shape Twilio gives it, so a message of
        any other shape is dropped with one warning and costs only itself. The
        caller's audio comes out in frames of ``CALLER_FRAME_SECS`` (every other
        media message yields one).
        """
        try:
            return await self._decode(data)
        except Malformed as problem:
            self._drop(str(problem))
        except Exception as error:  # Whatever the checks above missed costs one message too.
            self._drop(f"message that broke its decoding ({type(error).__name__})")
        return None

    async def _decode(self, data: str | bytes) -> Frame | None:
        message = parse_message(data)
        event = message.get("event")
        if not isinstance(event, str):
            raise Malformed("message without an event name")
        if event == "media":
            return await self._caller_audio_frame(media_payload(message))
        if event == "dtmf":
            return InputDTMFFrame(dtmf_key(message))
        if event == "mark":
            waiter = self._marks.get(mark_name(message))
            if waiter:
                waiter.set()
        # connected, start, stop, and events Twilio may add: nothing for the pipeline.
        return None

    async def _caller_audio_frame(self, ulaw: bytes) -> InputAudioRawFrame | None:
        self._caller_audio += await ulaw_to_pcm(
            ulaw, PHONE_SAMPLE_RATE, self._pipeline_rate, self._caller_resampler
        )
        if len(self._caller_audio) < self._caller_frame_bytes:
            return None
        audio, self._caller_audio = bytes(self._caller_audio), bytearray()
        return InputAudioRawFrame(audio=audio, num_channels=1, sample_rate=self._pipeline_rate)

    def _drop(self, problem: str) -> None:
        self._dropped_messages += 1
        # The first few are worth seeing; a flood of them is one problem, not a thousand.
        if self._dropped_messages <= 3:
            logger.warning(f"Dropped a {problem} on the Twilio stream")
        elif self._dropped_messages == 4:
            logger.warning("Dropping further malformed messages on this stream without logging")
