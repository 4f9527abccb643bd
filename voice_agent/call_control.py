"""Actions on the live call through Twilio's REST API: hand it to a person, record it."""

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.twiml.voice_response import VoiceResponse

from voice_agent.config import TwilioSettings
from voice_agent.twilio_rest import close_client, twilio_client

# What a REST call on the live call can fail with; each is logged, none ends the process.
REST_ERRORS = (TwilioRestException, aiohttp.ClientError, TimeoutError, OSError)


def dial_twiml(number: str) -> str:
    """TwiML that connects the caller to ``number`` (built with the SDK, so it is escaped)."""
    response = VoiceResponse()
    response.dial(number)
    return str(response)


async def transfer(settings: TwilioSettings, call_sid: str, *, to: str) -> None:
    """Redirect the live call to ``to``; Twilio then ends this call's media stream."""
    client = twilio_client(settings)
    try:
        await client.calls(call_sid).update_async(twiml=dial_twiml(to))
    finally:
        await close_client(client)


async def start_recording(
    settings: TwilioSettings, call_sid: str, *, status_callback: str | None = None
) -> str:
    """Record the call from now on, caller and bot on separate channels; returns the SID."""
    options = {"recording_status_callback": status_callback} if status_callback else {}
    client = twilio_client(settings)
    try:
        recording = await client.calls(call_sid).recordings.create_async(
            recording_channels="dual", **options
        )
    finally:
        await close_client(client)
    return recording.sid


def describe(error: BaseException) -> str:
    """A short, secret-free description of a REST failure for the logs."""
    if isinstance(error, TwilioRestException):
        return f"Twilio error {error.code} (HTTP {error.status})"
    return f"{type(error).__name__}: {error}"
