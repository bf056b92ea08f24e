"""On a CUDA device (run with `-m gpu`; skipped without a CUDA build and a GPU).

scripts/gpu_check.sh runs these on a GPU machine, with the speed report.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import llamabatch

INFO = llamabatch.system_info()
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not (INFO["cuda"] and INFO["gpu"]), reason="needs a CUDA build and a CUDA device"),
]
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return json.loads((DATA / "reference_texts.json").read_text(encoding="utf-8"))


def test_embedder_and_generator_go_to_the_gpu_by_default(minilm_path: str, smollm_path: str) -> None:
    emb = llamabatch.Embedder(minilm_path)
    assert emb.device.startswith("cuda:") and emb.model.n_gpu_layers == -1
    assert emb.n_batch >= 512
    gen = llamabatch.Generator(smollm_path)
    assert gen.device.startswith("cuda:")
    assert llamabatch.Embedder(minilm_path, n_gpu_layers=0).device == "cpu"
    assert llamabatch.Generator(smollm_path, n_gpu_layers=0).device == "cpu"


def test_gpu_embeddings_equal_the_cpus(minilm_path: str, texts: list[str]) -> None:
    gpu = llamabatch.Embedder(minilm_path).encode(texts, truncate=True)
    cpu = llamabatch.Embedder(minilm_path, n_gpu_layers=0).encode(texts, truncate=True)
    cos = np.sum(gpu * cpu, axis=1)
    assert gpu.shape == cpu.shape and np.isfinite(gpu).all()
    assert cos.min() >= 0.9999, f"min cosine {cos.min():.6f} at text {int(cos.argmin())}"


def test_gpu_embeddings_match_sentence_transformers(minilm_path: str, texts: list[str]) -> None:
    # The same reference and bounds as tests/test_embedder.py on the CPU (texts
    # 139 and 144 are tokenized differently by the two tokenizers).
    ref = np.load(DATA / "reference_minilm.npy")
    got = llamabatch.Embedder(minilm_path).encode(texts)
    cos = np.sum(got * ref, axis=1)
    comparable = [i for i in range(len(texts)) if i not in (139, 144)]
    assert cos[comparable].min() >= 0.999 and cos[comparable].mean() >= 0.9999


def test_gpu_generation_is_greedy_and_batched(smollm_path: str) -> None:
    prompts = ["Name three cheeses.", "Write a haiku about tea.", "What is 2 + 2?"]
    gpu = llamabatch.Generator(smollm_path, n_parallel=4)
    one = [gpu.generate(p, chat=True, max_new_tokens=24) for p in prompts]
    many = gpu.generate(prompts, chat=True, max_new_tokens=24)
    assert all(isinstance(t, str) and t for t in many)
    # Batched and one-at-a-time agree on the GPU as they do on the CPU (a near-tie may differ late).
    assert sum(a[:20] == b[:20] for a, b in zip(one, many)) >= 2
