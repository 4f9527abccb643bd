"""Loopback fakes of the voice services, speaking their real wire protocols on 127.0.0.1."""

from dataclasses import dataclass

from .cartesia import CartesiaContext, FakeCartesia
from .deepgram import DeepgramSession, FakeDeepgram
from .deepgram_stream import Spoken
from .openai import FakeOpenAI, NoChoices, Reply, ToolCall
from .timing import CartesiaTiming, DeepgramTiming, OpenAITiming, ServiceTiming
from .twilio_rest import FakeTwilio


@dataclass
class Fakes:
    """One fake of every outside service a bot talks to."""

    deepgram: FakeDeepgram
    openai: FakeOpenAI
    cartesia: FakeCartesia
    twilio: FakeTwilio

    def service_env(self) -> dict[str, str]:
        """The environment variables that send a bot's traffic for every service to its fake."""
        return {
            "OPENAI_API_KEY": self.openai.api_key,
            "OPENAI_BASE_URL": self.openai.base_url,
            "DEEPGRAM_API_KEY": self.deepgram.api_key,
            "DEEPGRAM_BASE_URL": self.deepgram.base_url,
            "CARTESIA_API_KEY": self.cartesia.api_key,
            "CARTESIA_URL": self.cartesia.url,
            "TWILIO_API_BASE_URL": self.twilio.base_url,
        }

    def connections(self) -> tuple[int, int, int]:
        """Service connections opened so far (Deepgram, OpenAI, Cartesia)."""
        return self.deepgram.connections, self.openai.connections, self.cartesia.connections


__all__ = [
    "CartesiaContext",
    "CartesiaTiming",
    "DeepgramSession",
    "DeepgramTiming",
    "FakeCartesia",
    "FakeDeepgram",
    "FakeOpenAI",
    "FakeTwilio",
    "Fakes",
    "NoChoices",
    "OpenAITiming",
    "Reply",
    "ServiceTiming",
    "Spoken",
    "ToolCall",
]
