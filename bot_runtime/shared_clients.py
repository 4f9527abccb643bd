"""One OpenAI client per process, shared by every call's LLM service.

pipecat's OpenAILLMService builds a new client for each call: a TLS context (about
20 ms of CPU on the event loop, while other calls wait), a fresh connection (a TCP
and TLS handshake before the first answer of every call), and nothing closes it
afterwards. One client per process keeps a few connections to the LLM warm for
all calls; httpx clients are safe to share between tasks of one event loop.
"""

import asyncio
import threading
from functools import cache

from loguru import logger
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


# A streamed completion of one chunk, as an OpenAI-compatible server sends it.
_CANNED_REPLY = (
    b'data: {"id": "warm-up", "object": "chat.completion.chunk", "created": 0, "model": "warm-up",'
    b' "choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": "stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


def warm_up_openai_sdk() -> bool:
    """Stream one canned completion through the SDK from a throwaway loopback server.

    The SDK and its HTTP stack import and build most of what a streamed request
    needs on first use: that made the first caller's first answer about 35 ms
    slower than any later one. This does it at start-up, in a thread of its own
    so that it works whether or not the importer already runs an event loop.
    Returns whether it worked; a failure only costs the first call those 35 ms.
    """

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s"
            % (len(_CANNED_REPLY), _CANNED_REPLY)
        )
        await writer.drain()
        writer.close()

    async def one_completion() -> str:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with (
            server,
            AsyncOpenAI(
                api_key="warm-up", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
            ) as client,
        ):
            stream = await client.chat.completions.create(
                model="warm-up", messages=[{"role": "user", "content": "warm up"}], stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream])

    def run() -> None:
        try:
            replies.append(asyncio.run(one_completion()))
        except Exception as error:  # Never worth stopping the bot for.
            logger.warning(f"Could not warm up the OpenAI SDK: {error!r}")

    replies: list[str] = []
    thread = threading.Thread(target=run, name="sdk-warm-up")
    thread.start()
    thread.join()
    return replies == ["ok"]
