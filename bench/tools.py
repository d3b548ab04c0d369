"""Tool calling (issue 23): does an adapter trained on agent traffic call the right tools,
and what does the gateway add to a tool-calling request?

1. The order-desk scenario (`scripts/make_order_desk.py`): every held-out question is
   answered with its tools through the real engine, greedy, `tool_choice` auto, by the base
   model and by an adapter trained on the rest with the product's defaults. Per side: the
   share of exact calls (function and arguments as data), of the right function, of calls
   whose arguments are valid against the tool's schema, and Rouge-L on the questions
   answered in text.
2. Gateway overhead: single requests alternating straight to the engine and through the
   gateway, with the order desk's three tools and a named `tool_choice` and without tools;
   the added median latency of each and their ratio (same run).

    .venv/bin/python bench/tools.py [--singles 40] [--out rows.json]
"""

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import platform
from retrain.dataset import Example, read_seed
from retrain.evaluate import Evaluator
from retrain.settings import RetrainSettings
from retrain.tool_accuracy import tool_accuracy
from retrain.train import Trainer
from serve.settings import ModelSettings

SCENARIO = Path(__file__).resolve().parent.parent / "retrain" / "scenarios" / "order_desk.jsonl"


def split() -> tuple[list[Example], list[Example]]:
    rows = [json.loads(line) for line in SCENARIO.read_text().splitlines()]
    examples = read_seed(SCENARIO)
    train = [ex for ex, r in zip(examples, rows, strict=True) if not r["heldout"]]
    held = [ex for ex, r in zip(examples, rows, strict=True) if r["heldout"]]
    return train, held


def singles(
    base: str, model: str, tools: list[dict[str, Any]] | None, n: int, key: str | None
) -> list[float]:
    """Latencies of `n` single requests, one at a time (`key`: the engine's, sent direct)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "Where is my order A-1042?"}],
        "max_tokens": 24,
        "temperature": 0,
    }
    if tools:
        body |= {
            "tools": tools,
            "tool_choice": {"type": "function", "function": {"name": "lookup_order"}},
        }
    out = []
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(timeout=120, headers=headers) as http:
        for _ in range(n):
            began = time.perf_counter()
            response = http.post(f"{base}/v1/chat/completions", json=body)
            out.append(time.perf_counter() - began)
            assert response.status_code == 200, response.text
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--singles", type=int, default=40)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    train, held = split()
    tools = list(held[0].tools)
    out: dict[str, Any] = {"train": len(train), "held_out": len(held)}
    with platform() as running, tempfile.TemporaryDirectory() as tmp:
        evaluator = Evaluator(running.engine, max_tokens=96, api_key=running.engine_key)
        out["base"] = tool_accuracy(evaluator.answers(running.model, held), held).as_dict()
        print("base   ", out["base"], flush=True)
        began = time.perf_counter()
        result = Trainer(ModelSettings().model_dir(), RetrainSettings(), Path(tmp)).train(train)
        out["training"] = {
            "seconds": round(time.perf_counter() - began),
            "steps": result.steps,
            "best_step": result.best_step,
            "stop": result.stop_reason,
        }
        print("trained", out["training"], flush=True)
        evaluator.load("orders", result.adapter_dir)
        out["adapter"] = tool_accuracy(evaluator.answers("orders", held), held).as_dict()
        print("adapter", out["adapter"], flush=True)

        latency: dict[str, list[float]] = {}
        for _ in range(2):  # alternate, so drift of the machine hits all four alike
            for kind, declared in (("plain", None), ("tools", tools)):
                for side, base in (("direct", running.engine), ("gateway", running.gateway)):
                    latency.setdefault(f"{kind} {side}", []).extend(
                        singles(
                            base, running.model, declared, args.singles // 2, running.engine_key
                        )
                    )
    medians = {k: statistics.median(v) * 1000 for k, v in latency.items()}
    added = {k: medians[f"{k} gateway"] - medians[f"{k} direct"] for k in ("plain", "tools")}
    out["latency_ms"] = medians | {"added_plain": added["plain"], "added_tools": added["tools"]}
    print(
        f"median latency (ms): {', '.join(f'{k} {v:.1f}' for k, v in medians.items())}\n"
        f"the gateway adds {added['plain']:+.1f} ms to plain chat and {added['tools']:+.1f} ms "
        f"to a tool call ({added['tools'] / max(added['plain'], 1e-9):.2f}x)"
    )
    if args.out:
        args.out.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
