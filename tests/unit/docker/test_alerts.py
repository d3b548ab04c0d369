"""The alerting rules, checked and unit-tested by Prometheus's own promtool (Debian's
`prometheus` package, which `make test` installs when absent): every alert fires on the
series it is for and only then, reads metrics a gateway exports, and has a runbook."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import Metric

from loraloop import db
from serve.metrics import GatewayMetrics

PROMETHEUS = Path(__file__).resolve().parents[3] / "docker" / "prometheus"
RUNBOOK = Path(__file__).resolve().parents[3] / "docs" / "runbook.md"
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: `make test` installs Debian's prometheus package"
    return subprocess.run(
        [tool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )


def alerts() -> list[dict[str, object]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_rules_are_valid_and_their_unit_tests_pass() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_tested_firing_and_has_a_runbook() -> None:
    cases = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    fired = {
        check["alertname"]
        for case in cases
        for check in case["alert_rule_test"]
        if check.get("exp_alerts")
    }
    headings = set(re.findall(r"^## (\w+)$", RUNBOOK.read_text(), re.MULTILINE))
    for rule in alerts():
        name = str(rule["alert"])
        assert name in fired, f"{name} has no promtool case where it fires"
        assert name in headings, f"docs/runbook.md has no section for {name}"
        assert rule["annotations"]["runbook"] == f"docs/runbook.md#{name.lower()}"  # type: ignore[index]


@pytest.mark.parametrize("rule", alerts(), ids=lambda r: str(r["alert"]))
def test_alerts_read_metrics_a_gateway_exports(rule: dict[str, object], sqlite_url: str) -> None:
    metrics = GatewayMetrics()
    metrics.watch_loop(db.create_db_engine(sqlite_url))  # as the gateway does at start
    families: list[Metric] = list(metrics.registry.collect())
    exported = {f.name + s for f in families for s in SUFFIXES.get(f.type, [""])} | {"up"}
    named = set(re.findall(r"\b(loraloop_\w+|up)\b(?=\s*[{\[)>=!]|\s*$)", str(rule["expr"])))
    assert named, rule["expr"]
    assert named <= exported, f"not exported by a gateway: {sorted(named - exported)}"
