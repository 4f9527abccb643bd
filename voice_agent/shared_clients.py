"""One OpenAI client per process, shared by every call's LLM service.

pipecat's OpenAILLMService builds a new client for each call: a TLS context (about
20 ms of CPU on the event loop, while other calls wait), a fresh connection (a TCP
and TLS handshake before the first answer of every call), and nothing closes it
afterwards. One client per process keeps a few connections to the LLM warm for
all calls; httpx clients are safe to share between tasks of one event loop.
"""

from functools import cache

from openai import AsyncOpenAI, DefaultAsyncHttpxClient
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.utils.http import connection_limits

# Idle connections are closed after this long, before a server or proxy drops them unseen.
KEEPALIVE_SECS = 60.0


@cache
def openai_client(api_key: str | None, base_url: str | None) -> AsyncOpenAI:
    """The process's client for one API key and endpoint."""
    limits = connection_limits(
        max_keepalive_connections=100, max_connections=1000, keepalive_expiry=KEEPALIVE_SECS
    )
    return AsyncOpenAI(
        api_key=api_key, base_url=base_url, http_client=DefaultAsyncHttpxClient(limits=limits)
    )


class SharedClientOpenAILLMService(OpenAILLMService):
    """OpenAILLMService on the process's shared client (this project sets no org or headers)."""

    def create_client(
        self, api_key: str | None = None, base_url: str | None = None, **kwargs: object
    ) -> AsyncOpenAI:
        return openai_client(api_key, base_url)
