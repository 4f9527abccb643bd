"""One live stream of the fake Deepgram: hears speech and pauses, sends results on its timing."""

import asyncio
import hashlib
import json
import re
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from .timing import DeepgramTiming

if TYPE_CHECKING:
    from .deepgram import DeepgramSession, FakeDeepgram

with warnings.catch_warnings():
    # Deprecated on 3.11-3.12; on 3.13+ pipecat installs audioop-lts under the same name.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

BLOCK_SECS = 0.02
# Less speech than a word takes to say has no word in it to show.
WORD_SECS = 0.2
# Deepgram's endpointing when the query does not set it.
DEFAULT_ENDPOINTING_MS = 10
MODEL_UUID = "40bd3654-e622-47c4-a111-63a61b23bfe5"
MODEL_INFO = {"name": "general-nova-3", "version": "2025-01-01.0", "arch": "nova-3"}
# What Deepgram says when a stream goes quiet (no audio, no KeepAlive) for 10 s.
NET0001 = (
    "Deepgram did not receive audio data or a text message within the timeout window. "
    "See https://dpgr.am/net0001"
)


# What Deepgram's multilingual model is asked for with: it names each result's language.
MULTILINGUAL = "multi"


@dataclass(frozen=True)
class Spoken:
    """A scripted line said in ``language``, as Deepgram's multilingual model
    (``language=multi``) reports it; a plain string in a script is English."""

    text: str
    language: str


class Line:
    """What the caller is saying now, in ``language``, handed out a phrase at a time."""

    def __init__(self, text: str, language: str = "en") -> None:
        self.language = language
        self.phrases = re.split(r"(?<=[,.;:?!])\s+", text.strip())
        self.sent = 0  # phrases already in a final result
        self.pauses = 0  # pauses heard since the line began

    @property
    def finished(self) -> bool:
        return self.sent == len(self.phrases)

    def spoken_so_far(self) -> list[str]:
        """Phrases the caller has at least begun and that no final has covered."""
        return self.phrases[self.sent : self.pauses + 1]

    def take(self, *, everything: bool) -> str:
        """The text for the next final: the phrases finished by a pause, or all left."""
        end = len(self.phrases) if everything else min(self.pauses, len(self.phrases))
        text = " ".join(self.phrases[self.sent : end])
        self.sent = max(self.sent, end)
        return text


