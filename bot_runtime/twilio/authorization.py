"""Stream authorisation: Pipecat Cloud's /ws/twilio accepts any stream that names the agent."""

import hmac

from bot_runtime.config.settings import BotSettings
from bot_runtime.phone_line import STREAM_SECRET_PARAMETER
from bot_runtime.twilio.stream import StreamStart


def refusal_reason(start: StreamStart, settings: BotSettings) -> str | None:
    """Why this stream must be refused, or None when it may proceed.

    Anyone who learns AGENT.ORG can point their own Twilio number at the agent, so
    a stream from another Twilio account is refused when TWILIO_ACCOUNT_SID is set,
    and a stream without the shared secret when STREAM_SECRET is set. The reason
    names what failed but never the secret itself.
    """
    expected_account = settings.twilio.account_sid
    if expected_account and start.account_sid != expected_account:
        return "accountSid does not match TWILIO_ACCOUNT_SID"
    if settings.stream_secret:
        offered = start.custom_parameters.get(STREAM_SECRET_PARAMETER)
        if offered is None:
            return f"the '{STREAM_SECRET_PARAMETER}' parameter is missing"
        if not hmac.compare_digest(offered.encode(), settings.stream_secret.encode()):
            return f"the '{STREAM_SECRET_PARAMETER}' parameter is wrong"
    return None
