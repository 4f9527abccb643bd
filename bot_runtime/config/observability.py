"""What the operator sees of the calls: LOG_LEVEL, and OpenTelemetry traces to a collector."""

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from bot_runtime.config.environment import EnvReader
from bot_runtime.logs import LOG_LEVELS, SECRET

# The OpenTelemetry exporter reads these standard variables itself; they are checked here so a
# mistake is named at start-up, not found in a collector that never gets a span.
ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
HEADERS = ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
PROTOCOLS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
HTTP_PROTOBUF = "http/protobuf"


@dataclass(frozen=True)
class TracingSettings:
    """Where each call's trace goes (OTLP over HTTP), and whether it may carry what was said."""

    # An endpoint may carry a token in its query, so no repr shows it.
    endpoint: str = field(repr=False)
    # The headers' values are the collector's API keys: the logs redact them.
    header_values: tuple[str, ...] = field(metadata=SECRET, repr=False)
    include_content: bool


def read_observability(reader: EnvReader) -> dict[str, Any]:
    """LOG_LEVEL, and the tracing settings (None without an OTLP endpoint)."""
    level = (reader.text("LOG_LEVEL") or "INFO").upper()
    if level not in LOG_LEVELS:
        reader.problems.append(
            f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {reader.text('LOG_LEVEL')!r}"
        )
        level = "INFO"
    return {"log_level": level, "tracing": _read_tracing(reader)}


def _read_tracing(reader: EnvReader) -> TracingSettings | None:
    include_content = reader.flag("OTEL_INCLUDE_CONTENT", False)
    named = [name for name in ENDPOINTS if reader.text(name)]
    if not named:
        return None
    endpoint = reader.url(named[0], ("https:", "http:")) or ""
    for name in PROTOCOLS:
        protocol = reader.text(name)
        if protocol and protocol != HTTP_PROTOBUF:
            reader.problems.append(
                f"{name} must be {HTTP_PROTOBUF} (the bot exports traces over OTLP/HTTP), "
                f"got {protocol!r}"
            )
    values: list[str] = []
    for name in HEADERS:
        for item in (reader.text(name) or "").split(","):
            key, equals, value = item.partition("=")
            if not item.strip():
                continue
            if not (equals and key.strip() and value.strip()):
                # The item is not repeated: it may be a key that lost its name.
                reader.problems.append(
                    f"{name} must be name=value pairs separated by commas "
                    "(e.g. x-honeycomb-team=YOUR_API_KEY): an item has no name or no value"
                )
                continue
            # As sent (the exporter decodes %-escapes) and as written.
            values += {value.strip(), unquote(value.strip())}
    return TracingSettings(
        endpoint=endpoint, header_values=tuple(values), include_content=include_content
    )
