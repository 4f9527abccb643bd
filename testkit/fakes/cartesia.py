"""A loopback Cartesia TTS websocket that answers text with a tone as long as the words."""

import asyncio
import base64
import json
import math
from array import array
from dataclasses import dataclass, field
from functools import cache
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request

from ._websocket_server import HandshakeRejected, WebsocketFake
from .timing import CartesiaTiming

SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
CHUNK_SECS = 0.04
AMPLITUDE = 8000
FADE_SECS = 0.01


@dataclass
class CartesiaContext:
    """One ``context_id``: what was asked of it and what became of it."""

    context_id: str
    model_id: str
    voice_id: str
    sample_rate: int
    transcripts: list[str] = field(default_factory=list)
    audio_secs: float = 0.0
    cancelled: bool = False
    done: bool = False

    @property
    def spoken(self) -> str:
        """What the context says: Cartesia joins its transcripts verbatim, spaces and all."""
        return "".join(self.transcripts)


@cache
def tone(words: int, *, secs_per_word: float, sample_rate: int) -> bytes:
    """PCM16 with one faded tone burst per word, its pitch stepping like speech.

    Cached: a zero-latency fake must not spend milliseconds of its own per reply.
    """
    samples = array("h")
    per_word = round(secs_per_word * sample_rate)
    fade = max(1, round(FADE_SECS * sample_rate))
    for word in range(words):
        hz = 220 + 40 * (word % 5)
        for n in range(per_word):
            envelope = min(1.0, n / fade, (per_word - n) / fade)
            samples.append(
                round(AMPLITUDE * envelope * math.sin(2 * math.pi * hz * n / sample_rate))
            )
    return samples.tobytes()


