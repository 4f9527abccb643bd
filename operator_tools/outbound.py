"""The create-call request of an outbound call: who calls, and inline TwiML to the agent."""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from operator_tools.twiml import (
    MAX_INLINE_TWIML_CHARS,
    StreamTarget,
    TwimlError,
    stream_parameters,
    stream_twiml,
)


@dataclass(frozen=True)
class OutboundCalls:
    """What every outbound call of one run shares: the agent, caller ID and options."""

    target: StreamTarget
    from_number: str
    stream_secret: str | None = field(repr=False)
    extra: Mapping[str, str]
    machine_detection: bool
    timeout: int | None

    def masked(self) -> "OutboundCalls":
        """These calls as --dry-run shows them: the stream secret as a placeholder.

        A dry run's output gets pasted into tickets and chats; the secret is what
        keeps strangers' streams out of the agent.
        """
        if self.stream_secret is None:
            return self
        return replace(self, stream_secret="{STREAM_SECRET}")

    def parameters(self, to: str, row_parameters: Mapping[str, str] | None = None) -> dict:
        """The <Stream> Parameters the bot gets: the numbers, call_type=outbound, the extras."""
        return stream_parameters(
            self.target,
            from_number=self.from_number,
            to_number=to,
            stream_secret=self.stream_secret,
            extra={**self.extra, **(row_parameters or {})},
            call_type="outbound",
        )

    def fields(self, *, to: str, row_parameters: Mapping[str, str] | None = None) -> dict:
        """The create-call form: inline TwiML, so no webhook round trip on answer."""
        twiml = stream_twiml(self.target.url, self.parameters(to, row_parameters))
        if len(twiml) > MAX_INLINE_TWIML_CHARS:
            raise TwimlError(
                f"the TwiML is {len(twiml)} characters and Twilio takes at most "
                f"{MAX_INLINE_TWIML_CHARS}: shorten the parameter values"
            )
        fields: dict[str, str | int] = {"To": to, "From": self.from_number, "Twiml": twiml}
        if self.machine_detection:
            fields["MachineDetection"] = "Enable"
        if self.timeout is not None:
            fields["Timeout"] = self.timeout
        return fields
