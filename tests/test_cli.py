"""The `llamabatch` command: embed/generate over files, bad input, checkpoints, kill and resume.

Every run goes through `python -m llamabatch.cli` in a subprocess, as a user would.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import llamabatch
from llamabatch import datasets

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

CAPTIONS = Path(llamabatch.__file__).parent / "data" / "captions.jsonl"
N = 40


# One thread: llama.cpp's worker threads spin while they wait for each other, which makes
# them slow to a crawl on a busy or 2-core CI machine; one thread gives the same values.
QUIET = ("--no-progress", "--threads", "1")


def cli(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "llamabatch.cli", *map(str, args), *QUIET],
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def records() -> list[dict]:
    lines = CAPTIONS.read_text(encoding="utf-8").splitlines()[:N]
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def default_embedder() -> llamabatch.Embedder:
    """What `llamabatch embed` runs without --model: the catalogue default in this CPU's fastest format."""
    return llamabatch.Embedder()


@pytest.fixture(scope="module")
def expected(records, default_embedder) -> np.ndarray:
    return default_embedder.encode([r["text"] for r in records], truncate=True)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, records) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    paths = {"jsonl": d / "in.jsonl", "csv": d / "in.csv", "parquet": d / "in.parquet", "text": d / "in.txt"}
    paths["jsonl"].write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    with open(paths["csv"], "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows([[f"c{r['id']}", r["text"]] for r in records])
    pq.write_table(pa.table({"id": [r["id"] * 10 for r in records], "text": [r["text"] for r in records]}),
                   paths["parquet"])
    paths["text"].write_text("".join(r["text"] + "\n" for r in records), encoding="utf-8")
    return paths


def _read(path: Path) -> tuple[list, np.ndarray]:
    table = pq.read_table(path)
    vectors = np.asarray(table.column("embedding").combine_chunks().values).reshape(table.num_rows, -1)
    return table.column(0).to_pylist(), vectors


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "text"])
def test_embed_to_parquet_keeps_ids_order_and_values(fmt, inputs, records, expected, tmp_path):
    out = tmp_path / "out.parquet"
    proc = cli("embed", inputs[fmt], "-o", out)
    ids, vectors = _read(out)
    want_ids = {"jsonl": [r["id"] for r in records], "csv": [f"c{r['id']}" for r in records],
                "parquet": [r["id"] * 10 for r in records], "text": list(range(1, N + 1))}[fmt]
    assert ids == want_ids
    assert pq.read_table(out).column_names[0] == ("line" if fmt == "text" else "id")
    assert pq.read_table(out).schema.field("embedding").type == pa.list_(pa.float32(), 384)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    assert f"done: {N} rows" in proc.stdout and "rows/day" in proc.stdout
    assert not (tmp_path / "out.parquet.parts").exists()


def test_embed_to_npy_with_ids_sidecar(inputs, records, expected, tmp_path):
    out = tmp_path / "vectors.npy"
    cli("embed", inputs["jsonl"], "-o", out, "--batch-size", "8")
    matrix = np.load(out)
    assert matrix.shape == (N, 384) and matrix.dtype == np.float32
    ids = [json.loads(line) for line in (tmp_path / "vectors.ids.jsonl").read_text().splitlines()]
    assert ids == [r["id"] for r in records]
    # Batch size 8 packs differently, and packing moves the last bits (more so in bf16, which
    # rounds the activations too): each row stays at the same direction.
    assert np.sum(matrix * expected, axis=1).min() >= 0.99995


# --------------------------------------------------------------------------- bad input


def test_missing_field_names_field_and_line(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "text": "tea"}\n{"id": 2, "text": "coffee"}\n{"id": 3, "txt": "milk"}\n')
    proc = cli("embed", src, "-o", tmp_path / "out.parquet", check=False)
    assert proc.returncode == 1
    assert "line 3" in proc.stderr and "missing field 'text'" in proc.stderr

    proc = cli("embed", src, "-o", tmp_path / "out2.parquet", "--text-field", "body", check=False)
    assert proc.returncode == 1 and "line 1" in proc.stderr and "'body'" in proc.stderr

    csv_src = tmp_path / "in.csv"
    csv_src.write_text("id,body\n1,tea\n")
    proc = cli("embed", csv_src, "-o", tmp_path / "out3.parquet", check=False)
    assert proc.returncode == 1 and "line 1" in proc.stderr and "'text'" in proc.stderr


def test_malformed_line_is_an_error_or_skipped_and_counted(tmp_path, default_embedder):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "text": "tea"}\n\n{"id": 2, "text": "coffee"\n{"id": 3, "text": "milk"}\n'
                   '[1, 2]\n{"id": 4, "text": "bread"}\n')
    out = tmp_path / "out.parquet"
    proc = cli("embed", src, "-o", out, check=False)
    assert proc.returncode == 1
    assert "line 3" in proc.stderr and "malformed JSON" in proc.stderr and "--skip-bad" in proc.stderr
    assert not out.exists() and not (tmp_path / "out.parquet.parts").exists()  # nothing to resume: no leftovers

    proc = cli("embed", src, "-o", out, "--skip-bad", "--overwrite")
    assert "skipped: 2 bad lines" in proc.stdout
    assert "skipped line 3" in proc.stderr and "skipped line 5" in proc.stderr
    ids, vectors = _read(out)
    assert ids == [1, 3, 4]
    np.testing.assert_allclose(vectors, default_embedder.encode(["tea", "milk", "bread"], truncate=True), atol=1e-6)


