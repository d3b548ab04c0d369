"""Settings compose per-package sections and read the environment only when asked."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from loraloop.settings import get_settings, mask_url


def test_sections_read_their_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORALOOP_ENGINE_PORT", "9123")
    monkeypatch.setenv("LORALOOP_SERVE_PORT", "9000")
    monkeypatch.setenv("LORALOOP_ENGINE_URLS", '["http://a:1/", "http://b:2"]')
    settings = get_settings()
    assert settings.engine.port == 9123
    assert settings.serve.port == 9000
    assert settings.engine.urls == ["http://a:1", "http://b:2"]


def test_model_path_overrides_cache(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert get_settings().model.model_dir().name == "SmolLM2-135M-Instruct"
    monkeypatch.setenv("LORALOOP_MODEL_PATH", str(tmp_path))
    assert get_settings().model.model_dir() == tmp_path


def test_bad_value_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORALOOP_ENGINE_GPU_MEMORY_UTILIZATION", "1.5")
    with pytest.raises(ValidationError):
        get_settings()


def test_masked_hides_database_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORALOOP_DB_URL", "postgresql+psycopg://app:s3cret@db:5432/loraloop")
    masked = get_settings().masked()
    assert masked["db"]["url"] == "postgresql+psycopg://app:***@db:5432/loraloop"
    assert "s3cret" not in str(masked)


def test_mask_url_leaves_passwordless_urls() -> None:
    assert mask_url("sqlite:///data/loraloop.db") == "sqlite:///data/loraloop.db"


def test_masked_hides_webhook_and_judge_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    hook = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"
    monkeypatch.setenv("LORALOOP_DRIFT_ALERT_WEBHOOK_URL", hook)
    monkeypatch.setenv("LORALOOP_ROLLOUT_ALERT_WEBHOOK_URL", "https://ops.example/hook?token=tk1")
    monkeypatch.setenv("LORALOOP_RETRAIN_JUDGE_URL", "https://user:pw@judge.example:8443/v1")
    monkeypatch.setenv("LORALOOP_ENGINE_API_KEY", "engine-secret")
    masked = get_settings().masked()
    assert masked["drift"]["alert_webhook_url"] == "https://hooks.slack.com/***"
    assert masked["rollout"]["alert_webhook_url"] == "https://ops.example/***"
    assert masked["retrain"]["judge_url"] == "https://judge.example:8443/***"
    assert masked["engine"]["api_key"] == "***"
    for secret in ("XXXXsecretXXXX", "tk1", "pw@", "engine-secret"):
        assert secret not in str(masked)


def test_training_renders_with_the_engines_chat_template(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An adapter learns conversations as the engine serves them: training's template is the
    engine's unless set; the trainer's tokenizer carries it."""
    from retrain.train import Trainer
    from serve.chat_template import CHATML_TOOLS, model_template

    assert get_settings().retrain.chat_template == "auto"
    monkeypatch.setenv("LORALOOP_ENGINE_CHAT_TEMPLATE", "model")
    settings = get_settings()
    assert settings.retrain.chat_template == "model"
    model_dir = settings.model.model_dir()
    own = Trainer(model_dir, settings.retrain, tmp_path).tokenizer().chat_template
    assert own == model_template(model_dir) and own != CHATML_TOOLS.read_text()

    monkeypatch.setenv("LORALOOP_RETRAIN_CHAT_TEMPLATE", "chatml_tools")
    settings = get_settings()
    assert (settings.engine.chat_template, settings.retrain.chat_template) == (
        "model",
        "chatml_tools",
    )
    shipped = Trainer(model_dir, settings.retrain, tmp_path).tokenizer().chat_template
    assert shipped == CHATML_TOOLS.read_text()
