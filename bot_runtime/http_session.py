"""One HTTP session per process, shared by every call's tools and call records."""

import asyncio
from functools import cache

import aiohttp


@cache
def _session(loop: asyncio.AbstractEventLoop) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=300),
        headers={"User-Agent": "pipecat-twilio-agent"},
    )


def http_session() -> aiohttp.ClientSession:
    """The process's session (one per event loop: a session belongs to the loop it was made on).

    Connections to the business's servers stay open between calls, so a tool call
    or a call record does not pay for a TCP and TLS handshake each time.
    """
    return _session(asyncio.get_running_loop())
