"""A loopback Deepgram live-transcription server that answers caller speech with scripted text."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request

from ._websocket_server import HandshakeRejected, WebsocketFake
from .deepgram_stream import Line, Spoken, Transcription
from .timing import DeepgramTiming


@dataclass
class DeepgramSession:
    """One accepted connection: its query parameters and what the client sent."""

    params: dict[str, str]
    audio_bytes: int = 0
    control: list[str] = field(default_factory=list)

    @property
    def language(self) -> str:
        """The language the client asked to be heard in; Deepgram's default is English."""
        return self.params.get("language", "en")


class FakeDeepgram(WebsocketFake):
    """Deepgram's ``/v1/listen`` websocket, scripted, on Deepgram's timing.

    Caller speech is found by energy in the received linear16 audio; each caller line
    is transcribed as the next of ``transcripts``. Results come the way Deepgram sends
    them, ``timing.result_delay_secs`` after the audio they describe: interim results
    every ``timing.interim_every_secs`` of speech (when the query asks for
    ``interim_results=true``, as pipecat does); a final (``is_final``,
    ``speech_final``) at the endpoint, a silence as long as the query's ``endpointing``
    (10 ms when unset; ``false``: none) but at least
    ``timing.min_endpoint_silence_secs``, which comes before the client's VAD stop and
    its ``Finalize``; the answer to a ``Finalize`` (``from_finalize: true``), empty when
    endpointing already sent the words; ``UtteranceEnd`` after ``utterance_end_ms`` of
    silence when asked for. A stream opened with ``language=XX`` takes its lines from
    ``transcripts_in[XX]`` when that script exists (the caller speaks that language: a
    Spanish line is never heard on an English stream), else from ``transcripts``. On a
    multilingual stream (``language=multi``) each result with words names their language,
    as Deepgram's does (``languages`` on the alternative, ``language`` on each word): a
    script's ``Spoken(text, "es")`` is a Spanish line, a plain string an English one. Once
    the script runs out, lines are transcribed as
    ``default_transcript`` (nothing by default), so many concurrent calls, whose lines
    would take from one script in no set order, can all be heard as the same words.

    A final in the middle of a line (a pause, or a turn detector that took "Hi," for
    the whole turn) gets only what was said so far: the line is given out phrase by
    phrase (split after punctuation), one phrase per pause of at least
    ``phrase_gap_secs`` in the audio (or per endpoint or ``Finalize``), and the rest
    follows in later finals. A line ends once all of it was sent and a ``Finalize``
    came, or after ``line_end_secs`` of silence.

    Interim results come on Deepgram's clock, one per ``timing.interim_every_secs`` of
    the stream's audio while a line is unfinished. With ``interim_words_per_sec`` each
    carries the words said so far at that speaking rate, never words not yet spoken
    (none yet: no interim); without it, the first carries half the words of the
    phrases begun, later ones all of them.
    """

    def __init__(
        self,
        *,
        api_key: str = "dg-test-key",
        transcripts: Iterable[str | Spoken] = (),
        default_transcript: str = "",
        speech_rms: int = 300,
        phrase_gap_secs: float = 0.15,
        line_end_secs: float = 1.0,
        interim_words_per_sec: float | None = None,
        idle_timeout_secs: float = 10.0,
        timing: DeepgramTiming | None = None,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.transcripts: list[str | Spoken] = list(transcripts)
        self.transcripts_in: dict[str, list[str | Spoken]] = {}
        self.default_transcript = default_transcript
        self.speech_rms = speech_rms
        self.phrase_gap_secs = phrase_gap_secs
        self.line_end_secs = line_end_secs
        self.timing = timing or DeepgramTiming()
        self.interim_words_per_sec = interim_words_per_sec
        self.idle_timeout_secs = idle_timeout_secs
        # A Deepgram that stops answering with the socket still open (the commonest outage:
        # no error, no close): "silent" sends nothing at all, "after_interim" still sends
        # interim results but never a final. None: answers as Deepgram does.
        self.stall: str | None = None
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
        await Transcription(self, websocket, session).run()

    def next_line(self, language: str = "en") -> Line:
        """The next scripted line in ``language``; an unscripted one is transcribed as
        ``default_transcript``."""
        script = self.transcripts_in.get(language, self.transcripts)
        if script:
            said = script.pop(0)
            if isinstance(said, Spoken):
                return Line(said.text, said.language)
            return Line(said)
        self.unscripted_utterances += 1
        return Line(self.default_transcript)
