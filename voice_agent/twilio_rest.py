"""Twilio's REST API through the official SDK, asynchronously, honouring region and base URL."""

from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from voice_agent.config import TwilioSettings


def twilio_client(settings: TwilioSettings, *, timeout_secs: float = 10.0) -> Client:
    """A Twilio client for the ``*_async`` methods; close it with ``await close_client(client)``.

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
        region=None if use_base_url else settings.region,
        edge=None if use_base_url else settings.edge,
        http_client=AsyncTwilioHttpClient(timeout=timeout_secs),
        environment={},  # Never let the SDK read credentials behind our back.
    )
    if use_base_url:
        client.api.base_url = settings.api_base_url
    return client


async def close_client(client: Client) -> None:
    """Release the client's HTTP session (aiohttp warns about unclosed sessions otherwise)."""
    await client.http_client.close()
