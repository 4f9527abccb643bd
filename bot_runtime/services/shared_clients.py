"""One OpenAI client per process, shared by every call's LLM service.

pipecat's OpenAILLMService builds a new client for each call: a TLS context (CPU on
the event loop while other calls wait; docs/performance.md), a fresh connection (a TCP
and TLS handshake before the first answer of every call), and nothing closes it
afterwards. One client per process keeps a few connections to the LLM warm for
all calls; httpx clients are safe to share between tasks of one event loop.
"""

import asyncio
from functools import cache
from typing import Any

from openai import AsyncOpenAI, DefaultAsyncHttpxClient
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.utils.http import connection_limits

from bot_runtime.warm_up import warm_up

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
    """OpenAILLMService on the process's shared client (this project sets no org or headers).

    With a ``reminder``, a request whose last messages are tool results ends with it
    as a system message: a result in another language than the call's (an English
    shipping status on a Spanish call) would otherwise pull the reply into its
    language. The reminder goes in the request only, never into the call's context.
    """

    def __init__(self, *, reminder: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Public: a call that changes language mid-call changes its reminder too.
        self.reminder = reminder

    def build_chat_completion_params(self, params_from_context: Any) -> dict:
        params = super().build_chat_completion_params(params_from_context)
        messages = params.get("messages")
        after_a_tool = isinstance(messages, list) and messages and messages[-1]["role"] == "tool"
        if self.reminder and after_a_tool:
            params["messages"] = [*messages, {"role": "system", "content": self.reminder}]
        return params

    def create_client(
        self, api_key: str | None = None, base_url: str | None = None, **kwargs: object
    ) -> AsyncOpenAI:
        return openai_client(api_key, base_url)


# A streamed completion of one chunk, as an OpenAI-compatible server sends it.
_CANNED_STREAM = (
    b'data: {"id": "warm-up", "object": "chat.completion.chunk", "created": 0, "model": "warm-up",'
    b' "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}\n\n'
    b"data: [DONE]\n\n"
)
# The same answer whole, as a request without streaming (a transfer brief, an analysis) gets it.
_CANNED_COMPLETION = (
    b'{"id": "warm-up", "object": "chat.completion", "created": 0, "model": "warm-up",'
    b' "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},'
    b' "finish_reason": "stop"}]}'
)
# What the calls' requests carry besides messages: a tool, and the analysis's strict schema.
_TOOL = {"type": "function", "function": {"name": "warm_up", "parameters": {"type": "object"}}}
_SCHEMA = {"type": "object", "properties": {}, "required": [], "additionalProperties": False}


def warm_up_openai_sdk() -> bool:
    """Put one streamed and one whole canned completion through the SDK from a loopback server.

    The SDK and its HTTP stack import and build most of what a request needs on
    first use: that made the first caller's first answer slower than any later one
    (docs/performance.md), and the process's first transfer brief or post-call
    analysis (a request without streaming, with response types of its own) held the
    event loop again. This does both at start-up. Returns whether it worked.
    """
    return warm_up(_canned_completions, what="the OpenAI SDK") == ["ok", "ok"]


async def _canned_completions() -> list[str]:
    """One streamed and one whole completion from a loopback server that answers both "ok"."""
    answers = [
        (b"text/event-stream", _CANNED_STREAM),
        (b"application/json", _CANNED_COMPLETION),
    ]

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        content_type, body = answers.pop(0)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (content_type, len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    messages = [{"role": "user", "content": "warm up"}]
    async with (
        server,
        AsyncOpenAI(
            api_key="warm-up", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
        ) as client,
    ):
        stream = await client.chat.completions.create(
            model="warm-up", messages=messages, tools=[_TOOL], stream=True
        )
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream])
        whole = await client.chat.completions.create(
            model="warm-up",
            messages=messages,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "warm_up", "strict": True, "schema": _SCHEMA},
            },
        )
        return [streamed, whole.choices[0].message.content or ""]
