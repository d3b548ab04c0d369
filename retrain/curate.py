"""Curation: PII scrub, length filters, exact and near-duplicate removal (MinHash), a
deterministic train/eval split with a leakage check (against the held-out split and the
alias's golden set), and a report of what happened. Linear in the data (LSH buckets), so
100,000 examples curate in seconds."""

import hashlib
import math
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


class LshIndex:
    """Signatures in LSH band buckets: near neighbours are found without comparing all.
    Candidates are then checked in one vectorised comparison (templated text puts hundreds
    of candidates in a bucket; one at a time, that was most of curation's time)."""

    def __init__(self, threshold: float, bands: int = 16) -> None:
        self.threshold = threshold
        self.bands = bands
        self.rows = PERMUTATIONS // bands
        self.buckets: dict[tuple[int, bytes], list[int]] = {}
        self.signatures = np.zeros((1024, PERMUTATIONS), dtype=np.uint64)
        self.size = 0

    def _keys(self, sig: np.ndarray) -> list[tuple[int, bytes]]:
        r = self.rows
        return [(b, sig[b * r : (b + 1) * r].tobytes()) for b in range(self.bands)]

    def near(self, sig: np.ndarray) -> bool:
        candidates = {i for key in self._keys(sig) for i in self.buckets.get(key, [])}
        if not candidates:
            return False
        rows = self.signatures[np.fromiter(candidates, dtype=np.intp, count=len(candidates))]
        return bool(((rows == sig).mean(axis=1) >= self.threshold).any())

    def add(self, sig: np.ndarray) -> None:
        for key in self._keys(sig):
            self.buckets.setdefault(key, []).append(self.size)
        if self.size == len(self.signatures):
            self.signatures = np.concatenate([self.signatures, np.zeros_like(self.signatures)])
        self.signatures[self.size] = sig
        self.size += 1


def near_duplicates(
    examples: list[Example], threshold: float, hasher: MinHasher, bands: int = 16
) -> tuple[list[Example], int]:
    """Keep the first of each group of near-duplicates (LSH buckets, then exact check)."""
    index = LshIndex(threshold, bands)
    kept: list[Example] = []
    for ex in examples:
        sig = hasher.signature(ex.text())
        if index.near(sig):
            continue
        index.add(sig)
        kept.append(ex)
    return kept, len(examples) - len(kept)


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
    golden: list[Example] | None = None,
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
    pinned = {ex.id.removeprefix("golden:") for ex in golden or []}
    golden_free = [ex for ex in deduped if ex.id not in pinned]
    golden_free, _ = _without_leaks(golden_free, golden or [], settings.near_duplicate, hasher)
    report["dropped_golden_leaks"] = len(deduped) - len(golden_free)
    train, held = split(golden_free, settings.eval_fraction, settings.seed)
    train, leaked = _without_leaks(train, held, settings.near_duplicate, hasher)
    report["dropped_eval_leaks"] = leaked
    if len(held) > settings.eval_max_examples:
        held = sorted(held, key=lambda ex: hashlib.sha256(ex.id.encode()).digest())
        report["eval_not_scored"] = len(held) - settings.eval_max_examples
        held = held[: settings.eval_max_examples]
    report["train"], report["eval"] = len(train), len(held)
    report["balance"] = {
        "template": dict(Counter(ex.template or "none" for ex in train)),
        "source": dict(Counter(ex.source for ex in train)),
    }
    report["train_hash"], report["eval_hash"] = content_hash(train), content_hash(held)
    if len(train) < settings.min_examples:
        more = _more_needed(len(train), len(examples), settings)
        raise DatasetError(
            f"only {len(train)} training examples after curation (need "
            f"{settings.min_examples}, LORALOOP_RETRAIN_MIN_EXAMPLES): about {more} more "
            f"reviewed examples are needed; {_summary(report)}"
        )
    if not held:
        raise DatasetError("no held-out examples for the evaluation gate; add data")
    return Curated(train, held, report)


def _without_leaks(
    train: list[Example], held: list[Example], threshold: float, hasher: MinHasher
) -> tuple[list[Example], int]:
    """Drop training examples whose prompt is (nearly) a held-out prompt."""
    index = LshIndex(threshold)
    for ex in held:
        index.add(hasher.signature(_prompt(ex)))
    clean = [ex for ex in train if not index.near(hasher.signature(_prompt(ex)))]
    return clean, len(train) - len(clean)


def _more_needed(train: int, given: int, settings: RetrainSettings) -> int:
    """Reviewed examples to add, at the rate this data kept after curation and the split."""
    kept = train / given if given and train else 1 - settings.eval_fraction
    return max(1, math.ceil((settings.min_examples - train) / max(kept, 0.05)))


def _prompt(ex: Example) -> str:
    return " ".join(m["content"] for m in ex.prompt if m["role"] == "user")


def _summary(report: dict[str, Any]) -> str:
    return (
        f"{report['input']} in, {report['dropped_length']} too short/long, "
        f"{report['dropped_exact_duplicates']} exact and {report['dropped_near_duplicates']} "
        f"near duplicates, {report['dropped_golden_leaks']} in the golden set, "
        f"{report['dropped_eval_leaks']} eval leaks, {report['eval']} held out"
    )
