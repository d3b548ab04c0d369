"""One Evidently drift report over two windows, and what it says column by column.

Evidently 0.7's Report / Dataset / DataDefinition API: a `DataDriftPreset` over the text,
numeric and categorical columns (per-column methods and thresholds from settings, its tests
give each column's verdict) and an `EmbeddingsDrift` over the prompt embeddings. Columns with
too few values in a window are skipped and say so, rather than being judged on noise.
"""

import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from feedback.drift.frames import CATEGORICAL, NUMERIC, TEXT
from feedback.drift.settings import DriftSettings

EMBEDDING = "prompt_embedding"
MIN_DISTINCT_TEXTS = 10


@dataclass
class DriftOutcome:
    columns: list[dict[str, Any]]
    drift_share: float
    drifted: int
    verdict: str
    reason: str
    evidently: dict[str, Any] = field(repr=False)
    html: str = field(repr=False)


def embedding_method(settings: DriftSettings) -> Any:
    """The configured embeddings method, bootstrap off so its threshold is what decides."""
    from evidently.metrics.embeddings import (  # Evidently takes seconds to import: on use
        DistanceDriftMethod,
        MMDDriftMethod,
        ModelDriftMethod,
        RatioDriftMethod,
    )

    kind, threshold = settings.embedding_method, settings.embedding_threshold
    if kind == "model":
        return ModelDriftMethod(
            threshold=threshold, bootstrap=False, quantile_probability=0.95, pca_components=None
        )
    if kind == "distance":
        return DistanceDriftMethod(
            dist="euclidean",
            threshold=threshold,
            bootstrap=False,
            quantile_probability=0.95,
            pca_components=None,
        )
    if kind == "ratio":
        return RatioDriftMethod(
            component_stattest="wasserstein",
            component_stattest_threshold=0.1,
            threshold=threshold,
            pca_components=None,
        )
    return MMDDriftMethod(
        threshold=threshold, bootstrap=False, quantile_probability=0.95, pca_components=None
    )


def choose_columns(
    ref: pd.DataFrame, cur: pd.DataFrame, settings: DriftSettings
) -> tuple[dict[str, list[str]], list[dict[str, Any]]]:
    """Columns fit to be judged, by kind, and the skipped ones with why."""
    chosen: dict[str, list[str]] = {"text": [], "numerical": [], "categorical": []}
    skipped: list[dict[str, Any]] = []
    need = settings.min_column_values
    for kind, names in (("text", TEXT), ("numerical", NUMERIC), ("categorical", CATEGORICAL)):
        for name in names:
            counts = (int(ref[name].notna().sum()), int(cur[name].notna().sum()))
            both = pd.concat([ref[name], cur[name]]).dropna()
            if min(counts) < need:
                why = f"too few values (reference {counts[0]}, current {counts[1]}; need {need})"
            elif kind == "text" and both.nunique() < MIN_DISTINCT_TEXTS:
                why = f"fewer than {MIN_DISTINCT_TEXTS} distinct texts"
            elif both.nunique() < 2:
                why = "constant in both windows"
            else:
                chosen[kind].append(name)
                continue
            skipped.append({"column": name, "kind": kind, "status": "skipped", "reason": why})
    return chosen, skipped


def run_report(
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    ref_emb: np.ndarray | None,
    cur_emb: np.ndarray | None,
    settings: DriftSettings,
) -> DriftOutcome:
    from evidently import DataDefinition, Dataset, Report  # seconds to import: on use
    from evidently.metrics import EmbeddingsDrift
    from evidently.presets import DataDriftPreset

    chosen, skipped = choose_columns(ref, cur, settings)
    columns = [c for names in chosen.values() for c in names]
    embeddings: dict[str, list[str]] | None = None
    if ref_emb is not None and cur_emb is not None:
        names = [f"emb_{k}" for k in range(ref_emb.shape[1])]
        ref = pd.concat([ref, pd.DataFrame(ref_emb, columns=names, index=ref.index)], axis=1)
        cur = pd.concat([cur, pd.DataFrame(cur_emb, columns=names, index=cur.index)], axis=1)
        embeddings = {EMBEDDING: names}
    definition = DataDefinition(
        id_column="id",
        text_columns=chosen["text"],
        numerical_columns=chosen["numerical"],
        categorical_columns=chosen["categorical"],
        embeddings=embeddings,
    )
    metrics: list[Any] = [
        DataDriftPreset(
            columns=columns,
            drift_share=settings.drift_share,
            num_method=settings.num_method,
            cat_method=settings.cat_method,
            text_method=settings.text_method,
            per_column_method={c: m for c, m in settings.column_methods.items() if c in columns}
            or None,
            per_column_threshold={
                c: t for c, t in settings.column_thresholds.items() if c in columns
            }
            or None,
        )
    ]
    if embeddings:
        metrics.append(
            EmbeddingsDrift(embeddings_name=EMBEDDING, drift_method=embedding_method(settings))
        )
    keep = ["id", *columns, *(embeddings[EMBEDDING] if embeddings else [])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn convergence chatter from the text classifiers
        snapshot = Report(metrics, include_tests=True).run(
            Dataset.from_pandas(cur[keep], data_definition=definition),
            Dataset.from_pandas(ref[keep], data_definition=definition),
        )
        html = snapshot.get_html_str(as_iframe=False)
    data = json.loads(snapshot.json())
    judged = _judged(data, settings)
    drifted = sum(1 for c in judged if c["drifted"])
    share = drifted / len(judged) if judged else 0.0
    verdict = "drift" if judged and share >= settings.drift_share else "no_drift"
    names = ", ".join(c["column"] for c in judged if c["drifted"]) or "none"
    reason = (
        f"{drifted} of {len(judged)} columns drifted ({share:.0%}; threshold "
        f"{settings.drift_share:.0%}): {names}"
    )
    return DriftOutcome(judged + skipped, share, drifted, verdict, reason, data, html)


def _judged(data: dict[str, Any], settings: DriftSettings) -> list[dict[str, Any]]:
    """Per-column score, method, threshold and verdict out of the snapshot's JSON."""
    status = {
        t["metric_config"]["metric_id"]: t["status"]
        for t in data.get("tests", [])
        if t.get("id") == "drift"
    }
    judged = []
    for metric in data["metrics"]:
        config = metric["config"]
        kind = config["type"].rsplit(":", 1)[-1]
        if kind == "ValueDrift":
            judged.append(
                {
                    "column": config["column"],
                    "kind": _kind(config["column"]),
                    "status": "judged",
                    "method": config.get("method"),
                    "threshold": config.get("threshold"),
                    "score": _finite(metric["value"]),
                    "drifted": status.get(metric["id"]) == "FAIL",
                }
            )
        elif kind == "EmbeddingsDrift":
            score = _finite(metric["value"])
            judged.append(
                {
                    "column": EMBEDDING,
                    "kind": "embedding",
                    "status": "judged",
                    "method": settings.embedding_method,
                    "threshold": settings.embedding_threshold,
                    "score": score,
                    "drifted": score is not None and score > settings.embedding_threshold,
                }
            )
    return judged


def _kind(column: str) -> str:
    return "text" if column in TEXT else "numerical" if column in NUMERIC else "categorical"


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None
