"""One HTTP session per process, shared by every call's tools and call records."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import aiohttp
from yarl import URL

# Enough for a moved endpoint and a trailing-slash fix; a longer chain is a loop or a mistake.
MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}


class RedirectRefused(Exception):
    """The server redirected the request elsewhere than its own scheme, host and port."""


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


@asynccontextmanager
async def same_origin_request(
    method: str, url: str, **options: Any
) -> AsyncIterator[aiohttp.ClientResponse]:
    """A request on the shared session that follows redirects only on its own origin.

    aiohttp drops only Authorization and Cookie when a redirect changes host, so
    a business's own header (an X-Api-Key) and a 307's body (whole phone numbers)
    would go wherever the redirect points, https to http included. A redirect to
    another scheme, host or port raises RedirectRefused; on the same origin, 307
    and 308 keep the method and body, and 303 (or 301/302 after a POST) becomes a
    GET without one, as aiohttp does.
    """
    session = http_session()
    for _ in range(MAX_REDIRECTS + 1):
        async with session.request(method, url, allow_redirects=False, **options) as response:
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or location is None:
                yield response
                return
        try:
            target = response.url.join(URL(location))
        except ValueError:
            raise RedirectRefused("redirected to an unreadable location") from None
        if _origin(target) != _origin(response.url):
            raise RedirectRefused(
                f"redirected to another scheme, host or port ({target.origin()}); not followed"
            )
        if response.status == 303 or (response.status in (301, 302) and method == "POST"):
            method = "GET"
            options.pop("data", None)
            options.pop("json", None)
        url = str(target)
        options.pop("params", None)  # The Location carries the query it wants.
    raise RedirectRefused(f"more than {MAX_REDIRECTS} redirects")


def _origin(url: URL) -> tuple[str, str | None, int | None]:
    return url.scheme, url.host, url.port
