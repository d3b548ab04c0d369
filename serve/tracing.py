"""OpenTelemetry traces of the inference path and of the worker's jobs.

On only when an OTLP endpoint is set (OTel's own convention); each process builds its tracer
provider from settings and hands it to what it traces, so OTel's process-global provider is
never set and tests build their own. Off or unsampled, a request still carries the client's
W3C `traceparent` on to vLLM and its trace id onto the interaction: a chatbot backend's own
traces join loraloop's records either way. Span attributes follow the GenAI semantic
conventions; prompt and answer text go into spans only when a setting says so (PII).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from serve.settings import TracingSettings

PROPAGATOR = TraceContextTextMapPropagator()
OPERATIONS = {"chat": "chat", "completions": "text_completion"}
SYSTEM = "vllm"


def sampler(settings: TracingSettings) -> Sampler:
    name = settings.traces_sampler
    root: Sampler = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": TraceIdRatioBased(settings.traces_sampler_arg),
    }[name.removeprefix("parentbased_")]
    return ParentBased(root) if name.startswith("parentbased_") else root


def span_exporter(settings: TracingSettings) -> SpanExporter:
    """OTLP over HTTP (protobuf) or gRPC, as OTEL_EXPORTER_OTLP_PROTOCOL says."""
    endpoint, headers = settings.traces_endpoint, settings.headers()
    if settings.exporter_otlp_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint, headers=headers or None)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HTTPExporter,
    )

    return HTTPExporter(endpoint=endpoint, headers=headers or None)


class Tracing:
    """A process's tracer (or none: off), with the content setting spans obey."""

    def __init__(
        self,
        tracer: Tracer | None = None,
        capture_content: bool = False,
        provider: TracerProvider | None = None,
    ) -> None:
        self.tracer = tracer
        self.capture_content = capture_content
        self.provider = provider

    @classmethod
    def from_settings(
        cls,
        settings: TracingSettings,
        service: str,
        processor: SpanProcessor | None = None,
    ) -> Tracing:
        """Off without an endpoint; `processor` replaces the OTLP batch exporter (tests)."""
        if processor is None and settings.traces_endpoint is None:
            return cls(capture_content=settings.instrumentation_genai_capture_message_content)
        resource = Resource.create({"service.name": settings.service_name or service})
        provider = TracerProvider(sampler=sampler(settings), resource=resource)
        provider.add_span_processor(processor or BatchSpanProcessor(span_exporter(settings)))
        return cls(
            provider.get_tracer("loraloop"),
            settings.instrumentation_genai_capture_message_content,
            provider,
        )

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    def request(self, headers: Mapping[str, str], endpoint: str) -> RequestTrace:
        return RequestTrace(self, PROPAGATOR.extract(headers), endpoint)

    @contextmanager
    def job(self, kind: str, target: str, trigger: str) -> Iterator[StageSpans]:
        """A worker job's span (`drift support`, `retrain support`); its stages as children."""
        if self.tracer is None:
            yield StageSpans()
            return
        with self.tracer.start_as_current_span(
            f"{kind} {target}",
            context=Context(),
            attributes={
                "loraloop.job": kind,
                "loraloop.target": target,
                "loraloop.trigger": trigger,
            },
        ) as span:
            stages = StageSpans(self.tracer, span)
            try:
                yield stages
            finally:
                stages.finish()

    def shutdown(self) -> None:
        """Send what is buffered; a job process calls this before it exits."""
        if self.provider is not None:
            self.provider.shutdown()


class StageSpans:
    """A job's stages, one child span each, in order: each `stage` ends the one before.
    Without a tracer and job span (tracing off) every call does nothing."""

    def __init__(self, tracer: Tracer | None = None, job: Span | None = None) -> None:
        self.tracer = tracer
        self.job = job
        self.current: Span | None = None

    def stage(self, name: str) -> None:
        self.finish()
        if self.tracer is not None and self.job is not None:
            self.current = self.tracer.start_span(name, trace.set_span_in_context(self.job))

    def note(self, **attributes: str | int | float | bool | None) -> None:
        """What the job found (`outcome`, `verdict`), on the job's span."""
        if self.job is not None:
            values = {f"loraloop.{k}": v for k, v in attributes.items() if v is not None}
            self.job.set_attributes(values)

    def finish(self) -> None:
        if self.current is not None:
            self.current.end()
            self.current = None


