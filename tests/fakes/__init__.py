"""Loopback fakes of the voice services, speaking their real wire protocols on 127.0.0.1."""

from dataclasses import dataclass

from .cartesia import CartesiaContext, FakeCartesia
from .deepgram import DeepgramSession, FakeDeepgram
from .openai import FakeOpenAI, Reply, ToolCall
from .twilio_rest import FakeTwilio


@dataclass
class Fakes:
    """One fake of every outside service a bot talks to."""

    deepgram: FakeDeepgram
    openai: FakeOpenAI
    cartesia: FakeCartesia
    twilio: FakeTwilio

    def connections(self) -> tuple[int, int, int]:
        """Service connections opened so far (Deepgram, OpenAI, Cartesia)."""
        return self.deepgram.connections, self.openai.connections, self.cartesia.connections


__all__ = [
    "CartesiaContext",
    "DeepgramSession",
    "FakeCartesia",
    "FakeDeepgram",
    "FakeOpenAI",
    "FakeTwilio",
    "Fakes",
    "Reply",
    "ToolCall",
]
