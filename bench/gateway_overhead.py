"""Gateway overhead: the same prompts at 16 concurrent requests, straight to the vLLM engine
and through the gateway (routing, capture, metrics) in front of that same engine.

    .venv/bin/python bench/gateway_overhead.py [--requests 48 --rounds 2]

Rounds alternate direct / gateway so that drift of the machine hits both alike. At 16
concurrent requests a request takes seconds on CPU, so the added latency is also measured
where it can be seen: single 1-token requests, alternating direct / gateway.
Targets (issue 3): throughput ratio >= 0.97, added median latency <= 5 ms.
"""

import argparse
import asyncio
import statistics

from harness import LoadResult, load, platform


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--singles", type=int, default=60)
    args = parser.parse_args()
    prompts = [f"Write a short note about topic number {i}." for i in range(args.requests)]
    with platform() as p:
        asyncio.run(load(p.engine, p.model, prompts[:16], args.concurrency, 8))  # warm-up
        single = {"direct": [], "gateway": []}
        for i in range(args.singles):
            for name, base in (("direct", p.engine), ("gateway", p.gateway)):
                r = asyncio.run(load(base, p.model, [f"Say hi {i % 4}."], 1, 1))
                single[name] += r.latencies
        results: dict[str, list[LoadResult]] = {"direct": [], "gateway": []}
        for _ in range(args.rounds):
            for name, base in (("direct", p.engine), ("gateway", p.gateway)):
                results[name].append(
                    asyncio.run(load(base, p.model, prompts, args.concurrency, args.max_tokens))
                )
    summary = {}
    for name, runs in results.items():
        if not runs:
            continue
        tokens = sum(r.tokens for r in runs)
        seconds = sum(r.seconds for r in runs)
        lat = sorted(x for r in runs for x in r.latencies)
        summary[name] = (tokens / seconds, lat[len(lat) // 2] * 1000, sum(r.failures for r in runs))
        print(
            f"{name:8s}: {tokens / seconds:7.1f} tokens/s, median latency "
            f"{summary[name][1]:8.1f} ms, failures {summary[name][2]}"
        )
    if summary:
        ratio = summary["gateway"][0] / summary["direct"][0]
        added = summary["gateway"][1] - summary["direct"][1]
        print(f"throughput ratio gateway/direct: {ratio:.3f} (target >= 0.97)")
        print(f"added median latency at {args.concurrency} concurrent: {added:+.1f} ms")
    med = {k: statistics.median(v) * 1000 for k, v in single.items()}
    print(
        f"single 1-token requests: direct {med['direct']:.1f} ms, gateway {med['gateway']:.1f} ms,"
        f" added {med['gateway'] - med['direct']:+.1f} ms (target <= 5 ms)"
    )


if __name__ == "__main__":
    main()
