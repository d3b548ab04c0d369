"""Working the session's real platform from tests: its CLI, its admin API, its capture."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from sqlmodel import Session

from feedback.models import Interaction
from loraloop import db
from loraloop.launch import LORALOOP
from tests.utils.clients import JSON

if TYPE_CHECKING:
    from tests.integration.conftest import Platform


def cli(platform: Platform, runs: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`loraloop ARGS` against the platform, its runs and MLflow store under `runs`."""
    full = {
        **platform.env,
        "LORALOOP_RETRAIN_RUNS_DIR": str(runs),
        "LORALOOP_RETRAIN_MLFLOW_URI": f"sqlite:///{runs / 'mlflow.db'}",
        "COLUMNS": "250",
        **env,
    }
    return subprocess.run([LORALOOP, *args], env=full, capture_output=True, text=True, timeout=1200)


def admin(platform: Platform, path: str, body: dict[str, object] | None = None) -> Any:
    """POST to the admin API (open on loopback in tests); the JSON answer."""
    response = httpx.post(
        f"{platform.gateway_url}/admin{path}", json=body, headers=JSON, timeout=120
    )
    assert response.status_code in (200, 201), response.text
    return response.json()


def stored(platform: Platform, interaction_id: str) -> Interaction:
    """The captured interaction, once the asynchronous writer has stored it."""
    engine = db.create_db_engine(platform.db_url)
    try:
        for _ in range(100):
            with Session(engine) as session:
                row = session.get(Interaction, interaction_id)
            if row is not None:
                return row
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError(f"interaction {interaction_id} was not captured")
