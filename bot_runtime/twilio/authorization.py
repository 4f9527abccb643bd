"""Stream authorisation: Pipecat Cloud's /ws/twilio accepts any stream that names the agent."""

import hmac
import ipaddress
from collections.abc import Mapping

from twilio.request_validator import RequestValidator

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


def upgrade_refusal(
    headers: Mapping[str, str], *, path: str, peer: str | None, auth_token: str | None
) -> str | None:
    """Why a WebSocket upgrade the bot saw itself is not Twilio's, or None when it may proceed.

    Twilio signs a Media Stream's upgrade (``X-Twilio-Signature``) with the auth
    token over the stream URL as it dialled it: ``wss://`` (Twilio dials nothing
    else), the host a tunnel forwards (``X-Forwarded-Host``, else ``Host``) and the
    path. Without TWILIO_AUTH_TOKEN nothing can be checked. An unsigned upgrade is
    a local client's (the simulated caller, the softphone), allowed only straight
    from this machine: a tunnel adds ``X-Forwarded-For``, and any other peer is
    outside. Only under the development runner does the bot see the upgrade; behind
    Pipecat Cloud, STREAM_SECRET and the call's check with Twilio stand in.
    """
    if not auth_token:
        return None
    signature = headers.get("x-twilio-signature")
    if signature is None:
        if not from_this_machine(headers, peer=peer):
            return "no X-Twilio-Signature on a stream from outside this machine"
        return None
    host = headers.get("x-forwarded-host") or headers.get("host", "")
    url = f"wss://{host}{path}"
    if not RequestValidator(auth_token).validate(url, {}, signature):
        return "X-Twilio-Signature does not match TWILIO_AUTH_TOKEN and the stream URL"
    return None


def from_this_machine(headers: Mapping[str, str], *, peer: str | None) -> bool:
    """Whether the upgrade came straight from this machine: a loopback peer, not via a tunnel.

    A tunnel's agent connects from this machine too, but adds ``X-Forwarded-For``.
    """
    if "x-forwarded-for" in headers or peer is None:
        return False
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False
