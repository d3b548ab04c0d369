"""Helpers shared by tests and benchmarks (never imported from conftest)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
