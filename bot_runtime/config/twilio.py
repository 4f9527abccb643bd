"""How to reach Twilio's REST API (hang-up, transfers, recordings, caller lookup, dial-out)."""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot_runtime.config.environment import EnvReader
from bot_runtime.logs import SECRET

# Twilio's REST API outside us1 is reached as api.{edge}.{region}.twilio.com; these are the
# edges Twilio documents for each region, so TWILIO_REGION alone is enough.
DEFAULT_EDGE_FOR_REGION = {"us1": "ashburn", "ie1": "dublin", "au1": "sydney"}


@dataclass(frozen=True)
class TwilioSettings:
    """How to reach Twilio's REST API: hang-up, caller lookup, dial-out."""

    account_sid: str | None = None
    auth_token: str | None = field(default=None, metadata=SECRET, repr=False)
    api_key: str | None = None
    api_secret: str | None = field(default=None, metadata=SECRET, repr=False)
    region: str | None = None
    edge: str | None = None
    api_base_url: str | None = None
    phone_number: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "TwilioSettings":
        """Read the TWILIO_* variables; raises ConfigError naming every problem."""
        reader = EnvReader(env)
        settings = cls.read(reader)
        reader.raise_if_problems()
        return settings

    @classmethod
    def read(cls, reader: EnvReader) -> "TwilioSettings":
        problems = reader.problems
        account_sid = reader.text("TWILIO_ACCOUNT_SID")
        auth_token = reader.text("TWILIO_AUTH_TOKEN")
        api_key = reader.text("TWILIO_API_KEY")
        api_secret = reader.text("TWILIO_API_SECRET")
        region = reader.text("TWILIO_REGION")
        edge = reader.text("TWILIO_EDGE")
        api_base_url = reader.url("TWILIO_API_BASE_URL", ("http:", "https:"))
        phone_number = reader.phone_number("TWILIO_PHONE_NUMBER")

        if account_sid and not (account_sid.startswith("AC") and len(account_sid) == 34):
            problems.append("TWILIO_ACCOUNT_SID must be 'AC' followed by 32 characters")
        if auth_token and (api_key or api_secret):
            problems.append(
                "Set either TWILIO_AUTH_TOKEN or TWILIO_API_KEY + TWILIO_API_SECRET, not both "
                "(a forgotten token would stay deployed unnoticed)"
            )
        elif bool(api_key) != bool(api_secret):
            missing = "TWILIO_API_SECRET" if api_key else "TWILIO_API_KEY"
            problems.append(f"TWILIO_API_KEY and TWILIO_API_SECRET go together: {missing} is unset")
        if api_key and not api_key.startswith("SK"):
            problems.append("TWILIO_API_KEY must be an API key SID starting with 'SK'")
        if edge and not region:
            region = "us1"  # Twilio's own rule: an edge without a region means us1.
        if region and not edge:
            edge = DEFAULT_EDGE_FOR_REGION.get(region)
            if edge is None and not api_base_url:
                known = ", ".join(DEFAULT_EDGE_FOR_REGION)
                problems.append(
                    f"TWILIO_REGION={region} has no default edge (known: {known}): set TWILIO_EDGE"
                )
        return cls(
            account_sid=account_sid,
            auth_token=auth_token,
            api_key=api_key,
            api_secret=api_secret,
            region=region,
            edge=edge,
            api_base_url=api_base_url.rstrip("/") if api_base_url else None,
            phone_number=phone_number,
        )

    @property
    def missing_credentials(self) -> list[str]:
        """The variables still needed to call the REST API; empty when it can be called."""
        missing = []
        if not self.account_sid:
            missing.append("TWILIO_ACCOUNT_SID")
        if not (self.auth_token or (self.api_key and self.api_secret)):
            missing.append("TWILIO_AUTH_TOKEN (or TWILIO_API_KEY + TWILIO_API_SECRET)")
        return missing

    @property
    def basic_auth(self) -> tuple[str, str]:
        """The Basic auth pair Twilio expects: the API key and secret, or the account and token."""
        if self.api_key and self.api_secret:
            return self.api_key, self.api_secret
        return self.account_sid or "", self.auth_token or ""
