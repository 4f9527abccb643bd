"""OpenTelemetry: each call one trace over OTLP/HTTP, without words or phone numbers unless asked.

With OTEL_EXPORTER_OTLP_ENDPOINT set (see config/observability.py), ``set_up`` installs a
tracer provider once at start-up, and each call's pipeline worker traces the call with
pipecat's spans: the conversation (its id the CallSid; the call's direction, agent file and
backups as attributes), its turns, and the speech-to-text, LLM and voice requests of each;
the tools the LLM calls get a span each here. Spans are exported in batches from the
exporter's own thread: never on the event loop, never in a call's way.

pipecat writes what was said into its spans (transcripts, the LLM's messages and replies, the
voice's text). Unless OTEL_INCLUDE_CONTENT is on, those attributes are dropped before export,
and whatever is exported has its E.164 numbers masked and the bot's secrets redacted, as the
logs have.

Without an endpoint nothing is set up: pipecat's tracer stays OpenTelemetry's no-op, workers
run without tracing and turn tracking, and tools run unwrapped.
"""

import asyncio
import atexit
import contextlib
import dataclasses
import json
import logging
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from loguru import logger
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.services.llm_service import FunctionCallParams

from bot_runtime.logs import scrubbed

SERVICE_NAME = "pipecat-twilio-agent"  # Unless OTEL_SERVICE_NAME names it otherwise.
# What was said, in pipecat's spans and the tool spans below: kept only with
# OTEL_INCLUDE_CONTENT. (The system instruction holds the call's facts, the numbers among them.)
CONTENT_ATTRIBUTES = frozenset(
    {
        "transcript",  # speech-to-text: the caller's words
        "text",  # the voice: the bot's words
        "text_output",
        "input",  # the LLM: the conversation so far
        "output",  # the LLM: its reply
        "gen_ai.system_instructions",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
    }
)
# A call's spans are sent when it ends (Pipecat Cloud may stop the instance once bot()
# returns); a collector that does not answer delays bot()'s return, and the process's exit,
# by no more than this (the exporter alone would retry for OTEL_EXPORTER_OTLP_TIMEOUT, 10 s).
FLUSH_WAIT_SECS = 3.0
CONVERSATION_SPAN = "conversation"  # pipecat's name for the span of the whole call

_conversations: "ConversationSpans | None" = None
_provider: TracerProvider | None = None
_include_content = False


def set_up(*, include_content: bool, secrets: Iterable[str]) -> None:
    """Install the tracer provider and its exporter, once, at start-up (with an endpoint set:
    config/observability.py's TracingSettings). ``include_content``: OTEL_INCLUDE_CONTENT.

    What is left is sent at the process's exit.
    """
    global _conversations, _provider, _include_content
    # Imported only here: a bot without tracing never loads the exporter's HTTP stack.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": SERVICE_NAME}
    _provider = TracerProvider(resource=Resource.create(attributes), shutdown_on_exit=False)
    _conversations = ConversationSpans()
    _provider.add_span_processor(_conversations)
    # The exporter reads the endpoint and headers from the standard variables itself.
    exporter = ScrubbingExporter(
        OTLPSpanExporter(), secrets=list(secrets), include_content=include_content
    )
    _provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(_provider)
    atexit.register(_send_the_rest, _provider, exporter)
    # The exporter reports through the standard logging module: into the bot's log (scrubbed),
    # one line per batch it gave up on rather than one per retry.
    exporter_log = logging.getLogger("opentelemetry")
    exporter_log.addHandler(_ToLoguru())
    exporter_log.setLevel(logging.ERROR)
    exporter_log.propagate = False
    _include_content = include_content
    logger.info(
        "Traces: each call exported over OTLP/HTTP"
        + ("; with what was said" if include_content else "; without what was said")
    )


def enabled() -> bool:
    return _provider is not None


