"""Weight formats: the fastest lossless format is chosen by the CPU module that runs,
every format the choice can land on stays at the reference's answers, and a user's
own file runs as given unless a format is asked for, when a copy is cached once."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import llamabatch
from llamabatch import Embedder, _core, models, weights
from llamabatch.devices import cpu_features

DATA = Path(__file__).parent / "data"
REFERENCE_TEXTS = json.loads((DATA / "reference_texts.json").read_text(encoding="utf-8"))
REFERENCE = np.load(DATA / "reference_minilm.npy")
CORPUS = [row["text"] for row in json.loads((DATA / "multilingual_corpus.json").read_text(encoding="utf-8"))]
CORPUS_REFERENCE = np.load(DATA / "reference_corpus_minilm.npy")
AVX2 = ["SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2", "LLAMAFILE"]


# ------------------------------------------------------------------ the rule
@pytest.mark.parametrize("features, fmt", [
    (AVX2, "f32"),                                              # Haswell .. Zen 3, Alder Lake
    (AVX2 + ["AVX512"], "f32"),                                 # Skylake-X: no bf16 dot product
    (AVX2 + ["AVX512", "AVX512_VNNI"], "f32"),                  # Cascade / Ice Lake
    (AVX2 + ["AVX512", "AVX512_VNNI", "AVX512_BF16"], "bf16"),  # Zen 4/5, Sapphire Rapids
    (["SSE3", "SSSE3"], "f32"),                                 # the x86-64-v2 variant
])
def test_the_fastest_format_follows_the_cpu_module(features: list[str], fmt: str) -> None:
    choice = weights.fastest_format(features, on_gpu=False, machine="x86_64")
    assert choice.format == fmt
    assert "AVX512_BF16" in choice.reason


def test_a_gpu_and_other_architectures_keep_f16() -> None:
    assert weights.fastest_format(AVX2, on_gpu=True, machine="x86_64").format == "f16"
    arm = weights.fastest_format(["NEON", "ARM_FMA"], on_gpu=False, machine="aarch64")
    assert arm.format == "f16" and "aarch64" in arm.reason


def test_system_info_reports_the_choice_for_this_module() -> None:
    info = llamabatch.system_info()
    expected = weights.fastest_format(cpu_features(str(_core.build_info()["llama_cpp"])), on_gpu=bool(info["gpu"]))
    assert (info["weights"], info["weights_reason"]) == (expected.format, expected.reason)


# ------------------------------------------------------------------ catalogue models
def test_the_default_embedder_runs_the_fastest_format_at_the_reference() -> None:
    emb = Embedder()
    expected = weights.fastest_format_here()
    assert emb.weights == expected.format and emb.weights_reason == expected.reason
    assert Path(emb.model.path) == models.fetch(models.WEIGHT_FORMATS["all-minilm-l6-v2"][expected.format])
    assert f"weights='{expected.format}'" in repr(emb)
    cos = np.sum(emb.encode(REFERENCE_TEXTS) * REFERENCE, axis=1)
    assert cos.min() >= 0.9999


@pytest.mark.parametrize("fmt, floor", [("f32", 0.99999), ("f16", 0.99999), ("bf16", 0.9999)])
def test_every_format_stays_at_sentence_transformers(fmt: str, floor: float) -> None:
    """What the choice can land on, on every reference text and the 616-text multilingual corpus."""
    emb = Embedder("all-minilm-l6-v2", weights=fmt)
    assert emb.weights == fmt and _core.weight_format_of_file(emb.model.path) == fmt
    for texts, reference in ((REFERENCE_TEXTS, REFERENCE), (CORPUS, CORPUS_REFERENCE)):
        cos = np.sum(emb.encode(texts, truncate=256) * reference, axis=1)
        assert cos.min() >= floor, (fmt, float(cos.min()), texts[int(np.argmin(cos))])


def test_a_name_that_pins_a_format_runs_that_format() -> None:
    emb = Embedder("all-minilm-l6-v2-f32")
    assert emb.weights == "f32" and "own format" in emb.weights_reason
    assert Embedder("all-minilm-l6-v2-f32", weights="f16").weights == "f16"  # the same model, asked in f16


# ------------------------------------------------------------------ a user's own file
@pytest.fixture()
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache for converted copies (catalogue files stay where they are)."""
    monkeypatch.setenv("LLAMABATCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def own_f16(minilm_path: str, tmp_path: Path) -> Path:
    """A user's own f16 GGUF, outside the cache."""
    own = tmp_path / "mine.gguf"
    own.write_bytes(Path(minilm_path).read_bytes())
    return own


def test_a_users_file_runs_as_given(own_f16: Path, own_cache: Path) -> None:
    emb = Embedder(own_f16)
    assert (Path(emb.model.path), emb.weights) == (own_f16, "f16")
    assert not (own_cache / "converted").exists()


def test_asking_for_a_format_writes_one_cached_copy(own_f16: Path, own_cache: Path) -> None:
    f16 = Embedder(own_f16)
    f32 = Embedder(own_f16, weights="f32")
    copy = Path(f32.model.path)
    assert copy.parent == own_cache / "converted" and copy.name.endswith(".f32.gguf")
    assert _core.weight_format_of_file(str(copy)) == "f32" and "cached f32 copy of mine.gguf" in f32.weights_reason
    # f16 -> f32 is exact, so the copy embeds like the file it came from.
    cos = np.sum(f16.encode(REFERENCE_TEXTS) * f32.encode(REFERENCE_TEXTS), axis=1)
    assert cos.min() >= 0.99999
    # Made once: a second Embedder loads the same file, untouched.
    mtime = copy.stat().st_mtime_ns
    assert Path(Embedder(own_f16, weights="f32").model.path) == copy and copy.stat().st_mtime_ns == mtime
    # A changed source gets a copy of its own.
    os.utime(own_f16, ns=(mtime + 10**9, mtime + 10**9))
    assert Path(Embedder(own_f16, weights="f32").model.path) != copy


def test_fastest_converts_a_users_float_file_to_this_cpus_format(own_f16: Path, own_cache: Path) -> None:
    emb = Embedder(own_f16, weights="fastest")
    assert emb.weights == weights.fastest_format_here().format
    if emb.weights != "f16":
        assert Path(emb.model.path).parent == own_cache / "converted"


def test_a_quantized_file_runs_as_given_or_refuses_a_float_format(smollm_path: str) -> None:
    fastest = weights.resolve_model(smollm_path, "", "fastest")
    assert (str(fastest.path), fastest.format) == (smollm_path, "q4_1") and "as given" in fastest.reason
    with pytest.raises(ValueError, match="q4_1 weights, which cannot be turned into f32"):
        weights.resolve_model(smollm_path, "", "f32")


def test_bad_weight_arguments_are_clear_errors(own_f16: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="weights='q8' is not one of"):
        Embedder(weights="q8")
    with pytest.raises(ValueError, match="'q8' is not one of f32, f16, bf16"):
        _core.convert_weights(str(own_f16), str(tmp_path / "x.gguf"), "q8")
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("not a model")
    with pytest.raises(ValueError, match="is not a GGUF file"):
        _core.weight_format_of_file(str(not_gguf))
    with pytest.raises(FileNotFoundError):
        _core.weight_format_of_file(str(tmp_path / "missing.gguf"))
    with pytest.raises(RuntimeError, match="could not write a f32 copy"):
        _core.convert_weights(str(own_f16), str(tmp_path / "no" / "such" / "dir.gguf"), "f32")


def test_the_convert_command_prints_the_cached_copy(own_f16: Path, own_cache: Path) -> None:
    env = dict(os.environ, LLAMABATCH_CACHE=str(own_cache))
    run = subprocess.run([sys.executable, "-m", "llamabatch.models", "convert", str(own_f16), "--to", "bf16", "-q"],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    copy = Path(run.stdout.strip())
    assert copy.parent == own_cache / "converted" and _core.weight_format_of_file(str(copy)) == "bf16"
    bad = subprocess.run([sys.executable, "-m", "llamabatch.models", "convert", str(own_f16.with_name("none.gguf")),
                          "--to", "f32"], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "does not exist" in bad.stderr
