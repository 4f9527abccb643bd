"""An OpenTelemetry collector on 127.0.0.1: receives OTLP/HTTP traces as a real one does."""

import asyncio
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

PROTOBUF = "application/x-protobuf"


@dataclass
class ReceivedSpan:
    """One span as the collector got it, its attribute values decoded."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    children: list["ReceivedSpan"] = field(default_factory=list)

    def texts(self) -> list[str]:
        """Every string in the span: its name, its attributes' and its events' values."""
        found = [self.name]
        for attributes in (self.attributes, *(attrs for _, attrs in self.events)):
            for value in attributes.values():
                values = value if isinstance(value, list) else [value]
                found += [str(v) for v in values]
        return found

    def descendants(self) -> list["ReceivedSpan"]:
        return [self, *(d for child in self.children for d in child.descendants())]


class FakeCollector:
    """Answers POST /v1/traces (OTLP/HTTP, protobuf); ``spans`` holds every span received,
    and ``headers`` each request's headers."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.headers: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None

    @property
    def endpoint(self) -> str:
        """The base URL, as OTEL_EXPORTER_OTLP_ENDPOINT gives it (the exporter adds the path)."""
        if self._runner is None:
            raise RuntimeError("use FakeCollector in 'async with'")
        host, port = self._runner.addresses[0][:2]
        return f"http://{host}:{port}"

    async def conversation(self, conversation_id: str, *, timeout_secs: float) -> ReceivedSpan:
        """The conversation span with this id, its descendants below it, once it has come."""
        deadline = asyncio.get_running_loop().time() + timeout_secs
        while True:
            for span in self.spans:
                if span.name == "conversation" and span.attributes.get("conversation.id") == (
                    conversation_id
                ):
                    return self._tree(span)
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"no conversation span for {conversation_id} received")
            await asyncio.sleep(0.05)

    def _tree(self, root: ReceivedSpan) -> ReceivedSpan:
        trace = [s for s in self.spans if s.trace_id == root.trace_id]
        for span in trace:
            span.children = [s for s in trace if s.parent_id == span.span_id]
        return root

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/v1/traces", self._receive)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        if request.content_type != PROTOBUF:
            return web.Response(status=415, text=f"expected {PROTOBUF}")
        self.headers.append(dict(request.headers))
        message = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in message.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes=_decoded(span.attributes),
                            events=[(e.name, _decoded(e.attributes)) for e in span.events],
                        )
                    )
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type=PROTOBUF)


def _decoded(attributes) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in attributes}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None
