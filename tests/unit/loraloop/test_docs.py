"""Every setting is documented in .env.example and in the README's settings table."""

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from loraloop.cli_support import SECTIONS

REPO = Path(__file__).resolve().parents[3]


def env_names(section: type[BaseSettings]) -> list[str]:
    prefix = section.model_config.get("env_prefix", "")
    return [f"{prefix}{name}".upper() for name in section.model_fields]


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.__name__)
@pytest.mark.parametrize("doc", [".env.example", "README.md"])
def test_every_setting_is_documented(section: type[BaseSettings], doc: str) -> None:
    text = (REPO / doc).read_text()
    missing = [name for name in env_names(section) if name not in text]
    assert missing == [], f"{doc} does not mention {missing}"


def test_readme_shows_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    assert "make run" in text
    assert "make test" in text