def test_csv_bad_row_line_numbers_count_quoted_newlines(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('id,text\n1,"two\nlines"\n2,ok,extra\n3,fine\n')
    with pytest.raises(datasets.DataError, match="line 4: expected 2 columns, got 3"):
        list(datasets.read_rows(src))
    bad: list = []
    rows = list(datasets.read_rows(src, skip_bad=True, on_bad=bad.append))
    assert [(r.id, r.line, r.text) for r in rows] == [("1", 2, "two\nlines"), ("3", 5, "fine")]
    assert [b.line for b in bad] == [4]
    # resuming from a position re-reads from that line on
    assert [r.id for r in datasets.read_rows(src, start=4, skip_bad=True)] == ["3"]


def test_existing_output_is_refused_without_resume_or_overwrite(inputs, tmp_path):
    out = tmp_path / "out.parquet"
    cli("embed", inputs["text"], "-o", out)
    before = out.read_bytes()
    proc = cli("embed", inputs["text"], "-o", out, check=False)
    assert proc.returncode == 1 and "exists" in proc.stderr and "--resume" in proc.stderr
    assert "--overwrite" in proc.stderr and out.read_bytes() == before
    proc = cli("embed", inputs["text"], "-o", out, "--resume")
    assert "already complete" in proc.stdout
    cli("embed", inputs["text"], "-o", out, "--overwrite")
    assert pq.read_table(out).num_rows == N


def test_resume_refuses_other_settings(inputs, tmp_path):
    out = tmp_path / "out.parquet"
    parts = tmp_path / "out.parquet.parts"
    parts.mkdir()
    (parts / "manifest.json").write_text(json.dumps({
        "version": 1, "settings": {"task": "embed", "checkpoint_every": 7}, "input": None,
        "chunks": [], "input_done": False}))
    proc = cli("embed", inputs["text"], "-o", out, "--resume", check=False)
    assert proc.returncode == 1 and "other settings" in proc.stderr and "checkpoint_every" in proc.stderr


# --------------------------------------------------------------------------- kill and resume


def _big_input(path: Path, n: int) -> None:
    foods = ["tea", "ramen", "toast", "miso soup", "espresso", "apple pie", "sushi", "lemonade", "bagel", "curry"]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"r{i}", "text": f"{foods[i % 10]} and {foods[(i * 7) % 10]} no {i}"}) + "\n")


def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path):
    src = tmp_path / "big.jsonl"
    _big_input(src, 3000)
    ref = tmp_path / "ref.parquet"
    cli("embed", src, "-o", ref, "--checkpoint-every", "200", timeout=300)

    out = tmp_path / "out.parquet"
    manifest = tmp_path / "out.parquet.parts" / "manifest.json"
    proc = subprocess.Popen([sys.executable, "-m", "llamabatch.cli", "embed", str(src), "-o", str(out),
                             "--checkpoint-every", "200", *QUIET],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    killed_after = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                chunks = json.loads(manifest.read_text())["chunks"]
            except (OSError, ValueError, KeyError):  # not there yet (it is only ever replaced whole)
                chunks = []
            if chunks:
                os.kill(proc.pid, signal.SIGKILL)
                killed_after = len(chunks)
                break
            time.sleep(0.02)
    finally:
        proc.wait(timeout=30)
    assert killed_after >= 1, "the run finished (or never checkpointed) before it could be killed"
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()

    res = cli("embed", src, "-o", out, "--checkpoint-every", "200", "--resume", timeout=300)
    assert "resumed:" in res.stdout
    done_before = int(res.stdout.split("resumed: ")[1].split()[0])
    assert done_before >= 200 and done_before % 200 == 0

    ids, vectors = _read(out)
    ref_ids, ref_vectors = _read(ref)
    assert ids == ref_ids == [f"r{i}" for i in range(3000)]
    np.testing.assert_allclose(vectors, ref_vectors, rtol=0, atol=1e-6)
    assert not (tmp_path / "out.parquet.parts").exists()


# --------------------------------------------------------------------------- generate


def test_generate_to_parquet(tmp_path):
    src = tmp_path / "prompts.jsonl"
    src.write_text("".join(json.dumps({"id": i, "q": q}) + "\n"
                           for i, q in enumerate(["Name a fruit.", "Name a drink.", "Name a bread."])))
    out = tmp_path / "gen.parquet"
    cli("generate", src, "-o", out, "--prompt-field", "q", "--chat", "--max-new-tokens", "6",
        "--n-parallel", "2", "--checkpoint-every", "2")
    table = pq.read_table(out)
    assert table.column_names == ["id", "generated_text", "finish_reason", "prompt_tokens", "completion_tokens"]
    assert table.column("id").to_pylist() == [0, 1, 2]
    # The texts are Generator's own (greedy) answers to the same prompts.
    expected = llamabatch.Generator(n_parallel=2).generate(["Name a fruit.", "Name a drink.", "Name a bread."],
                                                           chat=True, max_new_tokens=6)
    assert table.column("generated_text").to_pylist() == expected
    assert set(table.column("finish_reason").to_pylist()) <= {"stop", "length"}
    assert all(1 <= n <= 6 for n in table.column("completion_tokens").to_pylist())
    proc = cli("generate", src, "-o", tmp_path / "gen.npy", "--prompt-field", "q", check=False)
    assert proc.returncode == 1 and ".parquet" in proc.stderr


def test_generate_with_and_without_prefix_reuse_gives_the_same_rows(tmp_path):
    """A shared instruction (--prompt-template) comes from a slot's memory by default and
    is decoded for every row with --no-prefix-cache; batch-invariant, the rows are equal."""
    src = tmp_path / "prompts.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n"
                           for i, t in enumerate(["tea", "rice", "figs", "soup", "bread"])))
    tables = []
    for flags in ((), ("--no-prefix-cache",)):
        out = tmp_path / f"gen{len(flags)}.parquet"
        cli("generate", src, "-o", out, "--chat", "--max-new-tokens", "5", "--n-parallel", "2", "--batch-invariant",
            "--prompt-template", "List two dishes made with the food named here, nothing else: {prompt}", *flags)
        tables.append(pq.read_table(out).to_pylist())
    assert tables[0] == tables[1]


