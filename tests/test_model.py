"""Model: loading real GGUF files, and refusing bad ones without aborting."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import llamabatch


def test_embedding_model_properties(minilm):
    assert minilm.architecture == "bert"
    assert minilm.n_embd == 384
    assert minilm.n_ctx_train == 512
    assert minilm.n_vocab == 30522
    assert minilm.causal is False
    assert minilm.pooling == "mean"


def test_generation_model_properties(smollm):
    assert smollm.architecture == "llama"
    assert smollm.causal is True
    assert smollm.n_embd == 576
    assert "im_start" in smollm.chat_template


def test_tokenize(minilm):
    ids = minilm.tokenize("hello world")
    assert ids.dtype == np.int32
    assert ids[0] == 101 and ids[-1] == 102  # [CLS] ... [SEP]
    assert len(minilm.tokenize("hello world", add_special=False)) == len(ids) - 2


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        llamabatch.Model(str(tmp_path / "nope.gguf"))


def test_not_gguf_raises_value_error(tmp_path):
    junk = tmp_path / "random.gguf"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(ValueError, match="not a GGUF file"):
        llamabatch.Model(str(junk))
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="not a GGUF file"):
        llamabatch.Model(str(empty))


def test_truncated_model_raises_value_error_in_a_subprocess(minilm_path, tmp_path):
    # In a child process: a loader abort would kill the child, not the test run.
    cut = tmp_path / "cut.gguf"
    with open(minilm_path, "rb") as f:
        cut.write_bytes(f.read(3_000_000))
    code = (
        "import llamabatch, sys\n"
        f"try:\n    llamabatch.Model({str(cut)!r})\n"
        "except ValueError as e:\n    print('VALUE_ERROR', e); sys.exit(0)\n"
        "sys.exit(3)\n"
    )
    env = dict(os.environ, GGML_NO_BACKTRACE="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "could not load" in r.stdout
