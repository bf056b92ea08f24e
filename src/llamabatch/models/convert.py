"""Hugging Face folders to GGUF with the vendored llama.cpp converter."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .catalogue import Convert, ModelEntry
from .store import _say
from .wheels import _extract_folder, _wheel

_CONVERT_EXTRA = 'pip install "llamabatch[convert]"'


# Modules the vendored convert_hf_to_gguf.py imports (numpy comes with them).
_CONVERT_MODULES = ("torch", "transformers", "sentencepiece", "numpy")


def _llama_cpp_dir() -> Path:
    """Find the llama.cpp tree holding ``convert_hf_to_gguf.py``.

    Order: ``$LLAMABATCH_LLAMA_CPP``; the copy an installed package carries
    in ``llamabatch/_vendor/llama.cpp``; ``vendor/llama.cpp`` of a source
    checkout found by walking up from this file.
    """
    script = "convert_hf_to_gguf.py"
    env = os.environ.get("LLAMABATCH_LLAMA_CPP")
    if env:
        path = Path(env).expanduser()
        if (path / script).is_file():
            return path
        raise RuntimeError(
            f"LLAMABATCH_LLAMA_CPP={env!r} has no {script}; point it at a llama.cpp "
            "source tree or unset it"
        )
    here = Path(__file__).resolve().parents[1]  # the llamabatch package folder
    packaged = here / "_vendor" / "llama.cpp"
    if (packaged / script).is_file():
        return packaged
    for parent in here.parents:
        candidate = parent / "vendor" / "llama.cpp"
        if (candidate / script).is_file():
            return candidate
    raise RuntimeError(
        f"cannot find llama.cpp's {script}: looked in $LLAMABATCH_LLAMA_CPP, {packaged} "
        f"and vendor/llama.cpp above {here}. Reinstall llamabatch, or set "
        "LLAMABATCH_LLAMA_CPP to a llama.cpp source tree"
    )


def _check_convert_deps() -> None:
    missing = [m for m in _CONVERT_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise RuntimeError(
            f"converting to GGUF needs {', '.join(missing)} in {sys.executable}; "
            f"install them with: {_CONVERT_EXTRA}"
        )


def _convert(entry: ModelEntry, build: Convert, out: Path, quiet: bool) -> None:
    """Extract the HF folder from the wheel and run the vendored converter."""
    llama_cpp = _llama_cpp_dir()
    _check_convert_deps()
    wheel_path = _wheel(entry.wheel, quiet)
    # Work inside the model's cache folder: same filesystem, no /tmp limits.
    with tempfile.TemporaryDirectory(prefix=".convert-", dir=out.parent) as work:
        # The converter derives general.basename/version metadata from the
        # folder's name, so it must be fixed for the output hash to be stable.
        folder = Path(work) / "model"
        with zipfile.ZipFile(wheel_path) as wheel:
            _extract_folder(wheel, build.folder, folder)
        command = [
            sys.executable, str(llama_cpp / "convert_hf_to_gguf.py"), str(folder),
            "--outtype", build.outtype, "--outfile", str(out),
        ]
        # The converter must never reach for a model hub.
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        _say(quiet, f"converting {entry.name} with {llama_cpp / 'convert_hf_to_gguf.py'}")
        result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise RuntimeError(
            f"convert_hf_to_gguf.py failed for {entry.name} (exit code "
            f"{result.returncode}); if it is an import error: {_CONVERT_EXTRA}\n{tail}"
        )
