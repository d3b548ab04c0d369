"""Prometheus metrics of one gateway, on a registry of its own (never the global one)."""

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import Engine

from feedback.capture import CaptureWriter
from serve.loop_metrics import LoopCollector

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
LABELS = ("endpoint", "alias", "adapter_version")


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "loraloop_requests", "Inference requests", [*LABELS, "status"], registry=r
        )
        self.errors = Counter(
            "loraloop_request_errors", "Failed inference requests", [*LABELS, "status"], registry=r
        )
        self.latency = Histogram(
            "loraloop_request_latency_seconds",
            "Request latency",
            LABELS,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "loraloop_time_to_first_token_seconds",
            "Time to first token",
            LABELS,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("loraloop_tokens", "Tokens", [*LABELS, "kind"], registry=r)
        self.capture_queue = Gauge("loraloop_capture_queue_depth", "Records waiting", registry=r)
        self.retries = Counter(
            "loraloop_engine_retries",
            "Requests sent to a second replica after the first could not be reached",
            registry=r,
        )
        self.replica_up = Gauge(
            "loraloop_engine_replica_up",
            "1 while a replica is in rotation",
            ["replica"],
            registry=r,
        )
        self.spooled = Gauge(
            "loraloop_capture_spooled_records", "Records in the spool file", registry=r
        )
        self.quarantined = Gauge(
            "loraloop_capture_quarantined_records",
            "Records the database refused, moved to the quarantine file",
            registry=r,
        )
        self.held = Gauge(
            "loraloop_capture_held_records",
            "Records held in memory: neither the database nor the spool took them",
            registry=r,
        )
        self.dropped = Gauge(
            "loraloop_capture_dropped_records", "Records lost: no database, no spool", registry=r
        )

        self.adapter_loads = Counter(
            "loraloop_adapter_loads",
            "Adapter versions loaded onto an engine replica (ahead of requests or on demand)",
            ["alias", "replica"],
            registry=r,
        )
        self.adapter_load_seconds = Histogram(
            "loraloop_adapter_load_seconds",
            "Time to load one adapter version onto a replica: hash check and engine load",
            ["alias"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.adapter_load_failures = Counter(
            "loraloop_adapter_load_failures",
            "Loads an engine refused, by reason: adapter_object_corrupt (hash mismatch), "
            "adapter_object_missing, adapter_store_unavailable, engine_refused",
            ["alias", "replica", "reason"],
            registry=r,
        )
        self.adapter_unloads = Counter(
            "loraloop_adapter_unloads",
            "Adapter versions unloaded from a replica (no alias points at them any more)",
            ["replica"],
            registry=r,
        )
        self.adapters_loaded = Gauge(
            "loraloop_adapters_loaded", "Adapter versions held by a replica", ["replica"],
            registry=r,
        )  # fmt: skip

    def adapter_loaded(self, alias: str, replica: str, seconds: float) -> None:
        self.adapter_loads.labels(alias, replica).inc()
        self.adapter_load_seconds.labels(alias).observe(seconds)

    def watch_held(self, replica: str, held: Callable[[], int]) -> None:
        """Adapter versions a replica holds, read from the router when scraped."""
        self.adapters_loaded.labels(replica).set_function(held)

    def watch_loop(self, db: Engine) -> None:
        """The worker's lease, job runs, drift verdicts and rollouts, read when scraped."""
        self.registry.register(LoopCollector(db))

    def watch_capture(self, capture: CaptureWriter) -> None:
        self.capture_queue.set_function(lambda: capture.depth)
        self.spooled.set_function(lambda: capture.spooled)
        self.quarantined.set_function(lambda: capture.quarantined)
        self.held.set_function(lambda: capture.held)
        self.dropped.set_function(lambda: capture.dropped)

    def watch_shadow(self, sent: Callable[[], float], dropped: Callable[[], float]) -> None:
        """Shadow requests started and dropped (too many in flight) by this gateway."""
        Gauge("loraloop_shadow_requests", "Shadow requests started", registry=self.registry
              ).set_function(sent)  # fmt: skip
        Gauge("loraloop_shadow_dropped", "Shadows dropped: too many in flight",
              registry=self.registry).set_function(dropped)  # fmt: skip

    def replica_changed(self, url: str, healthy: bool) -> None:
        self.replica_up.labels(url).set(1 if healthy else 0)

    def observe(self, record: dict[str, object]) -> None:
        labels = (
            str(record["endpoint"]),
            str(record.get("alias") or ""),
            str(record.get("adapter_version") or ""),
        )
        status = str(record.get("status_code", 200))
        self.requests.labels(*labels, status).inc()
        if record.get("error"):
            self.errors.labels(*labels, status).inc()
        if isinstance(latency := record.get("latency_ms"), float):
            self.latency.labels(*labels).observe(latency / 1000)
        if isinstance(ttft := record.get("ttft_ms"), float):
            self.ttft.labels(*labels).observe(ttft / 1000)
        for kind in ("prompt_tokens", "completion_tokens"):
            if isinstance(count := record.get(kind), int):
                self.tokens.labels(*labels, kind.removesuffix("_tokens")).inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
