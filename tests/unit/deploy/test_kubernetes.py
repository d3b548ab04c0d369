"""deploy/kubernetes renders, for every overlay, into objects the Kubernetes API would accept
(checked against its published schemas, strictly), wired end to end like docker/compose.yaml:
the same processes, settings, probes and secrets, and network policies that let only the
gateways and the worker reach the engines. No cluster here: `kubectl kustomize` renders and
`kubernetes-validate` checks what an API server would."""

import copy
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from loraloop.cli import app
from loraloop.cli_support import SECTIONS
from tests.utils.kustomize import (
    OVERLAYS,
    Manifests,
    copy_tree,
    kustomize,
    one,
    pod_labels,
    pod_specs,
    render,
)

# The oldest minor version the cloud providers still run, and the newest the validator knows.
VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
DOCKER = Path(__file__).resolve().parents[3] / "docker"
COMPONENT = "app.kubernetes.io/component"


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Manifests:
    return render(tmp_path_factory.mktemp(request.param), request.param)


def container(manifests: Manifests, kind: str, name: str) -> dict[str, Any]:
    return manifests[(kind, name)]["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


def environment(manifests: Manifests, c: dict[str, Any]) -> dict[str, str]:
    """What the container's process sees: envFrom ConfigMaps, then env (literal values and
    `$(VAR)` expanded as the kubelet does, from variables defined before it)."""
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        env.update(manifests[("ConfigMap", source["configMapRef"]["name"])]["data"])
    for var in c.get("env", []):
        value = var.get("value", "<from a secret>" if "valueFrom" in var else "")
        for ref in re.findall(r"\$\((\w+)\)", value):
            assert ref in env, f"{c['name']}: {var['name']} uses $({ref}) before it is defined"
            value = value.replace(f"$({ref})", env[ref])
        env[var["name"]] = value
    return env


def test_every_object_is_valid_for_the_kubernetes_api(rendered: Manifests) -> None:
    kinds = {kind for kind, _ in rendered}
    assert {"StatefulSet", "Deployment", "Job", "HorizontalPodAutoscaler",
            "PodDisruptionBudget", "Ingress", "NetworkPolicy", "Secret"} <= kinds  # fmt: skip
    for version in VERSIONS:
        for doc in rendered.values():
            kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_would_catch_a_mistake(rendered: Manifests) -> None:
    gateway = copy.deepcopy(rendered[("Deployment", "gateway")])
    probe = gateway["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["httpGet"]["paht"] = probe["httpGet"].pop("path")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(gateway, VERSIONS[0], strict=True)


def test_a_render_without_secrets_names_the_missing_file(tmp_path: Path) -> None:
    result = kustomize(copy_tree(tmp_path, with_secrets=False), OVERLAYS[0])
    assert result.returncode != 0 and "secrets.env" in result.stderr


def test_engines_are_the_replicas_every_gateway_and_worker_lists(rendered: Manifests) -> None:
    engine = rendered[("StatefulSet", "engine")]
    service = rendered[("Service", "engine")]
    assert service["spec"]["clusterIP"] == "None", "each replica by name, never balanced"
    assert engine["spec"]["serviceName"] == "engine"
    port = int(environment(rendered, container(rendered, "StatefulSet", "engine"))
               ["LORALOOP_ENGINE_PORT"])  # fmt: skip
    expected = [f"http://engine-{i}.engine:{port}" for i in range(engine["spec"]["replicas"])]
    for kind, name in (("Deployment", "gateway"), ("Deployment", "worker")):
        env = environment(rendered, container(rendered, kind, name))
        assert json.loads(env["LORALOOP_ENGINE_URLS"]) == expected, name
    env = environment(rendered, container(rendered, "StatefulSet", "engine"))
    assert json.loads(env["LORALOOP_ENGINE_URLS"]) == [], "an engine serves, it does not route"
    assert "LORALOOP_DB_URL" not in env, "engines are not told where the database is"
    assert rendered[("Deployment", "worker")]["spec"]["replicas"] == 2, "one leads, one stands by"


def test_gpus_only_where_the_overlay_says(rendered: Manifests) -> None:
    image = container(rendered, "StatefulSet", "engine")["image"]
    for kind, name in (("StatefulSet", "engine"), ("Deployment", "worker")):
        resources = container(rendered, kind, name).get("resources", {})
        gpus = resources.get("limits", {}).get("nvidia.com/gpu")
        assert gpus == ("1" if image.endswith(":cuda") else None), (name, image)
    assert image.endswith((":cuda", ":cpu"))
    assert (
        container(rendered, "Deployment", "gateway")
        .get("resources", {})
        .get("limits", {})
        .get("nvidia.com/gpu")
        is None
    ), "gateways need no GPU"


def test_settings_and_commands_are_loraloops_and_match_compose(rendered: Manifests) -> None:
    known = {
        f"{s.model_config.get('env_prefix', '')}{f}".upper()
        for s in SECTIONS
        for f in s.model_fields
    }
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())["services"]
    # The migrate Job needs only the database (compose's shares every process's settings).
    roles = {"engine": "engine-1", "run": "gateway-1", "worker": "worker", "db": None}
    for name, spec in pod_specs(rendered).items():
        c = spec["containers"][0]
        if not c["image"].startswith("loraloop"):
            continue
        env = environment(rendered, c)
        for key in env:
            if key.startswith("LORALOOP_"):
                assert key in known, f"{name}: {key} is not a loraloop setting"
        result = CliRunner().invoke(app, [*c["command"][1:], "--help"])
        assert result.exit_code == 0, f"{name}: `{' '.join(c['command'])}` is not a command"
        role = roles[c["command"][1]]
        wanted = (
            {k for k in compose[role]["environment"] if k.startswith("LORALOOP_")}
            if role
            else {"LORALOOP_DB_URL"}
        )
        assert wanted <= set(env), f"{name} lacks compose's {sorted(wanted - set(env))}"
        mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
        if "adapters" in mounts:
            assert env["LORALOOP_SERVE_ADAPTER_STORE"] == mounts["adapters"], name
        if "runs" in mounts:
            assert env["LORALOOP_RETRAIN_RUNS_DIR"] == mounts["runs"], name
        if "spool" in mounts:
            assert Path(env["LORALOOP_FEEDBACK_CAPTURE_SPOOL_PATH"]).parent == Path(
                mounts["spool"]
            ), name


def test_probes_ask_the_health_the_images_check(rendered: Manifests) -> None:
    assert "/health" in (DOCKER / "Dockerfile.cuda").read_text().split("HEALTHCHECK")[1]
    for kind, name, setting in (("StatefulSet", "engine", "LORALOOP_ENGINE_PORT"),
                                ("Deployment", "gateway", None)):  # fmt: skip
        c = container(rendered, kind, name)
        env = environment(rendered, c)
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        port = int(env[setting]) if setting else 8000
        probe = c["readinessProbe"]["httpGet"]
        assert probe["path"] == "/health" and ports[probe["port"]] == port, name
        if name == "gateway":
            hosts = json.loads(env["LORALOOP_SERVE_ALLOWED_HOSTS"])
            host = {h["name"]: h["value"] for h in probe.get("httpHeaders", [])}.get("Host")
            assert host in hosts, "the gateway refuses a Host it does not serve (the pod IP)"
            ingress = rendered[("Ingress", "gateway")]["spec"]
            assert ingress["rules"][0]["host"] == hosts[0] == ingress["tls"][0]["hosts"][0]
            assert "httpGet" not in c["livenessProbe"], "a database outage must not restart it"
    assert "startupProbe" in container(rendered, "StatefulSet", "engine"), "model load is slow"


def test_references_point_at_objects_that_exist(rendered: Manifests) -> None:
    secret = one(rendered, "Secret")
    assert all(secret["data"].values()), "no empty secret"
    claims = {name for kind, name in rendered if kind == "PersistentVolumeClaim"}
    for name, spec in pod_specs(rendered).items():
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims, name
        for c in spec["containers"]:
            for var in c.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == secret["metadata"]["name"], name
                    assert ref["key"] in secret["data"], f"{name}: no {ref['key']} in the secret"
                else:
                    assert "PASSWORD" not in var["name"] and "API_KEY" not in var["name"], name
    labels = pod_labels(rendered)
    for (kind, name), doc in rendered.items():
        selector = {
            "Service": lambda d: d["spec"]["selector"],
            "PodDisruptionBudget": lambda d: d["spec"]["selector"]["matchLabels"],
        }.get(kind)
        if selector:
            wanted = selector(doc)
            assert any(wanted.items() <= pod.items() for pod in labels), f"{kind} {name}"
    hpa = rendered[("HorizontalPodAutoscaler", "gateway")]["spec"]
    target = hpa["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "gateway")
    assert hpa["minReplicas"] >= 2, "two gateways at least, for availability"
    backend = rendered[("Ingress", "gateway")]["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["name"] == "gateway"
    assert container(rendered, "Job", "migrate")["command"] == ["loraloop", "db", "upgrade"]


def allowed_from(policy: dict[str, Any]) -> set[str]:
    """The components a policy lets in (pod selectors in this namespace)."""
    found: set[str] = set()
    for rule in policy["spec"].get("ingress", []):
        for peer in rule["from"]:
            for expr in peer.get("podSelector", {}).get("matchExpressions", []):
                assert expr["key"] == COMPONENT and expr["operator"] == "In"
                found |= set(expr["values"])
    return found


def test_only_gateways_and_the_worker_reach_the_engines(rendered: Manifests) -> None:
    policies = {n: d for (k, n), d in rendered.items() if k == "NetworkPolicy"}
    deny = policies["default-deny-ingress"]["spec"]
    assert (
        deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"] and not deny.get("ingress")
    ), "everything is closed unless a policy opens it"
    assert allowed_from(policies["engine"]) == {"gateway", "worker"}
    assert allowed_from(policies["postgres"]) == {"gateway", "worker", "migrate"}
    gateway_from = policies["gateway"]["spec"]["ingress"][0]["from"]
    assert all("namespaceSelector" in peer and "podSelector" not in peer for peer in gateway_from)
    components = {pod[COMPONENT] for pod in pod_labels(rendered)}
    for name, policy in policies.items():
        target = policy["spec"]["podSelector"].get("matchLabels", {}).get(COMPONENT)
        assert target is None or target in components, f"{name} selects no pod"
        assert allowed_from(policy) <= components, name