def test_generate_with_a_chat_template_file(tmp_path):
    """--chat-template renders each prompt with the given template (here a file, read by
    the CLI): the prompt token counts are that rendering's."""
    src = tmp_path / "prompts.jsonl"
    src.write_text(json.dumps({"id": 0, "text": "Name a fruit."}) + "\n")
    template = tmp_path / "bare.jinja"
    template.write_text("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
                        "{{ '<|im_start|>assistant\\n' }}", encoding="utf-8")
    out = tmp_path / "gen.parquet"
    cli("generate", src, "-o", out, "--chat", "--chat-template", template, "--max-new-tokens", "4")
    g = llamabatch.Generator(n_parallel=1, chat_template=template)
    expected = g.generate_details(["Name a fruit."], chat=True, max_new_tokens=4)[0]
    table = pq.read_table(out)
    assert table.column("prompt_tokens").to_pylist() == [expected.prompt_tokens]
    rendered = "<|im_start|>user\nName a fruit.<|im_end|>\n<|im_start|>assistant\n"  # no default system turn
    assert expected.prompt_tokens == len(g.model.tokenize(rendered, False, True))
    assert table.column("generated_text").to_pylist() == [expected.text]


# --------------------------------------------------------------------------- checkpoint states a kill can leave


def test_checkpoint_states_left_by_a_kill(tmp_path):
    from llamabatch.checkpoint import Checkpoint, CheckpointError

    out = tmp_path / "out.parquet"
    settings = {"task": "embed", "checkpoint_every": 2}
    table = pa.table({"id": [1, 2], "x": [0.5, 0.25]})
    ck = Checkpoint(out, settings)
    ck.add_chunk(lambda p: pq.write_table(table, p), rows=2, end=2, bad=0)
    # killed while writing chunk 1 (a temporary file) or after writing it but before the manifest named it
    (ck.parts_dir / ".part-000001.parquet.tmp").write_bytes(b"half a file")
    pq.write_table(pa.table({"id": [99], "x": [9.0]}), ck.parts_dir / "part-000001.parquet")

    with pytest.raises(CheckpointError, match="--resume"):
        Checkpoint(out, settings)
    with pytest.raises(CheckpointError, match="other settings"):
        Checkpoint(out, {**settings, "checkpoint_every": 3}, resume=True)
    ck2 = Checkpoint(out, settings, resume=True)
    assert ck2.next_pos == 2 and ck2.rows_done == 2
    assert not list(ck2.parts_dir.glob(".*.tmp"))
    ck2.add_chunk(lambda p: pq.write_table(table, p), rows=2, end=4, bad=1)  # replaces the orphan
    ck2.mark_input_done(end=4, bad=0)
    ck2.finish(lambda p: pq.write_table(pa.concat_tables([pq.read_table(x) for x in ck2.part_paths()]), p))
    assert pq.read_table(out).column("id").to_pylist() == [1, 2, 1, 2]
    assert not ck2.parts_dir.exists()
    assert Checkpoint(out, settings, resume=True).already_complete


def test_long_text_is_cut_by_default_and_an_error_naming_its_line_with_no_truncate(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("tea\n\n" + "coffee " * 700 + "\nmilk\n")
    out = tmp_path / "out.parquet"
    cli("embed", src, "-o", out)
    assert pq.read_table(out).column("line").to_pylist() == [1, 3, 4]
    proc = cli("embed", src, "-o", tmp_path / "strict.parquet", "--no-truncate", check=False)
    assert proc.returncode == 1 and "line 3" in proc.stderr and "tokens" in proc.stderr