def worker_options(*, call_sid: str, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The PipelineWorker options that trace a call (none without tracing).

    pipecat's turn spans come from its turn tracking, which is otherwise off.
    """
    if not enabled():
        return {}
    return {
        "enable_tracing": True,
        "enable_turn_tracking": True,
        "conversation_id": call_sid,
        "additional_span_attributes": dict(attributes),
    }


def mark_call(call_sid: str, attributes: Mapping[str, Any]) -> None:
    """Set ``attributes`` on the call's conversation span, while the call runs."""
    if _conversations is not None:
        _conversations.mark(call_sid, attributes)


def traced_tools(tools: ToolsSchema) -> ToolsSchema:
    """``tools`` with each handler run in a span of its own (``tools`` as they are without
    tracing)."""
    if not enabled():
        return tools
    return ToolsSchema(
        standard_tools=[
            FunctionSchema(
                schema.name,
                schema.description,
                schema.properties,
                schema.required,
                handler=_traced_handler(schema.name, schema.handler) if schema.handler else None,
            )
            for schema in tools.standard_tools
        ],
        custom_tools=tools.custom_tools,
    )


async def flushed() -> None:
    """Send the spans still waiting (a call's, once it has ended), off the event loop, waiting
    at most FLUSH_WAIT_SECS (the export goes on after that)."""
    if _provider is None:
        return
    loop, provider = asyncio.get_running_loop(), _provider
    sent = loop.create_future()

    def send() -> None:
        try:
            provider.force_flush()
        finally:
            with contextlib.suppress(RuntimeError):  # The loop may have closed meanwhile.
                loop.call_soon_threadsafe(lambda: sent.done() or sent.set_result(None))

    # A thread of its own, not the loop's default ones: with the collector down an export
    # retries for the exporter's whole timeout, and a daemon, so that it holds no exit.
    threading.Thread(target=send, name="trace-flush", daemon=True).start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(sent), FLUSH_WAIT_SECS)


def _send_the_rest(provider: TracerProvider, exporter: SpanExporter) -> None:
    """At exit: what is left goes, for at most FLUSH_WAIT_SECS; then any retry stops.

    (The provider's own exit hook would wait out every retry of a collector that is down.)
    """
    sending = threading.Thread(target=provider.force_flush, name="trace-flush", daemon=True)
    sending.start()
    sending.join(FLUSH_WAIT_SECS)
    exporter.shutdown()


def _traced_handler(name: str, handler):
    """The tool ``name`` run in an ``execute_tool`` span (OpenTelemetry's GenAI names).

    The span is the LLM request's child: pipecat starts the tool's task inside it.
    """
    tracer = trace.get_tracer("bot_runtime.tools")

    async def traced(params: FunctionCallParams) -> None:
        with tracer.start_as_current_span(
            f"execute_tool {name}",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": name,
                "gen_ai.tool.call.id": params.tool_call_id,
            },
        ) as span:
            if _include_content:
                span.set_attribute("gen_ai.tool.call.arguments", _json(params.arguments))
            answer = params.result_callback

            async def result_callback(result: Any, **kwargs: Any) -> None:
                if isinstance(result, dict) and "error" in result:
                    span.set_attribute("error.type", "tool_error")
                if _include_content:
                    span.set_attribute("gen_ai.tool.call.result", _json(result))
                await answer(result, **kwargs)

            await handler(dataclasses.replace(params, result_callback=result_callback))

    return traced


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


class _ToLoguru(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        logger.log(record.levelname, f"Traces: {record.getMessage()}")


class ConversationSpans(SpanProcessor):
    """The conversation spans of the calls running now, so a call can add to its own.

    pipecat starts and ends them; whatever is learned mid-call (a backup took over)
    is set on the live span, which is sent when it ends.
    """

    def __init__(self) -> None:
        self._live: dict[int, Span] = {}

    def on_start(self, span: Span, parent_context=None) -> None:
        if span.name == CONVERSATION_SPAN:
            self._live[span.context.span_id] = span

    def on_end(self, span: ReadableSpan) -> None:
        if span.name == CONVERSATION_SPAN:
            self._live.pop(span.context.span_id, None)

    def mark(self, call_sid: str, attributes: Mapping[str, Any]) -> None:
        for span in list(self._live.values()):
            if (span.attributes or {}).get("conversation.id") == call_sid:
                span.set_attributes(dict(attributes))


class ScrubbingExporter(SpanExporter):
    """Hands the spans on with what was said left out (unless asked for), numbers masked and
    secrets redacted. Runs in the batch processor's thread, as the export does."""

    def __init__(self, exporter: SpanExporter, *, secrets: list[str], include_content: bool):
        self._exporter = exporter
        self._secrets = secrets
        self._include_content = include_content

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._exporter.export([self._scrubbed(span) for span in spans])

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)

    def _scrubbed(self, span: ReadableSpan) -> ReadableSpan:
        status = span.status
        if status.description:
            status = Status(status.status_code, self._text(status.description))
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=self._attributes(span.attributes),
            events=[
                Event(event.name, self._attributes(event.attributes), event.timestamp)
                for event in span.events
            ],
            links=span.links,
            kind=span.kind,
            status=status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def _attributes(self, attributes: Mapping[str, Any] | None) -> dict[str, Any]:
        return {
            key: self._value(value)
            for key, value in (attributes or {}).items()
            if self._include_content or key not in CONTENT_ATTRIBUTES
        }

    def _value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, tuple | list):
            return tuple(self._text(v) if isinstance(v, str) else v for v in value)
        return value

    def _text(self, text: str) -> str:
        return scrubbed(text, secrets=self._secrets)
