"""Twilio's Calls API as dial-out uses it: create, follow, describe; each failure one line."""

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bot_runtime.config.twilio import TwilioSettings
from bot_runtime.twilio.rest import describe_rest_error, rest_error_code, twilio_client

FINAL_STATUSES = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
# What to do about the Twilio errors people meet when dialling out.
TWILIO_FIXES = {
    20003: "Twilio rejected the credentials: check TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN "
    "(or TWILIO_API_KEY/TWILIO_API_SECRET); an account outside US1 also needs TWILIO_REGION",
    20404: "Twilio does not know this account or call: check TWILIO_ACCOUNT_SID",
    20429: "Twilio is limiting the request rate: lower --cps and --concurrency",
    21210: "the From number is not verified for this account: use a Twilio number you own "
    "(--from or TWILIO_PHONE_NUMBER)",
    21211: "Twilio says the To number is invalid: check the number",
    21212: "Twilio says the From number is invalid: use a Twilio number you own "
    "(--from or TWILIO_PHONE_NUMBER)",
    21214: "the To number cannot be reached",
    21215: "no geo permission to call this country: enable it in the Twilio console, "
    "Voice > Settings > Geo permissions",
    21216: "this account may not call that number (blocked or premium rate)",
    21217: "the To number is not a valid phone number",
    21219: "trial accounts may only call verified numbers: verify it in the Twilio console "
    "(Phone Numbers > Verified Caller IDs) or upgrade the account",
}
# Errors every row of a campaign would hit the same way: the campaign stops at the first.
ACCOUNT_WIDE_CODES = frozenset({20003, 20429, 21210, 21212})
# The Calls API's form fields, as keyword arguments of the SDK's create().
SDK_ARGUMENTS = {
    "To": "to",
    "From": "from_",
    "Twiml": "twiml",
    "MachineDetection": "machine_detection",
    "Timeout": "timeout",
}


class TwilioFailure(Exception):
    """Twilio refused a request or could not be reached; exit code 1."""

    def __init__(self, message: str, *, account_wide: bool = True, sent: bool = False) -> None:
        super().__init__(message)
        self.account_wide = account_wide
        self.sent = sent  # The request may have reached Twilio: a call may exist.


class CallsApi:
    """The two requests dial-out makes, create and fetch, each failure a TwilioFailure."""

    def __init__(self, client: Client, *, url: str) -> None:
        self.client = client
        self.url = url

    async def create(self, fields: Mapping[str, str | int]) -> Any:
        """Start a call with the Calls API's form ``fields``; returns the SDK's call instance."""
        arguments = {SDK_ARGUMENTS[name]: value for name, value in fields.items()}
        return await self._request(self.client.calls.create_async(**arguments))

    async def fetch(self, sid: str) -> Any:
        return await self._request(self.client.calls(sid).fetch_async())

    async def follow(
        self,
        sid: str,
        *,
        poll_interval: float,
        on_poll: Callable[[str, bool], None] | None = None,
    ) -> Any:
        """Fetch the call until it reaches a final status; returns the last fetch.

        ``on_poll(status, changed)`` hears every fetch, ``changed`` when it differs
        from the one before.
        """
        last_status = None
        while True:
            call = await self.fetch(sid)
            if on_poll:
                on_poll(call.status, call.status != last_status)
            last_status = call.status
            if call.status in FINAL_STATUSES:
                return call
            await asyncio.sleep(poll_interval)

    async def _request(self, request):
        try:
            return await request
        except TwilioRestException as exc:
            raise TwilioFailure(
                describe_rest_error(exc, fixes=TWILIO_FIXES),
                account_wide=rest_error_code(exc) in ACCOUNT_WIDE_CODES,
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise TwilioFailure(
                f"cannot reach Twilio at {self.url} ({exc.strerror or exc}): "
                "check the network and TWILIO_API_BASE_URL/TWILIO_REGION"
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TwilioFailure(
                f"no answer from Twilio at {self.url} ({str(exc) or type(exc).__name__})",
                sent=True,
            ) from None


@asynccontextmanager
async def calls_api(settings: TwilioSettings) -> AsyncIterator[CallsApi]:
    """The Calls API with ``settings``' credentials; its HTTP session closes on the way out,
    Ctrl-C included. The caller checks ``settings.missing_credentials`` first."""
    async with twilio_client(settings) as client:
        yield CallsApi(client, url=api_url(settings))


def api_url(settings: TwilioSettings) -> str:
    """The host the SDK will call, for messages and --dry-run."""
    if settings.api_base_url:
        return settings.api_base_url
    if settings.region:
        return f"https://api.{settings.edge}.{settings.region}.twilio.com"
    return "https://api.twilio.com"


def describe_request(settings: TwilioSettings, fields: Mapping[str, str | int]) -> list[str]:
    """The create request as lines for --dry-run: where it goes, whose credentials, the form."""
    account = settings.account_sid or "{TWILIO_ACCOUNT_SID}"
    return [
        f"POST {api_url(settings)}/2010-04-01/Accounts/{account}/Calls.json",
        f"Auth: {_describe_auth(settings)}",
        *(f"{name}={value}" for name, value in fields.items()),
    ]


def _describe_auth(settings: TwilioSettings) -> str:
    """Which credentials would be used, never the secret itself."""
    if settings.missing_credentials:
        return "none yet (" + " and ".join(settings.missing_credentials) + " not set)"
    if settings.api_key:
        return f"API key {settings.api_key} with TWILIO_API_SECRET"
    return f"account {settings.account_sid} with TWILIO_AUTH_TOKEN"
