"""Drift report time for 10,000 and 100,000 interactions per window, on SQLite.

    .venv/bin/python bench/drift_report.py [--sizes 10000 100000]

Each window (reference and current) holds N interactions with reviews; the current one has a
planted new topic. Windows are counted in full and a seeded random sample of
LORALOOP_DRIFT_SAMPLE_ROWS (default 2,000) rows per window goes through embeddings and
Evidently. The reference run in the same process is a window of exactly the sample size, so the
ratio shows what the window's size itself costs.

Target (issue 5): <= 60 s for 100,000 on 2 cores.
"""

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from feedback.drift import DriftRunner, DriftSettings, Embedder
from feedback.models import utcnow
from loraloop import db
from tests.utils.traffic import insert_traffic, rows


def timed_report(directory: Path, n: int, embedder: Embedder) -> tuple[float, dict[str, float]]:
    url = f"sqlite:///{directory / f'drift-{n}.db'}"
    db.upgrade(url)
    engine = db.create_db_engine(url)
    now = utcnow()
    ref, ref_reviews = rows(
        n, now - timedelta(days=7), now - timedelta(days=1), seed=1, score_mean=4.2
    )
    cur, cur_reviews = rows(
        n, now - timedelta(hours=23), now, seed=2, score_mean=3.5, new_topic=0.3
    )
    insert_traffic(engine, ref + cur, ref_reviews + cur_reviews)
    stages: dict[str, float] = {}
    mark = time.perf_counter()

    def step(stage: str, done: int, total: int) -> None:
        nonlocal mark
        if done == total:
            now_ = time.perf_counter()
            stages[stage] = stages.get(stage, 0.0) + now_ - mark
            mark = now_

    began = time.perf_counter()
    mark = began
    report = DriftRunner(engine, DriftSettings(), embedder).run("support", progress=step)
    took = time.perf_counter() - began
    engine.dispose()
    assert report.verdict == "drift", report.reason
    return took, stages


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    sample = DriftSettings().sample_rows
    embedder = Embedder()
    embedder.encode(["warm up"])
    with tempfile.TemporaryDirectory() as tmp:
        base, _ = timed_report(Path(tmp), sample, embedder)
        print(f"reference: {sample:>7} rows per window  {base:6.1f} s")
        for n in args.sizes:
            took, stages = timed_report(Path(tmp), n, embedder)
            split = ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())
            print(f"{n:>18} rows per window  {took:6.1f} s  ratio {took / base:.2f}  ({split})")


if __name__ == "__main__":
    main()