class FakeCartesia(WebsocketFake):
    """Cartesia's ``/tts/websocket``, on Cartesia's timing.

    Each transcript is answered ``timing.first_audio_secs`` later (at once with
    ``CartesiaTiming.instant()``), in the order asked, with ``chunk`` messages (base64 PCM16 at
    the requested rate, ``secs_per_word`` of tone per word) and a ``timestamps``
    message for its words; ``done`` follows once the context is flushed
    (``continue: false``). ``{"context_id": ..., "cancel": true}`` cancels a context.
    """

    def __init__(
        self,
        *,
        api_key: str = "sk_car_test_key",
        secs_per_word: float = 0.12,
        timing: CartesiaTiming | None = None,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.secs_per_word = secs_per_word
        self.timing = timing or CartesiaTiming()
        # After this many transcripts voiced, the rest are taken and never answered, the
        # socket left open (a stall: no error, no close). None: every transcript is voiced.
        self.stall_after_transcripts: int | None = None
        # Each transcript voiced, in order, without the spacing that joins it to the next.
        self.transcripts: list[str] = []
        self.contexts: dict[str, CartesiaContext] = {}

    @property
    def said(self) -> list[str]:
        """What each context said, in the order they began: a reply, a greeting, a prompt."""
        return [context.spoken.strip() for context in self.contexts.values() if context.transcripts]

    @property
    def url(self) -> str:
        """What CartesiaTTSService(url=...) takes."""
        return f"ws://127.0.0.1:{self.port}/tts/websocket"

    def check_handshake(self, request: Request) -> None:
        if urlsplit(request.path).path != "/tts/websocket":
            raise HandshakeRejected(HTTPStatus.NOT_FOUND, {"error": "Not found"})
        if request.headers.get("X-API-Key") != self.api_key:
            raise HandshakeRejected(HTTPStatus.UNAUTHORIZED, {"error": "Invalid API key"})
        if not request.headers.get("Cartesia-Version"):
            raise HandshakeRejected(
                HTTPStatus.BAD_REQUEST, {"error": "Cartesia-Version header is required"}
            )

    async def serve_session(self, websocket: ServerConnection) -> None:
        delay = self.timing.first_audio_secs
        if delay <= 0:
            async for message in websocket:
                for reply in self.answer(message):
                    await websocket.send(json.dumps(reply))
            return
        # Audio comes a model's latency after its text; replies keep the order asked.
        outbox: asyncio.Queue[tuple[float, list[dict[str, Any]]]] = asyncio.Queue()
        sender = asyncio.create_task(self._send_when_due(websocket, outbox))
        try:
            loop = asyncio.get_running_loop()
            async for message in websocket:
                replies = self.answer(message)
                if replies:
                    voiced = any(reply["type"] == "chunk" for reply in replies)
                    outbox.put_nowait((loop.time() + (delay if voiced else 0.0), replies))
        finally:
            sender.cancel()

    async def _send_when_due(
        self, websocket: ServerConnection, outbox: asyncio.Queue[tuple[float, list[dict[str, Any]]]]
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, replies = await outbox.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            for reply in replies:
                context = self.contexts.get(reply["context_id"])
                if context is not None and context.cancelled and reply["type"] != "error":
                    continue  # Cancelled while the model worked on it: nothing more comes.
                try:
                    await websocket.send(json.dumps(reply))
                except ConnectionClosed:
                    return  # The client went: the rest is dropped, as on a real socket.

    def answer(self, message: str | bytes) -> list[dict[str, Any]]:
        """The replies to one client message, in order."""
        try:
            request = json.loads(message)
        except ValueError:
            return [_error("", "Invalid JSON")]
        if not isinstance(request, dict):
            return [_error("", "A request must be a JSON object")]
        context_id = request.get("context_id")
        if not isinstance(context_id, str) or not context_id:
            return [_error("", "context_id is required")]
        if request.get("cancel") is True:
            if context_id in self.contexts:
                self.contexts[context_id].cancelled = True
            return []
        context = self.contexts.get(context_id)
        if context is None:
            problem = _invalid(request)
            if problem:
                return [_error(context_id, problem)]
            context = CartesiaContext(
                context_id,
                model_id=request["model_id"],
                voice_id=request["voice"]["id"],
                sample_rate=request["output_format"]["sample_rate"],
            )
            self.contexts[context_id] = context
        if context.cancelled:
            return []
        if context.done:
            return [_error(context_id, f"Context {context_id} is already done")]
        transcript = request.get("transcript")
        if not isinstance(transcript, str):
            return [_error(context_id, "transcript must be a string")]
        stalled = (
            self.stall_after_transcripts is not None
            and len(self.transcripts) >= self.stall_after_transcripts
        )
        if stalled:
            return []
        replies = self._speak(context, transcript) if transcript.strip() else []
        if request.get("continue") is False:
            context.done = True
            replies.append(_reply("done", context_id, done=True))
        return replies

    def _speak(self, context: CartesiaContext, transcript: str) -> list[dict[str, Any]]:
        self.transcripts.append(transcript.strip())
        context.transcripts.append(transcript)
        words = transcript.split()
        audio = tone(len(words), secs_per_word=self.secs_per_word, sample_rate=context.sample_rate)
        step = round(CHUNK_SECS * context.sample_rate) * 2
        replies = [
            _reply(
                "chunk",
                context.context_id,
                data=base64.b64encode(audio[i : i + step]).decode(),
                step_time=0.0,
            )
            for i in range(0, len(audio), step)
        ]
        starts = [context.audio_secs + i * self.secs_per_word for i in range(len(words))]
        word_timestamps = {
            "words": words,
            "start": [round(s, 3) for s in starts],
            "end": [round(s + self.secs_per_word, 3) for s in starts],
        }
        replies.append(_reply("timestamps", context.context_id, word_timestamps=word_timestamps))
        context.audio_secs += len(words) * self.secs_per_word
        return replies


def _invalid(request: dict[str, Any]) -> str | None:
    """Why the first request of a context is unusable, as Cartesia would refuse it."""
    voice = request.get("voice")
    output = request.get("output_format")
    if not isinstance(request.get("model_id"), str) or not request["model_id"]:
        return "model_id is required"
    if not isinstance(voice, dict) or voice.get("mode") != "id" or not voice.get("id"):
        return "voice must be {'mode': 'id', 'id': <voice id>}"
    if not isinstance(output, dict):
        return "output_format is required"
    if output.get("container") != "raw" or output.get("encoding") != "pcm_s16le":
        return "this fake serves only container 'raw' with encoding 'pcm_s16le'"
    if output.get("sample_rate") not in SAMPLE_RATES:
        return f"sample_rate must be one of {SAMPLE_RATES}"
    return None


def _reply(kind: str, context_id: str, *, done: bool = False, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "context_id": context_id, "status_code": 206, "done": done, **fields}


def _error(context_id: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "context_id": context_id,
        "status_code": 400,
        "done": True,
        "title": "Invalid request",
        "message": message,
        "error_code": "invalid_request",
    }
