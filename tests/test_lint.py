"""Static checks, as part of the suite: ruff on every Python file of the project,
and mypy --strict on the package (settings in pyproject.toml)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True)


def test_ruff_finds_nothing() -> None:
    pytest.importorskip("ruff", reason="ruff is in the test extra")
    result = _run("ruff", "check", "--no-cache", "src", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_passes_on_the_package() -> None:
    pytest.importorskip("mypy", reason="mypy is in the test extra")
    result = _run("mypy", "--cache-dir", str(REPO / ".mypy_cache"))
    assert result.returncode == 0, result.stdout + result.stderr
