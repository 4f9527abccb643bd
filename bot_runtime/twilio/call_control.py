"""Actions on the live call through Twilio's REST API: redirect it, record it, confirm it."""

import asyncio

from loguru import logger
from twilio.base.exceptions import TwilioRestException
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


# Twilio answers a call fetch in well under a second; the caller's first words wait for the
# answer (or this bound), so a Twilio that is slower than this is taken as unreachable.
CONFIRM_TIMEOUT_SECS = 3.0


class CallNotLive(Exception):
    """Twilio says the stream's call is not a live call on this account; the message says why."""


async def confirm_call(
    settings: TwilioSettings, call_sid: str, *, timeout_secs: float = CONFIRM_TIMEOUT_SECS
) -> tuple[str | None, str | None] | None:
    """Ask Twilio for the stream's call: its From and To numbers, or None if Twilio was not reached.

    Anyone can open a stream naming a call SID; only a call Twilio knows on this
    account, in progress, is worth the services. Raises CallNotLive when Twilio does
    not know the call (404) or it is not in progress. A Twilio that cannot be
    reached, or refuses the credentials, costs only the check: the call goes on and
    the log says so. One request serves both the check and the caller's numbers.
    """
    try:
        async with twilio_client(settings, timeout_secs=timeout_secs) as client:
            call = await asyncio.wait_for(client.calls(call_sid).fetch_async(), timeout_secs)
    except TwilioRestException as error:
        if error.status == 404:
            raise CallNotLive("Twilio does not know this call on this account") from None
        logger.warning(f"Could not confirm the call with Twilio: {describe_rest_error(error)}")
        return None
    except REST_ERRORS as error:
        logger.warning(f"Could not confirm the call with Twilio: {describe_rest_error(error)}")
        return None
    if call.status != "in-progress":
        raise CallNotLive(f"Twilio says the call is {call.status}, not in progress")
    # The SDK names the field `_from`, since `from` is a Python keyword.
    logger.info(f"Call confirmed with Twilio: from {mask(call._from)} to {mask(call.to)}")
    return call._from, call.to
