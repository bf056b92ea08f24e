"""Run by tests/test_portable.py in a fresh interpreter against a portable install:
prints, as JSON, the CPU variant llamabatch chose, the weight format it would run a
catalogue model in, and how its embeddings of the first N reference texts compare
with sentence-transformers'.

    python portable_probe.py MODEL.gguf N
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import llamabatch

DATA = Path(__file__).parent / "data"


def main() -> None:
    model, n = sys.argv[1], int(sys.argv[2])
    texts = json.loads((DATA / "reference_texts.json").read_text(encoding="utf-8"))[:n]
    reference = np.load(DATA / "reference_minilm.npy")[:n]
    info = llamabatch.system_info()
    rows = llamabatch.Embedder(model).encode(texts)
    cos = np.sum(rows * reference, axis=1)
    print(json.dumps({
        "module": llamabatch._core.__file__,
        "cpu_variant": info["cpu_variant"],
        "cpu_variant_reason": info["cpu_variant_reason"],
        "cpu_variants": info["cpu_variants"],
        "compiled_features": info["cpu_features"],
        "weights": info["weights"],
        "texts": len(texts),
        "min_cos": float(cos.min()),
    }))


if __name__ == "__main__":
    main()