class Transcription:
    """One stream: measures speech and pauses, sends results, follows control messages."""

    def __init__(
        self, fake: "FakeDeepgram", websocket: ServerConnection, session: "DeepgramSession"
    ) -> None:
        self.fake = fake
        self.websocket = websocket
        self.session = session
        self.request_id = str(uuid.uuid4())
        self.block_bytes = round(int(session.params["sample_rate"]) * BLOCK_SECS) * 2
        self.endpoint_secs = endpoint_secs(session.params, fake.timing)
        self.interims = session.params.get("interim_results") == "true"
        utterance_end_ms = session.params.get("utterance_end_ms", "")
        self.utterance_end_secs = int(utterance_end_ms) / 1000 if utterance_end_ms else None
        self.pending = b""
        self.sha256 = hashlib.sha256()
        self.audio_secs = 0.0  # position in the received audio
        self.line: Line | None = None
        self.silence_secs = 0.0  # length of the current silence
        self.pause_counted = True  # the current silence already counts as a pause
        self.endpointed = True  # the current silence already had its endpoint final
        # Since the last final result: where it began, and the speech in it.
        self.segment_start = 0.0
        self.speech_start: float | None = None
        self.speech_end = 0.0
        self.speech_secs = 0.0
        self.interims_sent = 0
        # The end of the last finalized word, until an UtteranceEnd has said so.
        self.utterance_word_end: float | None = None
        # Results wait here for their delivery time (the model's and the network's).
        self.outbox: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        self.sender: asyncio.Task | None = None

    async def run(self) -> None:
        try:
            await self.receive()
        finally:
            if self.sender is not None:
                self.sender.cancel()

    async def receive(self) -> None:
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
            block = self.pending[: self.block_bytes]
            self.pending = self.pending[self.block_bytes :]
            self.audio_secs += BLOCK_SECS
            if audioop.rms(block, 2) >= self.fake.speech_rms:
                await self.on_speech()
            else:
                await self.on_silence()
            await self.send_interim_when_due()

    async def on_speech(self) -> None:
        if self.line is None:
            self.line = self.fake.next_line(self.session.language)
        self.silence_secs = 0.0
        self.pause_counted = False
        self.endpointed = False
        if self.speech_start is None:
            self.speech_start = self.audio_secs - BLOCK_SECS
        self.speech_end = self.audio_secs
        self.speech_secs += BLOCK_SECS

    async def send_interim_when_due(self) -> None:
        """Deepgram's interim results: one per ``interim_every_secs`` of the stream's audio
        while it has words not yet final, each with the words heard so far."""
        if not self.interims or self.line is None or self.speech_start is None:
            return
        # Counted in blocks: float sums of 0.02 drift past the boundary.
        every_blocks = round(self.fake.timing.interim_every_secs / BLOCK_SECS)
        if round(self.audio_secs / BLOCK_SECS) % every_blocks:
            return
        if self.fake.interim_words_per_sec is not None:
            words = " ".join(self.line.phrases[self.line.sent :]).split()
            shown = int(self.speech_secs * self.fake.interim_words_per_sec)
        else:
            words = " ".join(self.line.spoken_so_far()).split()
            # The first interim has half the words heard so far, later ones all of them.
            shown = len(words) if self.interims_sent else max(1, len(words) // 2)
            if self.speech_secs < WORD_SECS:
                shown = 0
        if words and shown:
            self.interims_sent += 1
            await self.send_results(" ".join(words[:shown]), language=self.line.language)

    async def on_silence(self) -> None:
        self.silence_secs += BLOCK_SECS
        if self.silence_secs >= self.fake.phrase_gap_secs:
            self.count_pause()
        if (
            self.line is not None
            and self.endpoint_secs is not None
            and not self.endpointed
            and self.silence_secs >= self.endpoint_secs
        ):
            # Deepgram's endpointing: the words so far are final, before any Finalize.
            self.endpointed = True
            self.count_pause()
            await self.send_final(everything=False, from_finalize=False)
        if self.line is not None and self.silence_secs >= self.fake.line_end_secs:
            if not self.line.finished or self.speech_start is not None:
                await self.send_final(everything=True, from_finalize=False)
            self.line = None
        if (
            self.utterance_end_secs is not None
            and self.utterance_word_end is not None
            and self.audio_secs - self.utterance_word_end >= self.utterance_end_secs
        ):
            last_word_end, self.utterance_word_end = self.utterance_word_end, None
            await self.deliver(
                {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": last_word_end}
            )

    def count_pause(self) -> None:
        if self.line is not None and not self.pause_counted:
            self.line.pauses += 1
            self.pause_counted = True

    async def on_control(self, text: str) -> bool:
        """Handle a JSON control message; False once the stream is closed."""
        try:
            kind = json.loads(text).get("type")
        except (ValueError, AttributeError):
            kind = None
        self.session.control.append(str(kind))
        if kind == "Finalize":
            self.count_pause()  # the client's VAD heard a pause, however short
            await self.send_final(everything=False, from_finalize=True)
        elif kind == "CloseStream":
            if self.line is not None:
                await self.send_final(everything=True, from_finalize=False)
            await self.outbox.join()  # What was due goes out before the stream ends.
            await self.websocket.send(json.dumps(self.metadata()))
            await self.websocket.close()
            return False
        return True

    async def send_final(self, *, everything: bool, from_finalize: bool) -> None:
        """Final result for the speech since the last one (empty when there is nothing new).

        A line ends with a final that has everything, or with a Finalize once all of
        it was sent (the client's VAD heard its end).
        """
        language = self.line.language if self.line is not None else "en"
        transcript = self.line.take(everything=everything) if self.line is not None else ""
        if self.line is not None and (everything or (from_finalize and self.line.finished)):
            self.line = None
        if transcript:
            self.fake.transcripts_sent.append(transcript)
            self.utterance_word_end = round(self.speech_end, 3)
        await self.send_results(
            transcript,
            is_final=True,
            speech_final=True,
            from_finalize=from_finalize,
            language=language,
        )
        self.segment_start = self.audio_secs
        self.speech_start = None
        self.speech_secs = 0.0
        self.interims_sent = 0

    async def send_results(
        self,
        transcript: str,
        *,
        is_final: bool = False,
        speech_final: bool = False,
        from_finalize: bool = False,
        language: str = "en",
    ) -> None:
        """A result; on a multilingual stream, the words carry the language they were said in."""
        if self.fake.stall == "silent" or (self.fake.stall == "after_interim" and is_final):
            return
        alternative: dict[str, Any] = {
            "transcript": transcript,
            "confidence": 0.98,
            "words": self.words(transcript),
        }
        if self.session.params.get("language") == MULTILINGUAL and transcript:
            alternative["languages"] = [language]
            for word in alternative["words"]:
                word["language"] = language
        message = {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(self.audio_secs - self.segment_start, 3),
            "start": round(self.segment_start, 3),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [alternative]},
            "metadata": {
                "request_id": self.request_id,
                "model_info": MODEL_INFO,
                "model_uuid": MODEL_UUID,
            },
        }
        self.fake.results.append(message)
        await self.deliver(message)

    async def deliver(self, message: dict[str, Any]) -> None:
        """Send ``message`` once the model and the network would have: in order, late."""
        delay = self.fake.timing.result_delay_secs
        if delay <= 0 and self.outbox.empty():
            await self.websocket.send(json.dumps(message))
            return
        self.outbox.put_nowait((asyncio.get_running_loop().time() + delay, message))
        if self.sender is None:
            self.sender = asyncio.create_task(self.send_when_due())

    async def send_when_due(self) -> None:
        loop = asyncio.get_running_loop()
        closed = False
        while True:
            due, message = await self.outbox.get()
            try:
                if not closed:
                    await asyncio.sleep(max(0.0, due - loop.time()))
                    await self.websocket.send(json.dumps(message))
            except ConnectionClosed:
                closed = True  # The client went: the rest is dropped, as on a real socket.
            finally:
                self.outbox.task_done()

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


def endpoint_secs(params: dict[str, str], timing: DeepgramTiming) -> float | None:
    """The silence that ends speech, from the query's ``endpointing``; None when it is off."""
    endpointing = params.get("endpointing", str(DEFAULT_ENDPOINTING_MS))
    if endpointing == "false":
        return None
    milliseconds = int(endpointing) if endpointing.isdigit() else DEFAULT_ENDPOINTING_MS
    return max(milliseconds / 1000, timing.min_endpoint_silence_secs)
