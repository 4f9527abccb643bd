"""Replies voiced from their first phrase: the caller hears "Sure," while the rest is written."""

from collections.abc import AsyncIterator

from pipecat.services.cartesia.tts import CartesiaTTSService
from pipecat.utils.text.base_text_aggregator import Aggregation
from pipecat.utils.text.simple_text_aggregator import SimpleTextAggregator

# Punctuation that closes a phrase inside a sentence, where a speaker may start and go on.
PHRASE_ENDS = ",;:"


class FirstPhraseAggregator(SimpleTextAggregator):
    """pipecat's sentence aggregation, except that a reply's first phrase goes on its own.

    Sentence by sentence, the voice waits for the LLM to write the whole first
    sentence (a few tokens' time even for "Sure, I can help with that."), in
    series with everything else the caller waits for. The first phrase ("Sure,")
    goes to the voice as soon as its comma arrives, and the sentences after it are
    written while it plays. Cartesia keeps one reply's chunks in one context, so the
    prosody carries across them, and pipecat asks it not to buffer text of its own
    (``max_buffer_delay_ms=0`` with sentence aggregation: Cartesia's "custom
    buffering"). A comma between digits ("1,500") is not a phrase end; a reply
    without a comma in its first sentence goes as before.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._first_phrase_out = False

    async def aggregate(self, text: str) -> AsyncIterator[Aggregation]:
        rest = text
        while rest and not self._first_phrase_out:
            char, rest = rest[0], rest[1:]
            async for sentence in super().aggregate(char):
                self._first_phrase_out = True
                yield sentence
            if not self._first_phrase_out and self._ends_a_phrase(char):
                phrase = self.text
                await self.reset()
                self._first_phrase_out = True
                yield phrase
        if rest:
            async for sentence in super().aggregate(rest):
                yield sentence

    async def flush(self) -> Aggregation | None:
        self._first_phrase_out = False  # The reply is over: the next starts afresh.
        return await super().flush()

    async def handle_interruption(self) -> None:
        self._first_phrase_out = False
        await super().handle_interruption()

    def _ends_a_phrase(self, char: str) -> bool:
        before = self.text.text[:-1]
        return char in PHRASE_ENDS and before[-1:].isalpha()


class CartesiaPhraseFirstTTS(CartesiaTTSService):
    """pipecat's Cartesia voice, given each reply's first phrase as soon as it is written."""

    def __init__(self, **kwargs) -> None:
        # Cartesia joins one context's transcripts verbatim: "Sure," then "I can" would
        # read "Sure,I can" without the space after each.
        super().__init__(append_trailing_space=True, **kwargs)
        # pipecat: private. The service's own aggregator (Cartesia's sets one that keeps
        # <spell> tags whole, which this bot's prompts do not use); no public way to choose
        # it, and an LLMTextProcessor in front loses the service's handling of interruptions.
        self._text_aggregator = FirstPhraseAggregator()
