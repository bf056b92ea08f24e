"""The extensions' committed type stubs are what nanobind's stubgen makes of the
built module, so editors and type checkers see the signatures the code has."""
from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "llamabatch"
COMMITTED = PACKAGE / "_core.pyi"


@pytest.mark.parametrize("module", ["_core", "_cpuid"])
def test_committed_stub_matches_the_built_module(tmp_path: Path, module: str) -> None:
    pytest.importorskip("nanobind.stubgen", reason="the stub test needs nanobind (the test extra)")
    fresh = tmp_path / f"{module}.pyi"
    committed = PACKAGE / f"{module}.pyi"
    result = subprocess.run([sys.executable, "-m", "nanobind.stubgen", "-q", "-m", f"llamabatch.{module}",
                             "-o", str(fresh)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    diff = "".join(difflib.unified_diff(committed.read_text().splitlines(True), fresh.read_text().splitlines(True),
                                        f"committed src/llamabatch/{module}.pyi", "stubgen of the built module"))
    assert not diff, (f"the bindings changed: regenerate the stub with\n  python -m nanobind.stubgen -m "
                      f"llamabatch.{module} -o src/llamabatch/{module}.pyi\n" + diff)


def test_stub_declares_real_types() -> None:
    # `object` where a signature could say what it takes or returns is what typed stubs are for.
    lines = [line for line in COMMITTED.read_text().splitlines() if "-> object" in line or ": object" in line]
    assert not lines, "\n".join(lines)
