"""Loopback fakes of the voice services, speaking their real wire protocols on 127.0.0.1."""

from .cartesia import CartesiaContext, FakeCartesia
from .deepgram import DeepgramSession, FakeDeepgram
from .openai import FakeOpenAI, Reply, ToolCall

__all__ = [
    "CartesiaContext",
    "DeepgramSession",
    "FakeCartesia",
    "FakeDeepgram",
    "FakeOpenAI",
    "Reply",
    "ToolCall",
]
