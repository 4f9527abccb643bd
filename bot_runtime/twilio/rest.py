"""Twilio's REST API through the official SDK: one way to open a client and describe errors."""

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from bot_runtime.config.twilio import TwilioSettings
from bot_runtime.phone_numbers import mask
from bot_runtime.warm_up import warm_up

# What a REST request can fail with; each is described by describe_rest_error().
REST_ERRORS = (TwilioRestException, aiohttp.ClientError, TimeoutError, OSError)
# A number inside Twilio's own error text ("The number +1415... is unverified").
_NUMBER_IN_TEXT = re.compile(r"\+[1-9]\d{5,14}")


@asynccontextmanager
async def twilio_client(
    settings: TwilioSettings, *, timeout_secs: float = 10.0
) -> AsyncIterator[Client]:
    """A Twilio client for the SDK's ``*_async`` methods, its HTTP session closed on the way out.

    Raises ValueError naming the missing variables when no credentials are set, so
    callers can say exactly what to fix. With TWILIO_API_BASE_URL every request goes
    to that host instead of api.twilio.com (a Twilio-compatible or self-hosted API);
    region and edge then do not apply, since the SDK would rewrite that host.
    """
    if settings.missing_credentials:
        raise ValueError("missing " + " and ".join(settings.missing_credentials))
    username, password = settings.basic_auth
    use_base_url = settings.api_base_url is not None
    client = Client(
        username,
        password,
        account_sid=settings.account_sid,
        http_client=AsyncTwilioHttpClient(timeout=timeout_secs),
    )
    # The SDK takes a region or edge left unset (and an empty `environment`) from
    # TWILIO_REGION and TWILIO_EDGE in os.environ, which would rewrite a base URL's host:
    # the settings alone say which apply.
    client.region = None if use_base_url else settings.region
    client.edge = None if use_base_url else settings.edge
    if use_base_url:
        client.api.base_url = settings.api_base_url
    try:
        yield client
    finally:
        # aiohttp warns about (and leaks) a session left open.
        await client.http_client.close()


def warm_up_twilio_sdk() -> bool:
    """Do now, offline, what the SDK does on a process's first client: load its REST resources.

    A client imports Twilio's whole Account API (every resource under it) the first
    time anything reaches ``client.api``: inside a call, the caller lookup beside
    the greeting, a recording or a transfer, that held the event loop, and every
    call's audio, for tens of milliseconds (far more without compiled bytecode).
    This opens a client the way calls do, with made-up credentials, and walks to
    the resources they use, sending nothing; reaching them, rather than importing
    a list of modules, stays right when an SDK release moves them. Returns whether
    it worked.
    """

    async def walk() -> bool:
        made_up = TwilioSettings(account_sid="AC" + "0" * 32, auth_token="warm-up")
        async with twilio_client(made_up) as client:
            call = client.calls("CA" + "0" * 32)
            call.recordings  # noqa: B018 (reaching it loads it)
        return True

    return warm_up(walk, what="the Twilio SDK") is not None


def rest_error_code(error: BaseException) -> int | None:
    """Twilio's error code for a refused request (a 401 is always 20003), else None."""
    if not isinstance(error, TwilioRestException):
        return None
    return 20003 if error.status == 401 else error.code


def describe_rest_error(error: BaseException, *, fixes: Mapping[int, str] | None = None) -> str:
    """One secret-free line about a failed REST request, phone numbers masked.

    ``fixes`` maps Twilio error codes to what the reader should do about them; a
    known code is described by its fix, an unknown one by Twilio's own message.
    """
    if not isinstance(error, TwilioRestException):
        return f"{type(error).__name__}: {error}"
    code = rest_error_code(error)
    fix = (fixes or {}).get(code) if code is not None else None
    if fix:
        return f"Twilio error {code}: {fix}"
    detail = _NUMBER_IN_TEXT.sub(lambda m: mask(m.group()), str(error.msg or "").strip())
    detail = detail or f"HTTP {error.status}"
    return f"Twilio error {code}: {detail} (https://www.twilio.com/docs/errors/{code})"
