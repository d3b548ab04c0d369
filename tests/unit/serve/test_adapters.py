"""Adapter registry through the admin API: register, pin, promote, canary, rollback."""

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from tests.utils.adapters import make_adapter_dir
from tests.utils.clients import JSON


def register(client: TestClient, name: str, path: Path | str):  # type: ignore[no-untyped-def]
    return client.post("/admin/adapters", json={"name": name, "path": str(path)})


def answer(client: TestClient, model: str) -> str:
    response = client.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["model"] == model
    return str(response.json()["choices"][0]["message"]["content"])


def engine_name(client: TestClient, ref: str) -> str:
    adapters = client.get("/admin/adapters").json()
    return next(a["engine_name"] for a in adapters if f"{a['name']}@{a['version']}" == ref)


def test_register_then_pin_promote_and_rollback(gateway: TestClient, store: Path) -> None:
    v1 = register(gateway, "support", make_adapter_dir(store, "s1"))
    assert v1.status_code == 201, v1.text
    assert v1.json()["version"] == 1
    assert answer(gateway, "support@1").startswith(f"[{engine_name(gateway, 'support@1')}]")
    assert (
        gateway.post(
            "/v1/chat/completions",
            json={
                "model": "support",
                "messages": [{"role": "user", "content": "hi"}],
            },
        ).status_code
        == 404
    ), "an alias without a production version does not serve"

    assert gateway.post("/admin/aliases/support/promote", json={"version": 1}).status_code == 200
    v2 = register(gateway, "support", make_adapter_dir(store, "s2"))
    assert v2.json()["version"] == 2
    assert v2.json()["lineage"]["parent_version"] == 1
    promoted = gateway.post("/admin/aliases/support/promote", json={"version": 2}).json()
    assert promoted["production_version"] == 2
    assert promoted["previous_version"] == 1
    assert engine_name(gateway, "support@2") in answer(gateway, "support")

    rolled = gateway.post("/admin/aliases/support/rollback", headers=JSON).json()
    assert rolled["production_version"] == 1
    assert engine_name(gateway, "support@1") in answer(gateway, "support")

    models = [m["id"] for m in gateway.get("/v1/models").json()["data"]]
    assert models == ["base", "support", "support@1", "support@2"]
    statuses = {
        f"{a['name']}@{a['version']}": a["status"] for a in gateway.get("/admin/adapters").json()
    }
    assert statuses == {"support@1": "production", "support@2": "registered"}


def test_old_version_is_unloaded_from_the_engine_after_promote(
    gateway: TestClient, store: Path
) -> None:
    for name in ("a1", "a2"):
        register(gateway, "support", make_adapter_dir(store, name))
    gateway.post("/admin/aliases/support/promote", json={"version": 1})
    gateway.post("/admin/aliases/support/promote", json={"version": 2})
    router = gateway.app.state.router  # type: ignore[attr-defined]
    url = router.replicas.urls[0]
    old, new = engine_name(gateway, "support@1"), engine_name(gateway, "support@2")
    gateway.portal.call(router.drain)  # type: ignore[union-attr]
    engine_models = {
        m["id"]
        for m in gateway.portal.call(  # type: ignore[union-attr]
            lambda: _engine_models(router, url)
        )
    }
    assert new in engine_models
    assert old not in engine_models
    assert engine_name(gateway, "support@1") in answer(gateway, "support@1"), (
        "a pinned version loads again on demand"
    )


def test_the_newest_version_stays_loaded_so_its_promote_loads_nothing(
    gateway: TestClient, store: Path
) -> None:
    """A version is registered to be promoted or tried next: the unload sweep keeps the
    alias's newest one while it is newer than production, and only that one."""
    router = gateway.app.state.router  # type: ignore[attr-defined]
    url = router.replicas.urls[0]
    register(gateway, "support", make_adapter_dir(store, "n1"))
    gateway.post("/admin/aliases/support/promote", json={"version": 1})
    for name in ("n2", "n3"):
        register(gateway, "support", make_adapter_dir(store, name))

    async def sweep() -> None:
        router.schedule_unload()
        await router.drain()

    gateway.portal.call(sweep)  # type: ignore[union-attr]
    held = {m["id"] for m in gateway.portal.call(lambda: _engine_models(router, url))}  # type: ignore[union-attr]
    names = {ref: engine_name(gateway, ref) for ref in ("support@1", "support@2", "support@3")}
    assert names["support@1"] in held and names["support@3"] in held
    assert names["support@2"] not in held, "an older unpromoted version is unloaded"
    loads = sum(router.load_count.values())
    assert gateway.post("/admin/aliases/support/promote", json={"version": 3}).status_code == 200
    assert sum(router.load_count.values()) == loads, "the promote loaded nothing"