class RequestTrace:
    """One inference request: a server span (or the client's context carried on when off),
    child spans for each step, and one client span per engine call."""

    def __init__(self, tracing: Tracing, parent: Context, endpoint: str) -> None:
        self.tracing = tracing
        self.operation = OPERATIONS.get(endpoint, endpoint)
        tracer = tracing.tracer
        if tracer is None:  # no spans of ours: the client's own context goes on unchanged
            self.span: Span = NonRecordingSpan(trace.get_current_span(parent).get_span_context())
        else:
            self.span = tracer.start_span(
                self.operation,
                context=parent,
                kind=SpanKind.SERVER,
                attributes={
                    "gen_ai.operation.name": self.operation,
                    "gen_ai.system": SYSTEM,
                    "gen_ai.provider.name": SYSTEM,
                },
            )
        self.context = trace.set_span_in_context(self.span)
        self.engine_span: Span | None = None
        self.attempts = 0

    @property
    def trace_id(self) -> str | None:
        context = self.span.get_span_context()
        return format(context.trace_id, "032x") if context.is_valid else None

    @contextmanager
    def step(self, name: str) -> Iterator[Span]:
        """A child span around one step (template, route, adapter load); an exception
        marks it failed and goes on up."""
        if self.tracing.tracer is None:
            yield self.span
            return
        with self.tracing.tracer.start_as_current_span(name, context=self.context) as span:
            yield span

    def engine_call(self, model: str, url: str) -> dict[str, str]:
        """Start the span of one call to an engine replica; the headers carry it to vLLM."""
        self.engine_done()
        self.attempts += 1
        span = self.span
        if self.tracing.tracer is not None:
            host, _, port = url.split("://", 1)[-1].partition(":")
            span = self.engine_span = self.tracing.tracer.start_span(
                f"{self.operation} {model}",
                context=self.context,
                kind=SpanKind.CLIENT,
                attributes={
                    "gen_ai.operation.name": self.operation,
                    "gen_ai.system": SYSTEM,
                    "gen_ai.provider.name": SYSTEM,
                    "gen_ai.request.model": model,
                    "server.address": host,
                    "server.port": int(port or 80),
                    "loraloop.attempt": self.attempts,
                },
            )
        headers: dict[str, str] = {}
        PROPAGATOR.inject(headers, trace.set_span_in_context(span))
        return headers

    def engine_done(self, error: str | None = None) -> None:
        if self.engine_span is None:
            return
        if error is not None:
            self.engine_span.set_status(Status(StatusCode.ERROR, error))
            self.engine_span.set_attribute("error.type", "engine_unreachable")
        self.engine_span.end()
        self.engine_span = None

    def finish(self, record: dict[str, Any], payload: dict[str, Any] | None) -> None:
        """The request's outcome onto its span, from the capture record; then end it."""
        self.engine_done()
        if not self.span.is_recording():
            return
        status = int(record.get("status_code") or 200)
        requested = record.get("requested_model")
        if requested:
            self.span.update_name(f"{self.operation} {requested}")
        self.span.set_attributes(request_attributes(record, payload, status))
        if self.tracing.capture_content:
            self.span.set_attributes(content_attributes(record, payload))
        if status >= 500:
            self.span.set_status(Status(StatusCode.ERROR, str(record.get("error") or status)))
        self.span.end()


def request_attributes(
    record: dict[str, Any], payload: dict[str, Any] | None, status: int
) -> dict[str, Any]:
    """GenAI semantic-convention attributes (and loraloop's own) of one request."""
    values: dict[str, Any] = {
        "gen_ai.request.model": record.get("requested_model"),
        "gen_ai.response.model": record.get("engine_model"),
        "gen_ai.prompt.name": record.get("template"),
        "gen_ai.usage.input_tokens": record.get("prompt_tokens"),
        "gen_ai.usage.output_tokens": record.get("completion_tokens"),
        "http.response.status_code": status,
        "loraloop.interaction_id": record.get("id"),
        "loraloop.alias": record.get("alias"),
        "loraloop.adapter_version": record.get("adapter_version"),
        "loraloop.template_version": record.get("template_version"),
        "loraloop.engine_url": record.get("engine_url"),
    }
    if record.get("finish_reason"):
        values["gen_ai.response.finish_reasons"] = [record["finish_reason"]]
    if isinstance(record.get("ttft_ms"), float):
        values["gen_ai.response.time_to_first_chunk"] = record["ttft_ms"] / 1000
    for key in ("max_tokens", "temperature", "top_p", "stream"):
        if payload and isinstance(payload.get(key), int | float | bool):
            values[f"gen_ai.request.{key}"] = payload[key]
    if status >= 400:
        values["error.type"] = str(status)
    return {k: v for k, v in values.items() if v is not None}


def content_attributes(record: dict[str, Any], payload: dict[str, Any] | None) -> dict[str, str]:
    """Prompt and answer as the conventions' message lists, JSON-encoded."""
    prompt = (payload or {}).get("messages") or [
        {"role": "user", "content": (payload or {}).get("prompt")}
    ]
    inputs = [
        {"role": m.get("role"), "parts": [{"type": "text", "content": m.get("content")}]}
        for m in prompt
        if isinstance(m, dict)
    ]
    parts: list[dict[str, Any]] = [{"type": "text", "content": record.get("response_text")}]
    parts += [
        {"type": "tool_call", "id": c.get("id"), **(c.get("function") or {})}
        for c in record.get("tool_calls") or []
    ]
    outputs = [{"role": "assistant", "parts": parts, "finish_reason": record.get("finish_reason")}]
    return {
        "gen_ai.input.messages": json.dumps(inputs, default=str),
        "gen_ai.output.messages": json.dumps(outputs, default=str),
    }
