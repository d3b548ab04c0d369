"""Preference data for DPO (pairs) and KTO (judged answers): read from the system of record
or from files, then curated as chat examples are: PII scrubbed, exact duplicates dropped,
prompts near a held-out or golden prompt dropped (the gate must judge unseen questions), a
deterministic held-out split by prompt (all of one prompt's rows land on one side), and a
refusal with "N more needed" below the minimum.

Bad rows in a file stop the run with the file and line, before anything trains: a pair
whose chosen answer equals its rejected one teaches nothing, and a KTO set of one class has
nothing to contrast.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlmodel import Session

from feedback.pii import Scrubber
from feedback.signals import Thresholds, export_judged, export_pairs, same_text
from retrain.curate import MinHasher, leaks, user_text
from retrain.dataset import DatasetError, check_turns, jsonl_lines
from retrain.settings import RetrainSettings

Messages = tuple[dict[str, str], ...]


@dataclass(frozen=True)
class PreferencePair:
    """A prompt with a better (chosen) and a worse (rejected) answer: a DPO row."""

    id: str
    prompt: Messages
    chosen: str
    rejected: str
    source: str  # correction, pairwise, or a file's name

    def row(self) -> dict[str, Any]:
        return {
            "prompt": list(self.prompt),
            "chosen": [{"role": "assistant", "content": self.chosen}],
            "rejected": [{"role": "assistant", "content": self.rejected}],
        }

    def key(self) -> str:
        return json.dumps([self.prompt, self.chosen, self.rejected], sort_keys=True)


@dataclass(frozen=True)
class JudgedAnswer:
    """A prompt with one answer judged desirable or undesirable: a KTO row."""

    id: str
    prompt: Messages
    completion: str
    desirable: bool
    source: str  # review, correction, end_user, or a file's name

    def row(self) -> dict[str, Any]:
        return {
            "prompt": list(self.prompt),
            "completion": [{"role": "assistant", "content": self.completion}],
            "label": self.desirable,
        }

    def key(self) -> str:
        return json.dumps([self.prompt, self.completion, self.desirable], sort_keys=True)


Preference = PreferencePair | JudgedAnswer


@dataclass
class CuratedPreferences:
    train: list[Preference]
    eval: list[Preference]
    report: dict[str, Any] = field(default_factory=dict)


def pairs_from_feedback(
    session: Session, alias: str | None, pii: dict[str, str] | None = None
) -> list[PreferencePair]:
    """Corrections against what they corrected, and pairwise-review majorities."""
    export = export_pairs(session, alias, pii)
    return [
        PreferencePair(
            f"{ref['source']}:{ref['interaction_id']}",
            tuple(row["prompt"]),
            row["chosen"][0]["content"],
            row["rejected"][0]["content"],
            ref["source"],
        )
        for row, ref in zip(export.rows, export.manifest["row_ids"], strict=True)
    ]


def judged_from_feedback(
    session: Session, alias: str | None, thresholds: Thresholds, pii: dict[str, str] | None = None
) -> list[JudgedAnswer]:
    """Every answer a reviewer or an end user judged (reviewers first)."""
    export = export_judged(session, alias, thresholds, pii)
    return [
        JudgedAnswer(
            f"{ref['source']}:{ref['interaction_id']}",
            tuple(row["prompt"]),
            row["completion"][0]["content"],
            bool(row["label"]),
            ref["source"],
        )
        for row, ref in zip(export.rows, export.manifest["row_ids"], strict=True)
    ]


def read_preferences(path: Path) -> list[Preference]:
    """A JSONL file of TRL conversational rows: {prompt, chosen, rejected} pairs or
    {prompt, completion, label} judged answers (a file may hold both)."""
    rows: list[Preference] = []
    for where, number, row in jsonl_lines(path, "preference file"):
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: each line must be a JSON object")
        prompt = _messages(row.get("prompt"), where, "prompt")
        item_id = f"{path.name}:{number}"
        if "chosen" in row or "rejected" in row:
            chosen = _answer(row.get("chosen"), where, "chosen")
            rejected = _answer(row.get("rejected"), where, "rejected")
            if same_text(chosen, rejected):
                raise DatasetError(f"{where}: chosen and rejected are the same answer")
            rows.append(PreferencePair(item_id, prompt, chosen, rejected, path.name))
        elif "completion" in row:
            label = row.get("label")
            if not isinstance(label, bool):
                raise DatasetError(f"{where}: 'label' must be true (desirable) or false")
            completion = _answer(row["completion"], where, "completion")
            rows.append(JudgedAnswer(item_id, prompt, completion, label, path.name))
        else:
            raise DatasetError(
                f"{where}: needs 'chosen' and 'rejected' (a pair) or 'completion' and 'label'"
            )
    return rows


def curate_preferences(
    items: list[Preference],
    settings: RetrainSettings,
    held_prompts: list[str],
    pii_patterns: dict[str, str] | None = None,
    require: bool = True,
) -> CuratedPreferences:
    """Scrub, dedupe, drop leaks into the gate's prompts, split by prompt, check the minimum.

    `held_prompts` are the user texts of every set the gate scores (held-out and golden):
    training on a near copy of one would flatter the candidate."""
    kind = "pairs" if items and isinstance(items[0], PreferencePair) else "judged answers"
    if any(isinstance(item, PreferencePair) != (kind == "pairs") for item in items):
        raise DatasetError("pairs and judged answers are trained separately: pass one kind")
    scrubber = Scrubber(pii_patterns)
    scrubbed = [_scrub(item, scrubber) for item in items]
    seen: set[str] = set()
    unique = []
    for item in scrubbed:
        if item.key() not in seen:
            seen.add(item.key())
            unique.append(item)
    hasher = MinHasher(settings.seed)
    leaked = leaks(
        [user_text(item.prompt) for item in unique], held_prompts, settings.near_duplicate, hasher
    )
    clean = [item for item, leak in zip(unique, leaked, strict=True) if not leak]
    held = [item for item in clean if _bucket(item, settings.seed) < settings.eval_fraction]
    train = [item for item in clean if _bucket(item, settings.seed) >= settings.eval_fraction]
    report: dict[str, Any] = {
        "kind": kind,
        "input": len(items),
        "by_source": dict(sorted(Counter(item.source for item in items).items())),
        "pii_scrubbed": dict(sorted(scrubber.counts.items())),
        "dropped_exact_duplicates": len(scrubbed) - len(unique),
        "dropped_gate_leaks": len(unique) - len(clean),
        "train": len(train),
        "eval": len(held),
    }
    if kind == "judged answers":
        report["balance"] = balance(train)
    curated = CuratedPreferences(train, held, report)
    if require:
        require_preferences(curated, settings)
    return curated


def balance(items: list[Preference]) -> dict[str, Any]:
    """Desirable and undesirable counts and their ratio (KTO weighs the classes by it)."""
    desirable = sum(1 for i in items if isinstance(i, JudgedAnswer) and i.desirable)
    undesirable = len(items) - desirable
    ratio = round(desirable / undesirable, 3) if undesirable else None
    return {"desirable": desirable, "undesirable": undesirable, "ratio": ratio}


def require_preferences(curated: CuratedPreferences, settings: RetrainSettings) -> None:
    """Refuse DPO or KTO below its minimum (or KTO with one class), saying what is missing."""
    report, train, given = curated.report, curated.train, curated.report["input"]
    kind = report["kind"]
    kept = len(train) / given if given and train else 1 - settings.eval_fraction
    kept = max(kept, 0.05)
    summary = (
        f"{report['input']} in, {report['dropped_exact_duplicates']} duplicates, "
        f"{report['dropped_gate_leaks']} near a gate prompt, {report['eval']} held out"
    )
    if kind == "pairs":
        if len(train) < settings.min_pairs:
            more = math.ceil((settings.min_pairs - len(train)) / kept)
            raise DatasetError(
                f"only {len(train)} preference pairs to train on (need {settings.min_pairs}, "
                f"LORALOOP_RETRAIN_MIN_PAIRS): about {more} more pairs (corrections or "
                f"pairwise reviews) are needed; {summary}"
            )
        return
    counts = report["balance"]
    if not counts["desirable"] or not counts["undesirable"]:
        have = "desirable" if counts["desirable"] else "undesirable"
        lack = "undesirable" if have == "desirable" else "desirable"
        raise DatasetError(
            f"every judged answer is {have} ({counts[have]}): KTO needs {lack} ones too "
            f"(at least {settings.min_judged_class}); {summary}"
        )
    short = [
        f"about {math.ceil((settings.min_judged_class - counts[c]) / kept)} more {c}"
        for c in ("desirable", "undesirable")
        if counts[c] < settings.min_judged_class
    ]
    if len(train) < settings.min_judged:
        short.insert(0, f"about {math.ceil((settings.min_judged - len(train)) / kept)} more")
    if short:
        raise DatasetError(
            f"only {len(train)} judged answers to train on ({counts['desirable']} desirable, "
            f"{counts['undesirable']} undesirable; need {settings.min_judged} with "
            f"{settings.min_judged_class} of each, LORALOOP_RETRAIN_MIN_JUDGED[_CLASS]): "
            f"{', '.join(short)} judged answers are needed; {summary}"
        )


def _bucket(item: Preference, seed: int) -> float:
    """Where a prompt falls in [0, 1): its rows share a side of the split, whatever else
    is in the data."""
    digest = hashlib.sha256(f"{seed}:{json.dumps(item.prompt, sort_keys=True)}".encode())
    return int.from_bytes(digest.digest()[:8]) / 2**64


def _scrub(item: Preference, scrubber: Scrubber) -> Preference:
    prompt = tuple(scrubber.scrub_messages(list(item.prompt)))
    if isinstance(item, PreferencePair):
        chosen, rejected = scrubber.scrub(item.chosen), scrubber.scrub(item.rejected)
        return replace(item, prompt=prompt, chosen=chosen, rejected=rejected)
    return replace(item, prompt=prompt, completion=scrubber.scrub(item.completion))


def _messages(value: Any, where: str, name: str) -> Messages:
    if isinstance(value, str) and value.strip():
        return ({"role": "user", "content": value},)
    if not isinstance(value, list) or not value:
        raise DatasetError(f"{where}: '{name}' must be a list of chat messages or a string")
    return check_turns(value, where, name)


def _answer(value: Any, where: str, name: str) -> str:
    """One assistant answer, given as a string or as a one-turn assistant message list."""
    one_turn = isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict)
    if one_turn and value[0].get("role") == "assistant":
        value = value[0].get("content")
    if not isinstance(value, str) or not value.strip():
        raise DatasetError(f"{where}: '{name}' must be a non-empty assistant answer")
    return value
