"""BERT (WordPiece) token ids equal the reference tokenizer's: Hugging Face's
BertTokenizerFast from the model's own folder, the tokenizer sentence-transformers
loads. Every code point is checked, then hypothesis fuzzes whole texts."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llamabatch
from llamabatch import models

transformers = pytest.importorskip("transformers", reason="the reference tokenizer needs transformers")

# Test-only: surrogates cannot be encoded as UTF-8, so no str that reaches a tokenizer holds one.
CODE_POINTS = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
UNK, CLS, SEP = 100, 101, 102


@pytest.fixture(scope="module")
def reference():
    folder = os.environ.get("LLAMABATCH_ST_FOLDER") or models.source_folder(models.DEFAULT_EMBEDDING_MODEL)
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    assert tok.is_fast  # the Rust tokenizer, as sentence-transformers loads it
    return tok


@pytest.fixture(scope="module")
def ours(minilm_path):
    return llamabatch.Embedder(minilm_path)


@pytest.fixture(scope="module")
def reference_backend(reference):
    """The Rust tokenizer behind `reference(texts)`, called directly (no
    BatchEncoding); without the padding and truncation its tokenizer.json sets,
    which transformers turns off per call."""
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(reference.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    return backend


def reference_ids(backend, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in backend.encode_batch(texts, add_special_tokens=True)]


def test_every_code_point_between_letters(ours, reference_backend):
    """Each of the 1,112,064 code points, inside a word: cleaning, CJK spacing,
    NFD, accent stripping, lowercase, whitespace and punctuation, one at a time."""
    texts = [f"a{chr(cp)}b" for cp in CODE_POINTS]
    got = ours.tokenize(texts)
    want = reference_ids(reference_backend, texts)
    bad = [cp for cp, g, w in zip(CODE_POINTS, got, want) if g.tolist() != w]
    assert not bad, [(f"U+{cp:04X}", ours.tokenize(f"a{chr(cp)}b")[0].tolist()) for cp in bad[:10]]


def test_the_tokens_that_used_to_differ(ours, reference):
    texts = [
        "오늘 저녁에는 김치찌개를 먹을 거예요",  # Hangul: syllables to jamo
        "मुझे सुबह की चाय के साथ बिस्कुट पसंद हैं",  # Devanagari: spacing vowel signs kept
        "[CLS] hello [SEP] and [MASK]",  # special tokens' text
        "x" * 101,  # longer than WordPiece's 100 characters: [UNK]
        "x" * 100,
        "naïve café, Ünïcödé — İstanbul ΟΔΟΣ",
        "汉字漢字テスト",
        "\u00ad\u200b\ufeff soft hyphen, zero width, BOM",
    ]
    for text in texts:
        assert ours.tokenize(text)[0].tolist() == reference(text)["input_ids"], text
    assert ours.tokenize("x" * 101)[0].tolist() == [CLS, UNK, SEP]


def test_special_tokens_are_parsed_unless_told_not_to(minilm_path, ours):
    assert ours.parse_special
    assert ours.tokenize("[CLS] hi [SEP]")[0].tolist() == [CLS, CLS, 7632, SEP, SEP]
    plain = llamabatch.Embedder(minilm_path, parse_special=False)
    assert not plain.parse_special
    ids = plain.tokenize("[SEP]")[0].tolist()
    assert ids[0] == CLS and ids[-1] == SEP and SEP not in ids[1:-1] and len(ids) > 3


# ---------------------------------------------------------------- fuzzing


def chars(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.characters(min_codepoint=lo, max_codepoint=hi, blacklist_categories=("Cs",))


ANY = st.characters(blacklist_categories=("Cs",))
SCRIPTS = st.one_of(
    chars(0x20, 0x7E), chars(0xA0, 0x24F), chars(0x370, 0x3FF), chars(0x400, 0x4FF), chars(0x590, 0x6FF),
    chars(0x900, 0xDFF), chars(0xE00, 0xEFF), chars(0x10A0, 0x10FF), chars(0x1100, 0x11FF), chars(0x1E00, 0x1FFF),
    chars(0x2000, 0x2BFF), chars(0x3000, 0x30FF), chars(0x3400, 0x4DBF), chars(0x4E00, 0x9FFF),
    chars(0xAC00, 0xD7A3), chars(0xF900, 0xFFFF), chars(0x10000, 0x1FFFF), chars(0x20000, 0x3134F),
)
MARKS = st.one_of(chars(0x300, 0x36F), chars(0x1AB0, 0x1AFF), chars(0x1DC0, 0x1DFF), chars(0x20D0, 0x20FF),
                  chars(0x93A, 0x94F), chars(0xE31, 0xE4E), chars(0x1D165, 0x1D1AD))
EMOJI = st.one_of(chars(0x1F300, 0x1FAFF), st.sampled_from(["\u200d", "\ufe0f", "\U0001F3FD", "\U0001F1EF\U0001F1F5"]))
CONTROL = st.one_of(chars(0x0, 0x1F), chars(0x7F, 0x9F), st.sampled_from(["\u200b", "\u200e", "\u2028", "\ufffd", "\ufeff"]))
SPACE = st.sampled_from([" ", "  ", "\t", "\n", "\r\n", "\u3000", "\u00a0", " \t \n "])
SPECIAL = st.sampled_from(["[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]", "[cls]", "[SEP", "[[SEP]]", "##", "▁"])
LETTERS = st.characters(whitelist_categories=("Ll", "Lu", "Lo", "Mn", "Nd"), blacklist_categories=("Cs",))

FRAGMENT = st.one_of(
    st.text(ANY, max_size=12),
    st.text(SCRIPTS, min_size=1, max_size=12),
    st.text(SCRIPTS, max_size=4).flatmap(lambda base: st.text(MARKS, min_size=1, max_size=4).map(lambda m: base + m)),
    st.text(chars(0xAC00, 0xD7A3) | chars(0x1100, 0x11FF) | chars(0x3130, 0x318F), min_size=1, max_size=8),
    st.text(chars(0x4E00, 0x9FFF) | chars(0x3040, 0x30FF), min_size=1, max_size=8),
    st.lists(EMOJI, min_size=1, max_size=6).map("".join),
    st.text(CONTROL, min_size=1, max_size=3),
    st.text(LETTERS, min_size=90, max_size=130),  # around WordPiece's 100-character limit
    st.text(chars(0x61, 0x7A), min_size=95, max_size=105),
    SPECIAL,
    SPACE,
)
TEXTS = st.lists(FRAGMENT, max_size=8).map("".join)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS)
def test_fuzzed_texts_match_the_reference(ours, reference_backend, text):
    assert ours.tokenize(text)[0].tolist() == reference_ids(reference_backend, [text])[0]


# ---------------------------------------------------------------- a fixed multilingual corpus

DATA = Path(__file__).parent / "data"


def test_multilingual_corpus_ids_and_embeddings_equal_sentence_transformers(ours):
    """616 sentences in 42 languages (23 script families, code, URLs, numbers,
    emoji): the same token ids as sentence-transformers, and embeddings at
    cosine >= 0.9999 on every text, with no exceptions
    (tests/data/reference_corpus_minilm.* from scripts/make_reference_embeddings.py --corpus)."""
    corpus = json.loads((DATA / "multilingual_corpus.json").read_text(encoding="utf-8"))
    meta = json.loads((DATA / "reference_corpus_minilm.json").read_text(encoding="utf-8"))
    reference = np.load(DATA / "reference_corpus_minilm.npy")
    texts = [row["text"] for row in corpus]
    assert len(texts) == len(reference) == len(meta["token_ids"]) >= 500
    assert len({row["lang"] for row in corpus if row["family"] not in ("code", "url", "numbers", "emoji", "mixed")}) >= 30

    got = [t.tolist() for t in ours.tokenize(texts)]
    differ = [i for i, (g, w) in enumerate(zip(got, meta["token_ids"])) if g != w]
    assert not differ, [(i, texts[i]) for i in differ[:5]]

    cos = np.sum(ours.encode(texts) * reference, axis=1)
    worst = np.argsort(cos)[:5]
    assert cos.min() >= 0.9999, [(texts[i], float(cos[i])) for i in worst]


def test_the_committed_tables_are_the_generator_output():
    """csrc/llamabatch/bert_tables.inc is what scripts/gen_bert_tables.py reads
    off the pinned reference, not hand-edited (about 6 s)."""
    import subprocess
    import sys

    import tokenizers

    root = Path(__file__).resolve().parents[1]
    header = (root / "csrc" / "llamabatch" / "bert_tables.inc").read_text().splitlines()[0]
    if f"tokenizers {tokenizers.__version__}:" not in header:
        pytest.skip(f"the tables were generated with another tokenizers ({header}); "
                    "test_every_code_point_between_letters still checks them against this one")
    proc = subprocess.run([sys.executable, str(root / "scripts" / "gen_bert_tables.py"), "--check"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
