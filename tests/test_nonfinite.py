"""Non-finite outputs: a NaN from llama.cpp raises with the text's index instead of
reaching the user's matrix.

The model is the real all-MiniLM-L6-v2 GGUF with the token-embedding row of one
word overwritten with NaN (f16 0x7E00), so exactly the texts holding that word
produce NaN, as a damaged file or a failing kernel would.
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from llamabatch import Embedder

POISONED_WORD = "ramen"


@pytest.fixture(scope="module")
def poisoned(minilm_path, tmp_path_factory, embedder, gguf_module):
    gguf = gguf_module
    token = int(embedder.tokenize(POISONED_WORD)[0][1])  # [CLS] ramen [SEP]
    path = tmp_path_factory.mktemp("nan") / "minilm-nan-row.gguf"
    shutil.copyfile(minilm_path, path)
    reader = gguf.GGUFReader(str(path))
    table = next(t for t in reader.tensors if t.name == "token_embd.weight")
    assert table.tensor_type == gguf.GGMLQuantizationType.F16
    n_embd = int(table.shape[0])
    row_offset = table.data_offset + token * n_embd * 2
    with open(path, "r+b") as f:
        f.seek(row_offset)
        f.write(np.full(n_embd, np.nan, dtype=np.float16).tobytes())
    return str(path)


def test_a_nan_embedding_raises_naming_the_text(poisoned):
    emb = Embedder(poisoned, n_threads=1)
    texts = ["green tea", "hot chocolate", f"a bowl of {POISONED_WORD}", "lemonade"]
    with pytest.raises(RuntimeError, match=r"text 2 gave a non-finite embedding \(NaN or inf\)"):
        emb.encode(texts, batch_size=1)
    # The other texts are fine, and the Embedder stays usable.
    ok = emb.encode(["green tea", "lemonade"])
    assert np.isfinite(ok).all()


def test_a_nan_in_per_token_output_raises_too(poisoned):
    emb = Embedder(poisoned, pooling="none", n_threads=1)
    with pytest.raises(RuntimeError, match="text 1 gave a non-finite embedding"):
        emb.encode(["green tea", f"{POISONED_WORD} with egg"], batch_size=1)
