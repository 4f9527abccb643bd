"""A loopback Deepgram live-transcription server that answers caller speech with scripted text."""

import asyncio
import hashlib
import json
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request

from ._websocket_server import HandshakeRejected, WebsocketFake

with warnings.catch_warnings():
    # Deprecated on 3.11-3.12; on 3.13+ pipecat installs audioop-lts under the same name.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

BLOCK_SECS = 0.02
MODEL_UUID = "40bd3654-e622-47c4-a111-63a61b23bfe5"
MODEL_INFO = {"name": "general-nova-3", "version": "2025-01-01.0", "arch": "nova-3"}
# What Deepgram says when a stream goes quiet (no audio, no KeepAlive) for 10 s.
NET0001 = (
    "Deepgram did not receive audio data or a text message within the timeout window. "
    "See https://dpgr.am/net0001"
)


@dataclass
class DeepgramSession:
    """One accepted connection: its query parameters and what the client sent."""

    params: dict[str, str]
    audio_bytes: int = 0
    control: list[str] = field(default_factory=list)


class FakeDeepgram(WebsocketFake):
    """Deepgram's ``/v1/listen`` websocket, scripted.

    Caller speech is found by energy in the received linear16 audio. Each stretch of
    speech is answered with the next of ``transcripts``: one interim result while it
    goes on, then a final result when the client sends ``Finalize`` (as pipecat does
    when its VAD hears the caller stop) or, failing that, ``endpoint_secs`` of audio
    after the speech ended, like Deepgram's own endpointing.
    """

    def __init__(
        self,
        *,
        api_key: str = "dg-test-key",
        transcripts: Iterable[str] = (),
        speech_rms: int = 300,
        interim_after_secs: float = 0.3,
        endpoint_secs: float = 1.0,
        idle_timeout_secs: float = 10.0,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.transcripts = list(transcripts)
        self.speech_rms = speech_rms
        self.interim_after_secs = interim_after_secs
        self.endpoint_secs = endpoint_secs
        self.idle_timeout_secs = idle_timeout_secs
        self.sessions: list[DeepgramSession] = []
        self.results: list[dict[str, Any]] = []
        self.transcripts_sent: list[str] = []
        self.unscripted_utterances = 0

    @property
    def base_url(self) -> str:
        """What DeepgramSTTService(base_url=...) takes."""
        return f"ws://127.0.0.1:{self.port}"

    def check_handshake(self, request: Request) -> None:
        url = urlsplit(request.path)
        if url.path != "/v1/listen":
            raise HandshakeRejected(HTTPStatus.NOT_FOUND, {"err_code": "NOT_FOUND"})
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            raise HandshakeRejected(
                HTTPStatus.UNAUTHORIZED,
                {
                    "err_code": "INVALID_AUTH",
                    "err_msg": "Invalid credentials.",
                    "request_id": str(uuid.uuid4()),
                },
            )
        params = dict(parse_qsl(url.query))
        if params.get("encoding") != "linear16" or not params.get("sample_rate", "").isdigit():
            # Deepgram accepts more encodings; this fake measures speech in linear16 only.
            raise HandshakeRejected(
                HTTPStatus.BAD_REQUEST,
                {"err_code": "Bad Request", "err_msg": "fake needs encoding=linear16&sample_rate"},
            )

    async def serve_session(self, websocket: ServerConnection) -> None:
        assert websocket.request is not None
        session = DeepgramSession(dict(parse_qsl(urlsplit(websocket.request.path).query)))
        self.sessions.append(session)
        await _Transcription(self, websocket, session).run()

    def next_transcript(self) -> str:
        """Pop the next scripted line; an unscripted utterance gets an empty transcript."""
        if self.transcripts:
            return self.transcripts.pop(0)
        self.unscripted_utterances += 1
        return ""


class _Transcription:
    """One stream: measures speech, sends results, follows the control messages."""

    def __init__(
        self, fake: FakeDeepgram, websocket: ServerConnection, session: DeepgramSession
    ) -> None:
        self.fake = fake
        self.websocket = websocket
        self.session = session
        self.request_id = str(uuid.uuid4())
        self.block_bytes = round(int(session.params["sample_rate"]) * BLOCK_SECS) * 2
        self.pending = b""
        self.sha256 = hashlib.sha256()
        self.audio_secs = 0.0  # position in the received audio
        self.segment_start = 0.0  # where the audio not yet covered by a final result begins
        self.speech_start: float | None = None
        self.speech_end = 0.0
        self.speech_secs = 0.0
        self.interim_sent = False

    async def run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.fake.idle_timeout_secs):
                    message = await self.websocket.recv()
            except TimeoutError:
                await self.websocket.close(1011, NET0001)
                return
            if isinstance(message, bytes):
                await self.on_audio(message)
            elif not await self.on_control(message):
                return

    async def on_audio(self, audio: bytes) -> None:
        self.session.audio_bytes += len(audio)
        self.sha256.update(audio)
        self.pending += audio
        while len(self.pending) >= self.block_bytes:
            block, self.pending = (
                self.pending[: self.block_bytes],
                self.pending[self.block_bytes :],
            )
            self.audio_secs += BLOCK_SECS
            if audioop.rms(block, 2) >= self.fake.speech_rms:
                if self.speech_start is None:
                    self.speech_start = self.audio_secs - BLOCK_SECS
                self.speech_end = self.audio_secs
                self.speech_secs += BLOCK_SECS
                if self.speech_secs >= self.fake.interim_after_secs and not self.interim_sent:
                    await self.send_interim()
            elif (
                self.speech_start is not None
                and self.audio_secs - self.speech_end >= self.fake.endpoint_secs
            ):
                await self.send_final(from_finalize=False)

    async def on_control(self, text: str) -> bool:
        """Handle a JSON control message; False once the stream is closed."""
        try:
            kind = json.loads(text).get("type")
        except (ValueError, AttributeError):
            kind = None
        self.session.control.append(str(kind))
        if kind == "Finalize":
            await self.send_final(from_finalize=True)
        elif kind == "CloseStream":
            if self.speech_start is not None:
                await self.send_final(from_finalize=False)
            await self.websocket.send(json.dumps(self.metadata()))
            await self.websocket.close()
            return False
        return True

    async def send_interim(self) -> None:
        """Half of the coming line, as Deepgram's partial hypothesis would read."""
        self.interim_sent = True
        if not self.fake.transcripts:
            return
        words = self.fake.transcripts[0].split()
        await self.send_results(" ".join(words[: max(1, len(words) // 2)]), is_final=False)

    async def send_final(self, *, from_finalize: bool) -> None:
        """Final result for the speech since the last one (empty when there was none)."""
        transcript = self.fake.next_transcript() if self.speech_start is not None else ""
        if transcript:
            self.fake.transcripts_sent.append(transcript)
        await self.send_results(
            transcript, is_final=True, speech_final=True, from_finalize=from_finalize
        )
        self.segment_start = self.audio_secs
        self.speech_start = None
        self.speech_secs = 0.0
        self.interim_sent = False

    async def send_results(
        self,
        transcript: str,
        *,
        is_final: bool,
        speech_final: bool = False,
        from_finalize: bool = False,
    ) -> None:
        message = {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(self.audio_secs - self.segment_start, 3),
            "start": round(self.segment_start, 3),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {
                "alternatives": [
                    {"transcript": transcript, "confidence": 0.98, "words": self.words(transcript)}
                ]
            },
            "metadata": {
                "request_id": self.request_id,
                "model_info": MODEL_INFO,
                "model_uuid": MODEL_UUID,
            },
        }
        self.fake.results.append(message)
        await self.websocket.send(json.dumps(message))

    def words(self, transcript: str) -> list[dict[str, Any]]:
        """Word timings spread evenly over the speech heard."""
        tokens = transcript.split()
        start = self.speech_start if self.speech_start is not None else self.segment_start
        step = (max(self.speech_end, start) - start) / max(1, len(tokens))
        return [
            {
                "word": token.strip(".,!?;:").lower(),
                "start": round(start + i * step, 3),
                "end": round(start + (i + 1) * step, 3),
                "confidence": 0.98,
                "punctuated_word": token,
            }
            for i, token in enumerate(tokens)
        ]

    def metadata(self) -> dict[str, Any]:
        """Deepgram's last message before it closes a stream on CloseStream."""
        return {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": self.sha256.hexdigest(),
            "created": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "duration": round(self.audio_secs, 3),
            "channels": 1,
            "models": [MODEL_UUID],
            "model_info": {MODEL_UUID: MODEL_INFO},
        }
