"""Traces: no word said unless the operator opts in, no number, no secret; a call marks its own."""

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bot_runtime.tracing import ConversationSpans, ScrubbingExporter
from testkit.scenario import CALLER_NUMBER, TRANSFER_NUMBER

KEY = "collector-key-123456"


def exported(*, include_content: bool) -> tuple[dict, dict]:
    """An LLM span as pipecat writes one, through the exporter: its attributes and event's."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    exporter = ScrubbingExporter(memory, secrets=[KEY], include_content=include_content)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    attributes = {
        "gen_ai.system_instructions": f"Caller number (From): {CALLER_NUMBER}.",
        "input": f'[{{"role": "user", "content": "my number is {CALLER_NUMBER}"}}]',
        "output": "Sure.",
        "gen_ai.request.model": "gpt-test",
        "tools": f'[{{"description": "Transfer to {TRANSFER_NUMBER}"}}]',
        "metrics.ttfb": 0.25,
        "settings.names": ("a", f"Bearer {KEY}"),
    }
    with provider.get_tracer("test").start_as_current_span("llm", attributes=attributes) as span:
        span.add_event("exception", {"exception.message": f"no route to {CALLER_NUMBER}"})
    (span,) = memory.get_finished_spans()
    return dict(span.attributes), dict(span.events[0].attributes)


def test_what_was_said_is_left_out_and_numbers_and_secrets_are_masked():
    attributes, event = exported(include_content=False)
    assert attributes == {
        "gen_ai.request.model": "gpt-test",
        "tools": '[{"description": "Transfer to +1415***0100"}]',
        "metrics.ttfb": 0.25,
        "settings.names": ("a", "Bearer [redacted]"),
    }
    assert event == {"exception.message": "no route to +1415***0123"}


def test_with_content_on_what_was_said_is_kept_with_its_numbers_masked():
    attributes, _ = exported(include_content=True)
    assert attributes["gen_ai.system_instructions"] == "Caller number (From): +1415***0123."
    assert "my number is +1415***0123" in attributes["input"]
    assert attributes["output"] == "Sure."


def test_what_a_call_learns_midway_lands_on_its_own_conversation_span():
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    conversations = ConversationSpans()
    provider.add_span_processor(conversations)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    calls = [tracer.start_span("conversation") for _ in range(2)]
    for call_sid, span in zip(("CA1", "CA2"), calls, strict=True):
        span.set_attribute("conversation.id", call_sid)  # As pipecat does, once started.
    conversations.mark("CA1", {"call.backup_used": True, "call.backups": ["llm"]})
    for span in calls:
        span.end()
    conversations.mark("CA1", {"call.backup_used": False})  # Ended: no longer marked.
    spans = {
        span.attributes["conversation.id"]: span.attributes for span in memory.get_finished_spans()
    }
    assert (spans["CA1"]["call.backup_used"], spans["CA1"]["call.backups"]) == (True, ("llm",))
    assert "call.backup_used" not in spans["CA2"]
