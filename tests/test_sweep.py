"""`llamabatch sweep`: results.csv, results.json and sweep.png, on the shipped captions."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from llamabatch import sweep

pytest.importorskip("pyarrow")
pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_sweep(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "llamabatch.cli", "sweep", *map(str, args), "--no-progress",
                           "--threads", "1"],  # see test_cli.QUIET
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def _check_files(out, task: str) -> tuple[list[dict], dict]:
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    result = json.loads((out / "results.json").read_text())
    assert list(rows[0]) == sweep.columns(task, with_reference=True)
    assert (out / "sweep.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "sweep.png").stat().st_size > 10_000
    assert [r["batch_size"] for r in result["runs"]] == [int(r["batch_size"]) for r in rows]
    meta = result["meta"]
    assert meta["task"] == task and meta["baseline_batch_size"] == 1 and meta["reference_field"] == "items"
    assert meta["cpu"] == sweep.cpu_name() and meta["threads"] >= 1 and meta["model"].endswith(".gguf")
    for r in result["runs"]:
        assert r["total_seconds"] > 0 and r["samples_per_second"] > 0
        assert r["samples_per_day"] == pytest.approx(r["samples_per_second"] * 86400)
        assert r["samples_per_hour"] == pytest.approx(r["samples_per_second"] * 3600)
        assert 0 <= r["reference_similarity"] <= 1
    base_seconds = result["runs"][0]["total_seconds"]
    for r in result["runs"]:  # speed-up against the baseline run, from the timings themselves
        assert r["speedup"] == pytest.approx(base_seconds / r["total_seconds"], rel=1e-6)
    return rows, result


def test_embed_sweep_writes_results_and_plot(tmp_path):
    out = tmp_path / "sweep"
    proc = run_sweep("--task", "embed", "--batch-sizes", "1,8", "--limit", "40", "--out", out)
    rows, result = _check_files(out, "embed")
    assert [int(r["batch_size"]) for r in rows] == [1, 8]
    assert result["meta"]["samples"] == 40
    other = result["runs"][1]
    assert other["cosine_min_vs_baseline"] > 0.999  # batching changes rounding only
    assert "results.csv" in proc.stdout and "speed-up" in proc.stdout


def test_similarity_helpers():
    assert sweep.word_similarity("a b c", "a b c") == 1.0
    assert sweep.word_similarity("Hello my name is Daniel!", "Hello my name is Sam!") == pytest.approx(0.8)
    assert sweep.items_mentioned("Ramen, Egg", ["ramen", "egg", "scallions"]) == pytest.approx(2 / 3)
    assert sweep.items_mentioned("anything", []) == 1.0


def test_generate_sweep_writes_results_and_plot(tmp_path):
    out = tmp_path / "gen"
    run_sweep("--task", "generate", "--batch-sizes", "1,4", "--limit", "8", "--max-new-tokens", "8", "--out", out)
    rows, result = _check_files(out, "generate")
    assert [int(r["batch_size"]) for r in rows] == [1, 4]
    base, other = result["runs"]
    # Greedy decoding gives the same text whatever the batch size.
    assert other["exact_match_vs_baseline"] == 1.0 and other["word_similarity_vs_baseline"] == 1.0
    assert 0 < base["completion_tokens"] <= 8 * 8
    assert result["meta"]["prompt_template"] == sweep.DEFAULT_PROMPT
    assert len(result["meta"]["examples"]) == 3
