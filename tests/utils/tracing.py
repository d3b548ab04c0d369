"""A real OpenTelemetry SDK pipeline that keeps finished spans in memory, for assertions."""

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from serve.settings import TracingSettings
from serve.tracing import Tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"


def recording(**settings: object) -> tuple[Tracing, InMemorySpanExporter]:
    """Tracing on (whatever the environment says), every finished span in the exporter."""
    exporter = InMemorySpanExporter()
    tracing = Tracing.from_settings(
        TracingSettings(**settings),  # type: ignore[arg-type]
        "loraloop-test",
        SimpleSpanProcessor(exporter),
    )
    return tracing, exporter


def by_name(spans: tuple[ReadableSpan, ...]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}
