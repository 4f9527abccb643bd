"""Actions on the live call through Twilio's REST API: redirect it, record it, look it up."""

import asyncio

from loguru import logger
from twilio.twiml.voice_response import VoiceResponse

from bot_runtime.config.twilio import TwilioSettings
from bot_runtime.phone_numbers import mask
from bot_runtime.twilio.rest import REST_ERRORS, describe_rest_error, twilio_client


def dial_twiml(number: str, *, whisper_url: str | None = None) -> str:
    """TwiML that connects the caller to ``number`` (built with the SDK, so it is escaped).

    With ``whisper_url``, Twilio plays the TwiML found there to whoever answers
    before connecting them (a "whisper"), while the caller hears it ring.
    """
    response = VoiceResponse()
    if whisper_url is None:
        response.dial(number)
    else:
        response.dial().number(number, url=whisper_url)
    return str(response)


async def redirect_to(
    settings: TwilioSettings, call_sid: str, *, number: str, whisper_url: str | None = None
) -> None:
    """Redirect the live call to ``number``; Twilio then ends this call's media stream."""
    async with twilio_client(settings) as client:
        await client.calls(call_sid).update_async(twiml=dial_twiml(number, whisper_url=whisper_url))


async def start_recording(
    settings: TwilioSettings, call_sid: str, *, status_callback: str | None = None
) -> str:
    """Record the call from now on, caller and bot on separate channels; returns the SID."""
    options = {"recording_status_callback": status_callback} if status_callback else {}
    async with twilio_client(settings) as client:
        recording = await client.calls(call_sid).recordings.create_async(
            recording_channels="dual", **options
        )
    return recording.sid


async def look_up_numbers(
    settings: TwilioSettings, call_sid: str, *, timeout_secs: float = 5.0
) -> tuple[str | None, str | None] | None:
    """The call's From and To numbers from Twilio's REST API, or None if that failed.

    Used when the TwiML did not pass ``from_number``. It runs beside the call,
    never before the greeting, and a failure only costs the personalisation.
    """
    if settings.missing_credentials:
        logger.info("Caller lookup skipped: no Twilio credentials")
        return None
    try:
        async with twilio_client(settings, timeout_secs=timeout_secs) as client:
            call = await asyncio.wait_for(client.calls(call_sid).fetch_async(), timeout_secs)
    except REST_ERRORS as error:
        logger.warning(f"Caller lookup failed: {describe_rest_error(error)}")
        return None
    # The SDK names the field `_from`, since `from` is a Python keyword.
    logger.info(f"Caller lookup: from {mask(call._from)} to {mask(call.to)}")
    return call._from, call.to
