"""deploy/kubernetes rendered the way a user renders it: `kubectl kustomize` on an overlay of
a copy of the tree whose secrets.env was filled in (the real one is not in git)."""

import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
OVERLAYS = sorted(p.name for p in (KUBERNETES / "overlays").iterdir() if p.is_dir())

Manifests = dict[tuple[str, str], dict[str, Any]]


def kubectl() -> str:
    found = shutil.which("kubectl")
    assert found, "kubectl is missing: `make test` checks for it (docs/deploy.md)"
    return found


def copy_tree(workdir: Path, with_secrets: bool = True) -> Path:
    """A copy of deploy/kubernetes with secrets.env made from the example, random values."""
    tree = workdir / "kubernetes"
    shutil.copytree(KUBERNETES, tree, ignore=shutil.ignore_patterns("secrets.env"))
    if with_secrets:
        example = (tree / "base" / "secrets.env.example").read_text()
        filled = [
            f"{line}{secrets.token_hex(24)}" if line.endswith("=") else line
            for line in example.splitlines()
        ]
        (tree / "base" / "secrets.env").write_text("\n".join(filled) + "\n")
    return tree


def kustomize(tree: Path, overlay: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl(), "kustomize", str(tree / "overlays" / overlay)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def render(workdir: Path, overlay: str) -> Manifests:
    """The overlay's objects by (kind, name); a failed render fails with kubectl's message."""
    result = kustomize(copy_tree(workdir), overlay)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


WORKLOADS = ("Deployment", "StatefulSet", "Job")


def pod_specs(manifests: Manifests) -> dict[str, dict[str, Any]]:
    """Every workload's pod spec by workload name."""
    return {
        name: d["spec"]["template"]["spec"]
        for (kind, name), d in manifests.items()
        if kind in WORKLOADS
    }


def pod_labels(manifests: Manifests) -> list[dict[str, str]]:
    return [
        d["spec"]["template"]["metadata"]["labels"]
        for (kind, _), d in manifests.items()
        if kind in WORKLOADS
    ]


def one(manifests: Manifests, kind: str) -> dict[str, Any]:
    """The single object of `kind` (a generated ConfigMap or Secret has a hash suffix)."""
    found = [d for (k, _), d in manifests.items() if k == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]
