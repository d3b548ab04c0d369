"""What OpenTelemetry tracing adds to a request through the gateway: three `loraloop run`
gateways over the fake engine, tracing off, sampling 100 % and sampling 10 %, the spans sent
over OTLP/HTTP to a sink on this machine (a stand-in for a collector elsewhere; it answers
200 and counts what it got, so the back-end's own work is not charged to the gateway).

    .venv/bin/python bench/tracing_overhead.py [--requests 300 --rounds 4 --concurrency 16]

Latency: single requests, the three gateways in turn, request by request, so drift of the
machine hits all alike; throughput: `--concurrency` clients per gateway, alternating rounds.
Goal (issue 26): at most 0.5 ms added to the median at 100 %.
"""

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import LORALOOP, REPO, fake_gateway_env, free_port, wait_healthy

CONFIGS = {
    "off": {},
    "100 %": {"OTEL_TRACES_SAMPLER": "parentbased_always_on"},
    "10 %": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
}
BODY = {"model": "base", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


class Sink(ThreadingHTTPServer):
    """Accepts OTLP/HTTP exports: counts exports, bytes and spans, keeps nothing."""

    def __init__(self) -> None:
        self.exports = self.bytes = self.spans = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                export = ExportTraceServiceRequest.FromString(body)
                sink.spans += sum(
                    len(scope.spans) for rs in export.resource_spans for scope in rs.scope_spans
                )
                sink.bytes += len(body)
                sink.exports += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        super().__init__(("127.0.0.1", 0), Handler)


def start(d: Path, name: str, sink_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = fake_gateway_env(d, d / "adapters", port, LORALOOP_SERVE_RATE_LIMIT_PER_S="0")
    env |= CONFIGS[name]
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)  # off means off, whatever this shell says
    if CONFIGS[name]:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink_url
    subprocess.run([LORALOOP, "db", "upgrade"], env=env, check=True, capture_output=True)
    log = d / "run.log"
    proc = subprocess.Popen([LORALOOP, "run"], env=env, cwd=REPO, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc, log, 120)
    return proc, url


async def throughput(url: str, requests: int, concurrency: int) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        todo = iter(range(requests))

        async def client_loop() -> None:
            for _ in todo:
                assert (await client.post("/v1/chat/completions", json=BODY)).status_code == 200

        began = time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        return requests / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    sink = Sink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_url = f"http://127.0.0.1:{sink.server_address[1]}"
    latencies: dict[str, list[float]] = {name: [] for name in CONFIGS}
    rates: dict[str, list[float]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        procs, urls = [], {}
        try:
            for name in CONFIGS:
                d = Path(tmp) / name.replace(" %", "")
                (d / "adapters").mkdir(parents=True)
                proc, urls[name] = start(d, name, sink_url)
                procs.append(proc)
            clients = {name: httpx.Client(base_url=url, timeout=60) for name, url in urls.items()}
            for client in clients.values():
                for _ in range(30):  # warm-up: connections, caches, the first export
                    client.post("/v1/chat/completions", json=BODY)
            for _ in range(args.rounds):
                for _ in range(args.requests):
                    for name, client in clients.items():
                        began = time.perf_counter()
                        assert client.post("/v1/chat/completions", json=BODY).status_code == 200
                        latencies[name].append((time.perf_counter() - began) * 1000)
                for name, url in urls.items():
                    rates[name].append(
                        asyncio.run(throughput(url, args.requests, args.concurrency))
                    )
            time.sleep(6)  # the batch processors export every 5 s
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(60)
    med = {name: statistics.median(v) for name, v in latencies.items()}
    rate = {name: statistics.median(v) for name, v in rates.items()}
    total = sum(len(v) for v in latencies.values()) + args.rounds * args.requests * 3
    print(f"{args.rounds} rounds x {args.requests} requests per gateway ({total} in all)")
    for name in CONFIGS:
        print(
            f"  {name:6s} median {med[name]:6.2f} ms (added {med[name] - med['off']:+.2f} ms), "
            f"{rate[name]:6.1f} req/s at {args.concurrency} clients "
            f"(ratio {rate[name] / rate['off']:.3f})"
        )
    print(f"sink: {sink.exports} OTLP exports, {sink.spans} spans, {sink.bytes / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
