"""The extension's committed type stub is what nanobind's stubgen makes of the
built module, so editors and type checkers see the signatures the code has."""
from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "src" / "llamabatch" / "_core.pyi"


def test_committed_stub_matches_the_built_module(tmp_path: Path) -> None:
    pytest.importorskip("nanobind.stubgen", reason="the stub test needs nanobind (the test extra)")
    fresh = tmp_path / "_core.pyi"
    result = subprocess.run([sys.executable, "-m", "nanobind.stubgen", "-q", "-m", "llamabatch._core", "-o", str(fresh)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    diff = "".join(difflib.unified_diff(COMMITTED.read_text().splitlines(True), fresh.read_text().splitlines(True),
                                        "committed src/llamabatch/_core.pyi", "stubgen of the built module"))
    assert not diff, ("the bindings changed: regenerate the stub with\n  python -m nanobind.stubgen -m llamabatch._core "
                      "-o src/llamabatch/_core.pyi\n" + diff)


def test_stub_declares_real_types() -> None:
    # `object` where a signature could say what it takes or returns is what typed stubs are for.
    lines = [line for line in COMMITTED.read_text().splitlines() if "-> object" in line or ": object" in line]
    assert not lines, "\n".join(lines)
