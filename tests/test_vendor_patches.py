"""vendor/patches/: the build's llama.cpp tree has every patch applied, the applier
applies a unified diff exactly or stops naming the hunk that failed, and the nodes
patch 0007 folds together give the embeddings ggml gives computing each node."""
from __future__ import annotations

import difflib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
VENDOR = REPO / "vendor"


def _fetch():
    spec = importlib.util.spec_from_file_location("fetch_llama_cpp", VENDOR / "fetch_llama_cpp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _diff(name: str, before: str, after: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{name}", f"b/{name}"))


def test_every_patch_is_listed_and_documented():
    fetch = _fetch()
    patches = fetch.our_patches()
    assert [p.name for p in patches] == sorted(p.name for p in patches) and len(patches) >= 2
    readme = (VENDOR / "patches" / "README.md").read_text()
    for p in patches:
        assert f"`{p.name}`" in readme, f"{p.name} is not described in vendor/patches/README.md"


def test_the_build_tree_carries_every_patch():
    fetch = _fetch()
    tree = VENDOR / "llama.cpp"
    if not (tree / fetch.STAMP_NAME).exists():
        pytest.skip("vendor/llama.cpp is fetched by the build; build first")
    assert fetch.is_current(tree, fetch.read_pin(), fetch.our_patches()), (
        "vendor/llama.cpp's stamp does not name the current patches: rebuild (the build re-extracts it)")
    for patch in fetch.our_patches():
        added: dict[str, list[str]] = {}  # the lines each file of the patch gains
        target = ""
        for line in patch.read_text().splitlines():
            if line.startswith("+++ b/"):
                target = line[6:].strip()
                added[target] = []
            elif line.startswith("+") and target:
                added[target].append(line[1:])
        assert added, f"{patch.name} names no file"
        for target, lines in added.items():
            source = (tree / target).read_text()
            assert lines and all(line in source for line in lines), f"{patch.name} is not applied to {target}"


def test_a_patch_applies_exactly(tmp_path):
    fetch = _fetch()
    before = "".join(f"line {i}\n" for i in range(1, 40))
    after = before.replace("line 5\n", "line five\n").replace("line 30\n", "line 30\nadded\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.c").write_text(before)
    patch = tmp_path / "p.patch"
    patch.write_text(_diff("src/a.c", before, after))
    fetch.apply_patch(tmp_path, patch)
    assert (tmp_path / "src" / "a.c").read_text() == after


def test_a_patch_of_several_files_applies_each(tmp_path):
    """A hunk ends where its header's counts say: the next file's "--- a/..." line,
    when a hunk ends on a removed line, is not read as one more removal."""
    fetch = _fetch()
    before = "".join(f"line {i}\n" for i in range(1, 20))
    first = before.replace("line 19\n", "")  # the hunk ends on a removal
    second = before.replace("line 3\n", "line three\n")
    for name in ("a.c", "b.c"):
        (tmp_path / name).write_text(before)
    patch = tmp_path / "p.patch"
    patch.write_text(_diff("a.c", before, first) + _diff("b.c", before, second))
    fetch.apply_patch(tmp_path, patch)
    assert (tmp_path / "a.c").read_text() == first and (tmp_path / "b.c").read_text() == second


def test_a_patch_that_does_not_match_stops_naming_the_hunk(tmp_path):
    fetch = _fetch()
    before = "".join(f"line {i}\n" for i in range(1, 40))
    patch = tmp_path / "p.patch"
    patch.write_text(_diff("a.c", before, before.replace("line 20\n", "line twenty\n")))
    (tmp_path / "a.c").write_text(before.replace("line 19\n", "line nineteen\n"))
    with pytest.raises(SystemExit, match=r"p.patch: the hunk at line 17 of a.c does not match the pinned tree"):
        fetch.apply_patch(tmp_path, patch)
    with pytest.raises(SystemExit, match="missing.c is not in the pinned tree"):
        patch.write_text(_diff("missing.c", before, before + "x\n"))
        fetch.apply_patch(tmp_path, patch)


def test_the_stamp_names_the_pin_and_each_patch(tmp_path):
    fetch = _fetch()
    pin = fetch.read_pin()
    p = tmp_path / "x.patch"
    p.write_text("--- a/f\n+++ b/f\n")
    text = fetch.stamp_text(pin, [p])
    assert pin["sha256"] in text and f"patch x.patch {fetch.sha256_of(p)}" in text
    # An unpatched tree (the benchmarks' peers) keeps the stamp it always had.
    assert fetch.stamp_text(pin) == f"{pin['package']}=={pin['version']} {pin['sha256']}\n"


# Patch 0007 folds a BERT layer's bias ADDs (with the feed-forward's GELU) into the
# products before them and each LayerNorm's MUL and ADD into its NORM. ggml reads
# GGML_CPU_DISABLE_FUSION once per process, so each side runs in its own.
_ENCODE = """
import json, sys
import numpy as np
from llamabatch import Embedder
texts = json.loads(open(sys.argv[1], encoding="utf-8").read())
np.save(sys.argv[2], Embedder("all-minilm-l6-v2", weights=sys.argv[3], n_threads=2).encode(texts))
"""


@pytest.mark.parametrize("fmt", ["f32", "bf16"])
def test_folded_nodes_give_the_same_bits_as_each_node(tmp_path, fmt):
    """f32 weights fold all three kinds of node (the packed panels add the bias and
    apply gelu as they store); bf16 the LayerNorms alone."""
    data = REPO / "tests" / "data"
    texts = [row["text"] for row in json.loads((data / "multilingual_corpus.json").read_text(encoding="utf-8"))][:200]
    texts_file = tmp_path / "texts.json"
    texts_file.write_text(json.dumps(texts), encoding="utf-8")
    out = {}
    for fused in (True, False):
        env = dict(os.environ, GGML_CPU_DISABLE_FUSION="0" if fused else "1")
        out[fused] = tmp_path / f"{fused}.npy"
        subprocess.run([sys.executable, "-c", _ENCODE, str(texts_file), str(out[fused]), fmt], env=env, check=True)
    folded, each = np.load(out[True]), np.load(out[False])
    assert folded.shape == (len(texts), 384)
    assert folded.tobytes() == each.tobytes(), float(np.abs(folded - each).max())
