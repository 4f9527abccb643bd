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
    # The request's language (Cartesia's default, English, when it sends none).
    language: str | None = None
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


# A reply and how much of its transcript's audio must be generated before it goes out.
Timed = tuple[float, dict[str, Any]]


class FakeCartesia(WebsocketFake):
    """Cartesia's ``/tts/websocket``, on Cartesia's timing.

    Each transcript is voiced as a tone, ``secs_per_word`` a word: ``chunk`` messages
    (base64 PCM16 at the requested rate, ``CHUNK_SECS`` each) and a ``timestamps``
    message for the words each chunk completes (or, with ``timing.timestamps_trail``,
    one for all the transcript's words after its audio). ``done`` follows once the context is
    flushed (``continue: false``) and its audio sent; ``{"context_id": ..., "cancel":
    true}`` cancels a context. With ``CartesiaTiming.instant()`` every answer goes out
    at once. Otherwise, as Cartesia streams: a context's first audio comes
    ``first_audio_secs`` after its text, then its audio is generated at
    ``realtime_factor`` x real time and sent as it is made, transcript after
    transcript; contexts multiplexed on one socket are generated side by side.
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
        if not self.timing.streams:
            async for message in websocket:
                for _, reply in self.answer(message):
                    await websocket.send(json.dumps(reply))
            return
        generators: dict[str, _Generator] = {}
        try:
            async for message in websocket:
                answers = self.answer(message)
                if not answers:
                    continue
                reply = answers[0][1]
                if reply["type"] == "error":
                    await websocket.send(json.dumps(reply))
                    continue
                context_id = reply["context_id"]
                if context_id not in generators:
                    generators[context_id] = _Generator(self, websocket, context_id)
                generators[context_id].add(answers)
        finally:
            for generator in generators.values():
                generator.stop()

    def answer(self, message: str | bytes) -> list[Timed]:
        """The replies to one client message, in order, each with the seconds of the
        transcript's audio that must be generated before it is sent."""
        try:
            request = json.loads(message)
        except ValueError:
            return [(0.0, _error("", "Invalid JSON"))]
        if not isinstance(request, dict):
            return [(0.0, _error("", "A request must be a JSON object"))]
        context_id = request.get("context_id")
        if not isinstance(context_id, str) or not context_id:
            return [(0.0, _error("", "context_id is required"))]
        if request.get("cancel") is True:
            if context_id in self.contexts:
                self.contexts[context_id].cancelled = True
            return []
        context = self.contexts.get(context_id)
        if context is None:
            problem = _invalid(request)
            if problem:
                return [(0.0, _error(context_id, problem))]
            context = CartesiaContext(
                context_id,
                model_id=request["model_id"],
                voice_id=request["voice"]["id"],
                sample_rate=request["output_format"]["sample_rate"],
                language=request.get("language"),
            )
            self.contexts[context_id] = context
        if context.cancelled:
            return []
        if context.done:
            return [(0.0, _error(context_id, f"Context {context_id} is already done"))]
        transcript = request.get("transcript")
        if not isinstance(transcript, str):
            return [(0.0, _error(context_id, "transcript must be a string"))]
        stalled = (
            self.stall_after_transcripts is not None
            and len(self.transcripts) >= self.stall_after_transcripts
        )
        if stalled:
            return []
        replies = self._speak(context, transcript) if transcript.strip() else []
        if request.get("continue") is False:
            context.done = True
            audio_secs = replies[-1][0] if replies else 0.0
            replies.append((audio_secs, _reply("done", context_id, done=True)))
        return replies

    def _speak(self, context: CartesiaContext, transcript: str) -> list[Timed]:
        """The transcript's audio in chunks, each followed by the timestamps of the words it
        completes (counted in samples: seconds would round words into the wrong chunk)."""
        self.transcripts.append(transcript.strip())
        context.transcripts.append(transcript)
        words = transcript.split()
        rate = context.sample_rate
        audio = tone(len(words), secs_per_word=self.secs_per_word, sample_rate=rate)
        per_word = round(self.secs_per_word * rate)
        step = round(CHUNK_SECS * rate)
        replies: list[Timed] = []
        stamped = 0
        for start in range(0, len(audio) // 2, step):
            end = min(start + step, len(audio) // 2)
            chunk = base64.b64encode(audio[2 * start : 2 * end]).decode()
            replies.append(
                (end / rate, _reply("chunk", context.context_id, data=chunk, step_time=0.0))
            )
            made = min(len(words), end // per_word)
            if made > stamped and not self.timing.timestamps_trail:
                replies.append((end / rate, self._timestamps(context, words, stamped, made)))
                stamped = made
        if stamped < len(words):
            replies.append(
                (len(audio) / 2 / rate, self._timestamps(context, words, stamped, len(words)))
            )
        context.audio_secs += len(words) * self.secs_per_word
        return replies

    def _timestamps(
        self, context: CartesiaContext, words: list[str], first: int, last: int
    ) -> dict[str, Any]:
        """Cartesia's ``timestamps`` message for words ``first`` up to ``last`` of a transcript,
        timed from the start of the context's audio."""
        offset = context.audio_secs
        starts = [offset + i * self.secs_per_word for i in range(first, last)]
        word_timestamps = {
            "words": words[first:last],
            "start": [round(s, 3) for s in starts],
            "end": [round(s + self.secs_per_word, 3) for s in starts],
        }
        return _reply("timestamps", context.context_id, word_timestamps=word_timestamps)


class _Generator:
    """One context's audio, generated transcript after transcript on Cartesia's timing."""

    def __init__(self, fake: FakeCartesia, websocket: ServerConnection, context_id: str) -> None:
        self._fake = fake
        self._websocket = websocket
        self._context = fake.contexts[context_id]
        self._work: asyncio.Queue[tuple[float, list[Timed]]] = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    def add(self, answers: list[Timed]) -> None:
        self._work.put_nowait((asyncio.get_running_loop().time(), answers))

    def stop(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        timing = self._fake.timing
        free_at = 0.0  # when the model has finished the context's audio so far
        while True:
            arrived, answers = await self._work.get()
            # A transcript that arrives while earlier audio is being made follows it at once.
            start = max(arrived + timing.first_audio_secs, free_at)
            for audio_secs, reply in answers:
                due = start + (audio_secs / timing.realtime_factor if timing.realtime_factor else 0)
                await asyncio.sleep(max(0.0, due - loop.time()))
                if self._context.cancelled:
                    break  # Cancelled while the model worked on it: nothing more comes.
                try:
                    await self._websocket.send(json.dumps(reply))
                except ConnectionClosed:
                    return  # The client went: the rest is dropped, as on a real socket.
            audio_secs = answers[-1][0]
            free_at = start + (audio_secs / timing.realtime_factor if timing.realtime_factor else 0)


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
