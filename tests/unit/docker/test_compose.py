"""docker/compose.yaml is wired end to end (no Docker engine here to run `compose config`):
every service, dependency, port, volume and setting points at something that exists, and
the nginx config in front of the gateways passes `nginx -t` and names exactly the gateways."""

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from loraloop.cli import app
from loraloop.cli_support import SECTIONS
from tests.utils.nginx import CONF, check, render

DOCKER = Path(__file__).resolve().parents[3] / "docker"
SERVICES = {
    *("postgres", "minio", "migrate", "engine-1", "engine-2", "gateway-1", "gateway-2"),
    *("worker", "lb", "prometheus", "alertmanager", "grafana"),
}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())  # type: ignore[no-any-return]


def services(compose: dict[str, Any], role: str) -> dict[str, dict[str, Any]]:
    return {
        name: s for name, s in compose["services"].items() if s.get("command", [""])[1:2] == [role]
    }


def test_every_service_is_there_and_built_or_pulled(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES
    for name, service in compose["services"].items():
        assert "image" in service, name
        if "build" in service:
            context = (DOCKER / service["build"]["context"]).resolve()
            assert (context / service["build"]["dockerfile"]).is_file(), name
        else:
            # a version number (v1.2.3 too), or MinIO's dated release tag
            assert re.search(r":v?(\d|RELEASE\.\d)", service["image"]), f"{name}: pin its version"


def test_dependencies_exist_and_are_healthy_where_waited_for(compose: dict[str, Any]) -> None:
    dockerfile_health = "HEALTHCHECK" in (DOCKER / "Dockerfile.cuda").read_text()
    for name, service in compose["services"].items():
        for dep, how in service.get("depends_on", {}).items():
            assert dep in compose["services"], f"{name} depends on unknown {dep}"
            assert how["condition"] in CONDITIONS
            target = compose["services"][dep]
            if how["condition"] == "service_healthy":
                own = target.get("healthcheck", {})
                assert not own.get("disable"), f"{dep} is waited on but has no health check"
                assert own.get("test") or ("build" in target and dockerfile_health), dep


def test_volumes_are_declared_and_shared_where_adapters_travel(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used: set[str] = set()
    mounts: dict[str, dict[str, str]] = {}
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source, target = (
                volume.rsplit(":", 2)[:2] if volume.startswith("$") else volume.split(":")[:2]
            )
            if source.startswith("$"):
                assert ":?" in source, f"{name}: {source} is a required setting, no default"
            elif not source.startswith("."):
                used.add(source)
                mounts.setdefault(name, {})[source] = target
            else:
                assert (DOCKER / source).is_file(), f"{name} mounts missing {source}"
    assert used == declared, "every named volume is declared and every declared one is used"
    adapter_paths = {mounts[n].get("adapters") for n in mounts if n.startswith(("engine", "gate"))}
    assert adapter_paths == {"/data/adapters"}, "engines load adapters where gateways put them"


def test_every_process_publishes_and_loads_through_the_same_object_store(
    compose: dict[str, Any],
) -> None:
    minio = compose["services"]["minio"]
    assert minio["networks"] == ["internal"], "the object store is reachable only inside"
    for name, service in compose["services"].items():
        if not service.get("image", "").startswith("loraloop"):
            continue
        env = service["environment"]
        assert env["LORALOOP_STORE_URL"].startswith("s3://"), name
        assert env["LORALOOP_STORE_ENDPOINT_URL"] == "http://minio:9000", name
        assert env["AWS_ACCESS_KEY_ID"] == minio["environment"]["MINIO_ROOT_USER"], name
        if name != "migrate":
            assert service["depends_on"]["minio"]["condition"] == "service_healthy", name


def test_ports_settings_and_commands_line_up(compose: dict[str, Any]) -> None:
    engines = services(compose, "engine")
    gateways = services(compose, "run")
    assert set(engines) == {"engine-1", "engine-2"} and set(gateways) == {"gateway-1", "gateway-2"}
    expected = {
        f"http://{n}:{e['environment']['LORALOOP_ENGINE_PORT']}" for n, e in engines.items()
    }
    for name, engine in engines.items():
        port = engine["environment"]["LORALOOP_ENGINE_PORT"]
        assert engine["expose"] == [port] and engine["environment"]["HEALTH_PORT"] == port
        assert json.loads(engine["environment"]["LORALOOP_ENGINE_URLS"]) == [], name
    for name, gateway in gateways.items():
        env = gateway["environment"]
        assert set(json.loads(env["LORALOOP_ENGINE_URLS"])) == expected, name
        assert env["LORALOOP_WORKER_IN_GATEWAY"] == "false", "the worker service schedules"
        assert gateway["expose"] == ["8000"]
    assert compose["services"]["lb"]["ports"] == ["443:8443"], "TLS only, from outside"

    pg = compose["services"]["postgres"]["environment"]
    url = make_url(compose["services"]["worker"]["environment"]["LORALOOP_DB_URL"])
    assert (url.host, url.port, url.database) == ("postgres", 5432, pg["POSTGRES_DB"])
    assert url.username == pg["POSTGRES_USER"]

    known = {
        f"{s.model_config.get('env_prefix', '')}{f}".upper()
        for s in SECTIONS
        for f in s.model_fields
    }
    for name, service in compose["services"].items():
        for key in service.get("environment", {}):
            if key.startswith("LORALOOP_"):
                assert key in known, f"{name}: {key} is not a loraloop setting"
        command = service.get("command", [])
        if command[:1] == ["loraloop"]:
            result = CliRunner().invoke(app, [*command[1:], "--help"])
            assert result.exit_code == 0, f"{name}: `{' '.join(command)}` is not a command"


def test_nginx_balances_exactly_the_gateways_and_its_config_is_valid(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    upstreams = re.findall(r"^\s*server (\S+):(\d+) ", CONF.read_text(), flags=re.M)
    assert {(host, int(port)) for host, port in upstreams} == {
        (name, 8000) for name in services(compose, "run")
    }
    result = check(render(["127.0.0.1:1", "127.0.0.1:2"], 18000, tmp_path))
    assert result.returncode == 0, result.stderr
    broken = render(["127.0.0.1:1", "127.0.0.1:2"], 18000, tmp_path)
    broken.write_text(broken.read_text().replace("least_conn;", "least_conn"))
    assert check(broken).returncode != 0, "nginx -t would catch a broken config"


def test_engines_and_database_are_internal_and_secrets_have_no_defaults(
    compose: dict[str, Any],
) -> None:
    assert compose["networks"]["internal"]["internal"] is True, "no route out of `internal`"
    for name, service in compose["services"].items():
        networks = set(service.get("networks", []))
        env = service.get("environment", {})
        if name.startswith("engine") or name in ("postgres", "worker", "migrate"):
            assert networks == {"internal"}, f"{name} must be reachable inside only"
            assert "ports" not in service, name
        if name.startswith("engine"):
            assert "LORALOOP_DB_URL" not in env, "engines are not told where the database is"
        if name.startswith(("engine", "gateway", "worker")):
            assert env["LORALOOP_ENGINE_API_KEY"].startswith("${LORALOOP_ENGINE_API_KEY:?")
        if name.startswith("gateway"):
            assert networks == {"internal", "edge"}
            hosts = json.loads(env["LORALOOP_SERVE_ALLOWED_HOSTS"])
            assert "${LORALOOP_PUBLIC_HOST:?" in hosts[0] and "127.0.0.1" in hosts
            assert json.loads(env["LORALOOP_SERVE_TRUSTED_PROXIES"]) == [
                compose["networks"]["edge"]["ipam"]["config"][0]["subnet"]
            ]
    assert compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${POSTGRES_PASSWORD:?"
    ), "no default database password"
    text = (DOCKER / "compose.yaml").read_text()
    assert ":-loraloop}" not in text and "trust" not in text


def test_prometheus_scrapes_every_gateway_with_the_rules_and_feeds_alertmanager_and_grafana(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """The monitoring services point at what exists: promtool accepts the config (its paths
    mapped to the repository's files), the scrape targets are the gateways by the names their
    Host check allows, alerts go to the Alertmanager service, Grafana reads that Prometheus."""
    defined = compose["services"]
    config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    mounts = dict(v.rsplit(":", 2)[:2][::-1] for v in defined["prometheus"]["volumes"])
    assert mounts[config["rule_files"][0]] == "./prometheus/alerts.yml"
    job = config["scrape_configs"][0]
    key = job["authorization"]["credentials_file"]
    assert mounts[key].startswith("${LORALOOP_METRICS_KEY_FILE:?")
    gateways = services(compose, "run")
    assert sorted(job["static_configs"][0]["targets"]) == sorted(
        f"{name}:{s['expose'][0]}" for name, s in gateways.items()
    )
    for name, gateway in gateways.items():
        assert name in json.loads(gateway["environment"]["LORALOOP_SERVE_ALLOWED_HOSTS"])
    (alertmanager,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanager.split(":")[0] in defined
    (tmp_path / "alerts.yml").write_text((DOCKER / "prometheus" / "alerts.yml").read_text())
    (tmp_path / "metrics.key").write_text("key\n")
    config["rule_files"] = [str(tmp_path / "alerts.yml")]
    job["authorization"]["credentials_file"] = str(tmp_path / "metrics.key")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: `make test` installs Debian's prometheus package"
    checked = subprocess.run(
        [tool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    datasource = yaml.safe_load(
        (DOCKER / "grafana" / "provisioning" / "datasources.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090" and datasource["isDefault"]
    grafana = dict(v.rsplit(":", 2)[:2][::-1] for v in defined["grafana"]["volumes"])
    dashboards = yaml.safe_load(
        (DOCKER / "grafana" / "provisioning" / "dashboards.yml").read_text()
    )
    folder = dashboards["providers"][0]["options"]["path"]
    assert grafana[f"{folder}/loraloop.json"] == "./grafana/loraloop.json"
    routes = yaml.safe_load((DOCKER / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["name"] for r in routes["receivers"]}
    assert routes["route"]["receiver"] in receivers
    assert {r["receiver"] for r in routes["route"]["routes"]} <= receivers