async def _engine_models(router, url: str) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    response = await router.client.get(f"{url}/v1/models")
    return response.json()["data"]  # type: ignore[no-any-return]


def test_canary_share_splits_traffic(gateway: TestClient, store: Path) -> None:
    register(gateway, "support", make_adapter_dir(store, "c1"))
    register(gateway, "support", make_adapter_dir(store, "c2"))
    gateway.post("/admin/aliases/support/promote", json={"version": 1})
    canary = gateway.post("/admin/aliases/support/canary", json={"version": 2, "share": 0.3})
    assert canary.json()["canary_version"] == 2
    names = {engine_name(gateway, "support@1"): 1, engine_name(gateway, "support@2"): 2}
    served = Counter(names[answer(gateway, "support")[1:].split("]")[0]] for _ in range(200))
    assert 30 <= served[2] <= 90, served
    assert served[1] + served[2] == 200


def pickled(store: Path) -> Path:
    """peft's legacy format: torch.save, a pickle that runs code when loaded."""
    path = make_adapter_dir(store, "pickled")
    (path / "adapter_model.safetensors").rename(path / "adapter_model.bin")
    return path


def linked_out(store: Path, outside: Path) -> Path:
    """An adapter directory inside the store whose weights are a symlink out of it."""
    path = make_adapter_dir(store, "linked")
    (path / "adapter_model.safetensors").unlink()
    (path / "adapter_model.safetensors").symlink_to(outside / "adapter_model.safetensors")
    return path


def test_register_refuses_bad_adapters(gateway: TestClient, store: Path, tmp_path: Path) -> None:
    outside = make_adapter_dir(tmp_path / "elsewhere", "x")
    cases = [
        (outside, "outside the adapter store"),
        (make_adapter_dir(store, "big", rank=64), "exceeds the engine's max_lora_rank 16"),
        (make_adapter_dir(store, "other", base="/models/OtherModel-7B"), "OtherModel-7B"),
        (make_adapter_dir(store, "mts", modules_to_save=["lm_head"]), "modules_to_save"),
        (store / "missing", "not a peft adapter"),
        (store / ".." / "elsewhere" / "x", "outside the adapter store"),
        ("/etc", "outside the adapter store"),
        (store, "outside the adapter store"),
        ("bad\x00path", "not usable"),
        (pickled(store), "pickle file"),
        (linked_out(store, outside), "links out of the store"),
        (make_adapter_dir(store, "rank", rank="sixteen"), "rank r must be a positive integer"),
    ]
    for path, fragment in cases:
        response = register(gateway, "support", path)
        assert response.status_code == 400, (path, response.text)
        assert fragment in response.json()["error"]["message"]
    assert gateway.get("/admin/adapters").json() == []


def test_promote_unknown_version_and_rollback_without_history(gateway: TestClient) -> None:
    response = gateway.post("/admin/aliases/support/promote", json={"version": 9})
    assert response.status_code == 404
    assert "no version 9" in response.json()["error"]["message"]
    response = gateway.post("/admin/aliases/support/rollback", headers=JSON)
    assert response.status_code == 400
    assert "no previous version" in response.json()["error"]["message"]


def test_another_gateway_promotion_is_picked_up(
    migrated_db: str,
    make_gateway: Callable[..., TestClient],
    gateway: TestClient,
    store: Path,
) -> None:
    """Two gateways on one database: a promote through one reaches the other."""
    register(gateway, "support", make_adapter_dir(store, "r1"))
    other = make_gateway(migrated_db)
    gateway.post("/admin/aliases/support/promote", json={"version": 1})
    router = other.app.state.router
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        alias = router.aliases.get("support")
        if alias is not None and alias.production_version == 1:
            break
        time.sleep(0.05)
    assert router.aliases["support"].production_version == 1


def test_adapters_are_loaded_again_after_an_engine_restart(
    gateway: TestClient, store: Path
) -> None:
    import os
    import signal
    import time

    register(gateway, "support", make_adapter_dir(store, "restart1"))
    gateway.post("/admin/aliases/support/promote", json={"version": 1})
    manager = gateway.app.state.engine  # type: ignore[attr-defined]
    old_pid = manager.pid
    os.kill(old_pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (manager.restarts == 1 and manager.state == "ready"):
        time.sleep(0.05)
    assert manager.pid != old_pid
    body = {"model": "support", "messages": [{"role": "user", "content": "hi"}]}
    deadline = time.monotonic() + 10  # the reload hook runs on the app's loop
    while time.monotonic() < deadline:
        if gateway.post("/v1/chat/completions", json=body).status_code == 200:
            break
        time.sleep(0.1)
    assert engine_name(gateway, "support@1") in answer(gateway, "support")
