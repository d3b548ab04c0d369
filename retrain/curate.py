"""Curation: PII scrub, length filters, exact and near-duplicate removal (MinHash), a
deterministic train/eval split with a leakage check, and a report of what happened."""

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from feedback.pii import Scrubber
from retrain.dataset import DatasetError, Example, content_hash
from retrain.settings import RetrainSettings

WORD = re.compile(r"\w+")
PERMUTATIONS = 64
PRIME = (1 << 61) - 1


@dataclass
class Curated:
    train: list[Example]
    eval: list[Example]
    report: dict[str, Any] = field(default_factory=dict)


def shingles(text: str, n: int = 3) -> set[int]:
    words = WORD.findall(text.lower())
    grams = {" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}
    return {int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8).digest()) for g in grams}


class MinHasher:
    """MinHash signatures; the share of equal slots estimates Jaccard similarity."""

    def __init__(self, seed: int = 0, permutations: int = PERMUTATIONS) -> None:
        rng = np.random.default_rng(seed)
        self.a = rng.integers(1, PRIME, permutations, dtype=np.uint64)
        self.b = rng.integers(0, PRIME, permutations, dtype=np.uint64)

    def signature(self, text: str) -> np.ndarray:
        values = np.fromiter(shingles(text), dtype=np.uint64)
        if values.size == 0:
            return np.zeros(self.a.size, dtype=np.uint64)
        hashed = (values[:, None] * self.a[None, :] + self.b[None, :]) % PRIME
        return hashed.min(axis=0)


def similar(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


def near_duplicates(
    examples: list[Example], threshold: float, hasher: MinHasher, bands: int = 16
) -> tuple[list[Example], int]:
    """Keep the first of each group of near-duplicates (LSH buckets, then exact check)."""
    rows = PERMUTATIONS // bands
    buckets: dict[tuple[int, bytes], list[int]] = {}
    signatures: list[np.ndarray] = []
    kept: list[Example] = []
    dropped = 0
    for ex in examples:
        sig = hasher.signature(ex.text())
        keys = [(band, sig[band * rows : (band + 1) * rows].tobytes()) for band in range(bands)]
        candidates = {i for key in keys for i in buckets.get(key, [])}
        if any(similar(sig, signatures[i]) >= threshold for i in candidates):
            dropped += 1
            continue
        for key in keys:
            buckets.setdefault(key, []).append(len(kept))
        signatures.append(sig)
        kept.append(ex)
    return kept, dropped


def split(
    examples: list[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Deterministic by content: an example lands in the same split whatever else is there."""

    def bucket(ex: Example) -> float:
        digest = hashlib.sha256(f"{seed}:{ex.id}".encode()).digest()
        return int.from_bytes(digest[:8]) / 2**64

    train = [ex for ex in examples if bucket(ex) >= fraction]
    held = [ex for ex in examples if bucket(ex) < fraction]
    return train, held


def curate(
    examples: list[Example],
    settings: RetrainSettings,
    pii_patterns: dict[str, str] | None = None,
) -> Curated:
    """Clean, dedupe, split, check leakage; refuses below the minimum and says why."""
    report: dict[str, Any] = {
        "input": len(examples),
        "by_source": dict(Counter(e.source for e in examples)),
    }
    scrubber = Scrubber(pii_patterns)
    scrubbed = [
        replace(
            ex,
            messages=tuple(
                {"role": m["role"], "content": scrubber.scrub(m["content"])} for m in ex.messages
            ),
        )
        for ex in examples
    ]
    report["pii_scrubbed"] = dict(scrubber.counts)
    sized = [
        ex
        for ex in scrubbed
        if len(ex.answer.strip()) >= settings.min_chars and len(ex.text()) <= settings.max_chars
    ]
    report["dropped_length"] = len(scrubbed) - len(sized)
    seen: set[str] = set()
    unique = []
    for ex in sized:
        key = hashlib.sha256(ex.text().strip().lower().encode()).hexdigest()
        if key not in seen:
            seen.add(key)
            unique.append(ex)
    report["dropped_exact_duplicates"] = len(sized) - len(unique)
    hasher = MinHasher(settings.seed)
    deduped, near = near_duplicates(unique, settings.near_duplicate, hasher)
    report["dropped_near_duplicates"] = near
    train, held = split(deduped, settings.eval_fraction, settings.seed)
    train, leaked = _without_leaks(train, held, settings.near_duplicate, hasher)
    report["dropped_eval_leaks"] = leaked
    report["train"], report["eval"] = len(train), len(held)
    report["balance"] = {
        "template": dict(Counter(ex.template or "none" for ex in train)),
        "source": dict(Counter(ex.source for ex in train)),
    }
    report["train_hash"], report["eval_hash"] = content_hash(train), content_hash(held)
    if len(train) < settings.min_examples:
        raise DatasetError(
            f"only {len(train)} training examples after curation (need "
            f"{settings.min_examples}, LORALOOP_RETRAIN_MIN_EXAMPLES): {_summary(report)}"
        )
    if not held:
        raise DatasetError("no held-out examples for the evaluation gate; add data")
    return Curated(train, held, report)


def _without_leaks(
    train: list[Example], held: list[Example], threshold: float, hasher: MinHasher
) -> tuple[list[Example], int]:
    """Drop training examples whose prompt is (nearly) a held-out prompt."""
    held_sigs = [hasher.signature(_prompt(ex)) for ex in held]
    clean = [
        ex
        for ex in train
        if not any(similar(hasher.signature(_prompt(ex)), s) >= threshold for s in held_sigs)
    ]
    return clean, len(train) - len(clean)


def _prompt(ex: Example) -> str:
    return " ".join(m["content"] for m in ex.prompt if m["role"] == "user")


def _summary(report: dict[str, Any]) -> str:
    return (
        f"{report['input']} in, {report['dropped_length']} too short/long, "
        f"{report['dropped_exact_duplicates']} exact and {report['dropped_near_duplicates']} "
        f"near duplicates, {report['dropped_eval_leaks']} eval leaks, {report['eval']} held out"
    )
