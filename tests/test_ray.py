"""Ray Data: embed_dataset / generate_dataset on a local Ray instance, a worker killed
mid-job, and `llamabatch embed --ray`.

One Ray instance (2 CPUs, loopback only) serves the whole module and is shut down at its
end. Workers run one llama.cpp thread each, as on a 2-core CI machine.

Why the references are computed per Ray batch: how texts are packed into a decode moves
an embedding by up to ~1e-4 (llama.cpp's kernels are not batch-invariant; see
test_cli's .npy test), and which prompts share a decode can flip a greedy near-tie. Ray
hands each worker whole batches of ``BATCH`` consecutive rows here (blocks of
``BATCH`` rows), so the single-process Embedder/Generator given the same batches must
give the same values; against one big single-process call only the cosine is compared.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import llamabatch
from llamabatch import models

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

import llamabatch.ray as lray  # noqa: E402  (needs ray)

# Ray Data warns about its own deprecated settings when it copies its context; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")

CAPTIONS = Path(llamabatch.__file__).parent / "data" / "captions.jsonl"
N = 40        # rows embedded
N_GEN = 24    # rows generated
BATCH = 10    # rows per Ray batch for embeddings
GEN_BATCH = 12


@pytest.fixture(scope="module")
def cluster():
    """A fresh local Ray instance on 127.0.0.1 with 2 CPUs; yields its address."""
    env = dict(os.environ)  # ray.init sets RAY_AUTH_MODE for itself and its children; later tests get it back
    info = ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                    logging_level="warning")
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield info.address_info["gcs_address"]
    finally:
        ray.shutdown()
        os.environ.clear()
        os.environ.update(env)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return [json.loads(line) for line in CAPTIONS.read_text(encoding="utf-8").splitlines()[:N]]


def _dataset(rows: list[dict], batch: int):
    """Blocks of exactly ``batch`` rows, so every Ray batch is ``batch`` consecutive rows."""
    return ray.data.from_items(rows, override_num_blocks=len(rows) // batch)


def _by_id(ds) -> "pa.Table":
    return pa.concat_tables(ray.get(ds.to_arrow_refs())).sort_by("id")


def _matrix(table) -> np.ndarray:
    return np.asarray(table.column("embedding").combine_chunks().values).reshape(table.num_rows, -1)


def _chunked(fn, items: list, size: int) -> list:
    return [out for i in range(0, len(items), size) for out in fn(items[i:i + size])]


@pytest.fixture(scope="module")
def reference(records, minilm_path) -> dict[str, np.ndarray]:
    """Single-process embeddings (one thread): per Ray batch, and of all texts in one call."""
    embedder = llamabatch.Embedder(minilm_path, n_threads=1)
    texts = [r["text"] for r in records]
    return {"per_batch": np.stack(_chunked(lambda t: embedder.encode(t, truncate=True), texts, BATCH)),
            "one_call": embedder.encode(texts, truncate=True)}


def test_embed_dataset_equals_single_process(cluster, records, reference):
    # A catalogue name: each worker resolves it itself (from this machine's cache here), in the
    # reference's f16 (by default each worker would pick the fastest format for its own CPU).
    out = lray.embed_dataset(_dataset(records, BATCH), model=models.DEFAULT_EMBEDDING_MODEL,
                             batch_size=BATCH, concurrency=2, threads_per_worker=1,
                             weights="f16")
    table = _by_id(out)

    assert table.column("id").to_pylist() == [r["id"] for r in records]
    assert table.column("text").to_pylist() == [r["text"] for r in records]      # input columns kept
    assert table.column("items").to_pylist() == [r["items"] for r in records]
    kind = table.schema.field("embedding").type
    assert pa.types.is_fixed_size_list(kind) and kind.list_size == 384 and kind.value_type == pa.float32()
    vectors = _matrix(table)
    np.testing.assert_allclose(vectors, reference["per_batch"], rtol=0, atol=1e-5)
    cosine = np.sum(vectors * reference["one_call"], axis=1)  # both L2-normalised
    assert np.all(cosine > 1 - 1e-6)


def test_generate_dataset_greedy_equals_single_process(cluster, records, smollm_path):
    rows = records[:N_GEN]
    options = {"max_new_tokens": 16, "temperature": 0.0, "chat": True}
    out = lray.generate_dataset(_dataset(rows, GEN_BATCH), model=smollm_path, batch_size=GEN_BATCH,
                                concurrency=2, threads_per_worker=1, n_parallel=8, **options)
    table = _by_id(out)

    generator = llamabatch.Generator(smollm_path, n_parallel=8, n_threads=1)
    want = _chunked(lambda p: generator.generate_details(p, **options), [r["text"] for r in rows], GEN_BATCH)
    assert table.column("id").to_pylist() == [r["id"] for r in rows]
    assert table.column("generated_text").to_pylist() == [c.text for c in want]
    assert table.column("finish_reason").to_pylist() == [c.finish_reason for c in want]
    assert table.column("completion_tokens").to_pylist() == [c.completion_tokens for c in want]
    assert table.column("prompt_tokens").to_pylist() == [c.prompt_tokens for c in want]
    assert all(t.strip() for t in table.column("generated_text").to_pylist())


def test_killed_worker_is_retried_and_every_row_comes_once(cluster, records, reference, minilm_path, tmp_path):
    marker, starts = tmp_path / "died", tmp_path / "starts"
    victim = records[25]["id"]  # in the third of four batches: some batches are done when it dies

    # Defined here, so Ray pickles the class by value (workers cannot import this test module).
    class DiesOnce(lray.EmbedWorker):
        def __init__(self, *args, **kwargs):
            with open(starts, "a") as f:
                f.write(f"{os.getpid()}\n")
            super().__init__(*args, **kwargs)

        def __call__(self, batch):
            if victim in batch.column("id").to_pylist() and not marker.exists():
                marker.write_text(str(os.getpid()))
                os._exit(1)  # the whole worker process dies, as on a crash or an OOM kill
            return super().__call__(batch)

    # The map_batches that embed_dataset uses, with the dying worker class in place of EmbedWorker.
    kwargs = {"text_column": "text", "output_column": "embedding", "threads": 1, "truncate": True,
              "normalize": True, "embedder_options": {}}
    out = lray._map(_dataset(records, BATCH), DiesOnce, minilm_path, kwargs, batch_size=BATCH, concurrency=2,
                    threads_per_worker=1)
    table = _by_id(out)

    assert marker.exists(), "no worker died: the test did not test anything"
    pids = starts.read_text().split()
    assert len(pids) >= 3 and marker.read_text() in pids  # 2 workers, then the dead one again
    assert table.column("id").to_pylist() == [r["id"] for r in records]  # every row exactly once
    np.testing.assert_allclose(_matrix(table), reference["per_batch"], rtol=0, atol=1e-5)


def test_cli_embed_with_ray(cluster, records, reference, minilm_path, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out"
    src.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "llamabatch.cli", "embed", str(src), *map(str, args),
                               "--no-progress", "--threads", "1"], capture_output=True, text=True, timeout=180)

    # Flags that make no sense with Ray are refused before Ray starts.
    for extra, message in [(("--resume",), "--resume does not apply with --ray"),
                           (("--skip-bad",), "--skip-bad does not apply with --ray"),
                           (("--workers", "2"), "leave none for Ray's read and write tasks")]:
        proc = cli("-o", out, "--ray", "--address", cluster, *extra)
        assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    proc = cli("-o", tmp_path / "x.parquet", "--address", cluster)
    assert proc.returncode == 1 and "--address is for Ray runs" in proc.stderr

    # One worker: the other CPU runs Ray's read and write tasks.
    proc = cli("-o", out, "--ray", "--address", cluster, "--model", minilm_path, "--workers", "1")
    assert proc.returncode == 0, proc.stderr
    assert f"done: {N} rows -> {out}" in proc.stdout
    table = pq.read_table(out).sort_by("id")
    assert table.column_names == ["id", "embedding"]
    assert table.column("id").to_pylist() == [r["id"] for r in records]
    # Ray's JSON reader decides the batches here, so only the cosine is packing-independent.
    cosine = np.sum(_matrix(table) * reference["one_call"], axis=1)
    assert np.all(cosine > 1 - 1e-6)

    proc = cli("-o", out, "--ray", "--address", cluster, "--model", minilm_path, "--workers", "1")
    assert proc.returncode == 1 and "pass --overwrite" in proc.stderr
