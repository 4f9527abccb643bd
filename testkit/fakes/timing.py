"""How fast the fakes answer: each real service's published timing by default, or at once."""

from dataclasses import dataclass


@dataclass(frozen=True)
class DeepgramTiming:
    """When Deepgram's live results come, relative to the audio they describe.

    Endpointing itself is what the client asks for in its query (``endpointing=MS``,
    10 ms when unset, as Deepgram documents); these are what the query cannot say.
    """

    # Deepgram's own voice detection does not end speech on the gaps between words: the
    # recorded test lines have 40-140 ms gaps inside phrases (and this fake hands a line out
    # a phrase per pause of 0.15 s). Endpointing acts on a silence of at least this, however
    # short the endpointing asked for.
    min_endpoint_silence_secs: float = 0.15
    # Model and network time from the audio to its result. Deepgram quotes nova-3 streaming
    # finals "typically 100-300 ms after speech end" (real-services.md): with the silence
    # above, a final comes 180 ms after the last loud audio, 100-150 ms after the words as
    # the benchmark times them (from their quiet tail). Finalize answers take this long.
    result_delay_secs: float = 0.03
    # Interim results (interim_results=true) come once per second of the stream's audio while
    # it holds words not yet final: Deepgram's own example ("Using Interim Results") shows
    # them at 1.1, 2.1, 3.1 s of audio, and field logs 1.02 s apart. So the first interim of
    # an utterance comes 0-1 s after its first word, wherever the second's tick falls.
    interim_every_secs: float = 1.0

    @classmethod
    def instant(cls) -> "DeepgramTiming":
        """Results the moment the audio allows them: the bot's own latency, nothing else."""
        return cls(result_delay_secs=0.0)


@dataclass(frozen=True)
class OpenAITiming:
    """How a streamed chat completion comes out over time."""

    # Time to first token of gpt-4.1-mini class models: typically 300-400 ms (OpenAI's
    # latency guide; Artificial Analysis measures 0.3-0.6 s for gpt-4.1-mini/gpt-4o-mini).
    first_token_secs: float = 0.35
    # Output speed once streaming: gpt-4.1-mini measures about 70-90 tokens per second
    # (Artificial Analysis); one streamed piece here is about one token.
    tokens_per_sec: float = 80.0

    @classmethod
    def instant(cls) -> "OpenAITiming":
        return cls(first_token_secs=0.0, tokens_per_sec=0.0)

    @property
    def token_gap_secs(self) -> float:
        return 1 / self.tokens_per_sec if self.tokens_per_sec else 0.0


@dataclass(frozen=True)
class CartesiaTiming:
    """How Cartesia's audio comes after a transcript reaches it: a first-audio delay, then
    generated and streamed in small chunks, word timestamps sent as the words are made."""

    # Sonic's time to first audio: Cartesia's client README says the first chunk streams
    # out in 135 ms (90-150 ms measured over the websocket, real-services.md).
    first_audio_secs: float = 0.135
    # Seconds of audio generated per second: the same README says Sonic makes a second of
    # audio in 650 ms (about 1.5x real time). Over a busy link or from a slower voice it
    # comes at 1-3x; 0 means as fast as the socket takes it.
    realtime_factor: float = 1 / 0.65
    # Cartesia does not document when a word's timestamp comes; other voices send theirs with
    # each chunk or in messages trailing the audio. True: a transcript's timestamps come in
    # one message after all of its audio (the unkind end); False: with each chunk.
    timestamps_trail: bool = False

    @classmethod
    def instant(cls) -> "CartesiaTiming":
        return cls(first_audio_secs=0.0, realtime_factor=0.0)

    @classmethod
    def at(cls, realtime_factor: float, *, timestamps_trail: bool = False) -> "CartesiaTiming":
        """The documented first-audio time, then audio at ``realtime_factor`` x real time."""
        return cls(realtime_factor=realtime_factor, timestamps_trail=timestamps_trail)

    @property
    def streams(self) -> bool:
        """Whether the audio takes time to come (else each answer is sent at once)."""
        return self.first_audio_secs > 0 or self.realtime_factor > 0


@dataclass(frozen=True)
class ServiceTiming:
    """One timing model for every fake: ``real()`` (the default) or ``instant()``."""

    deepgram: DeepgramTiming = DeepgramTiming()
    openai: OpenAITiming = OpenAITiming()
    cartesia: CartesiaTiming = CartesiaTiming()

    @classmethod
    def real(cls) -> "ServiceTiming":
        return cls()

    @classmethod
    def instant(cls) -> "ServiceTiming":
        return cls(DeepgramTiming.instant(), OpenAITiming.instant(), CartesiaTiming.instant())
