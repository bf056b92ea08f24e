"""Generate csrc/llamabatch/bert_tables.inc: the character tables of BERT's
text rules, exactly as the reference tokenizer applies them.

The reference is Hugging Face ``tokenizers`` (the Rust tokenizer that
sentence-transformers loads from ``tokenizer.json``): its ``BertNormalizer``
and ``BertPreTokenizer``. No single Unicode version reproduces it, because its
steps come from different Unicode data:

- control characters (Cc/Cf/Co), nonspacing marks (Mn) and punctuation (P*):
  the ``unicode_categories`` crate, Unicode 8.0.0;
- NFD (canonical decompositions and combining classes): the
  ``unicode-normalization-alignments`` crate, Unicode 9.0-12.1 (no
  decomposition changed between those; U+11938, decomposed from 13.0 on, is not);
- lowercase and whitespace: Rust's ``char``, Unicode 16.0.

So the tables are read off the reference itself, one code point at a time,
one step at a time (its ``BertNormalizer`` with one option on at a time,
``NFD``, ``Lowercase``, ``BertPreTokenizer``), and combining classes
are found by how its NFD orders marks. Run with the pinned ``tokenizers``::

    python scripts/gen_bert_tables.py            # rewrite the .inc file
    python scripts/gen_bert_tables.py --check    # exit 1 if it differs

tests/test_wordpiece.py checks every code point against the reference, so a
different ``tokenizers`` whose rules moved shows up there.
"""
from __future__ import annotations

import argparse
import sys
import unicodedata
from pathlib import Path

import tokenizers
from tokenizers import normalizers, pre_tokenizers

OUT = Path(__file__).resolve().parents[1] / "csrc" / "llamabatch" / "bert_tables.inc"
MAX_CP = 0x110000

# Classes of the cleaning step (BertNormalizer clean_text + handle_chinese_chars).
KEEP, DROP, SPACE, CJK = 0, 1, 2, 3
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3


def code_points():
    for cp in range(MAX_CP):
        if not 0xD800 <= cp <= 0xDFFF:
            yield cp


def clean_class(clean, cp: int) -> int:
    c = chr(cp)
    out = clean.normalize_str(c)
    if out == c:
        return KEEP
    if out == "":
        return DROP
    if out == " ":
        return SPACE
    if out == f" {c} ":
        return CJK
    raise SystemExit(f"unexpected cleaning of U+{cp:04X}: {out!r}")


def ranges(classes: dict[int, int]) -> list[tuple[int, int]]:
    """(start, class) at every change of class, from 0 (surrogates take KEEP)."""
    out: list[tuple[int, int]] = []
    for cp in range(MAX_CP):
        k = classes.get(cp, KEEP)
        if not out or out[-1][1] != k:
            out.append((cp, k))
    return out


def intervals(members: set[int]) -> list[tuple[int, int]]:
    """Inclusive [lo, hi] runs of a set of code points."""
    out: list[tuple[int, int]] = []
    for cp in sorted(members):
        if out and out[-1][1] == cp - 1:
            out[-1] = (out[-1][0], cp)
        else:
            out.append((cp, cp))
    return out


def combining_classes(nfd) -> dict[int, int]:
    """Combining classes above 0 that the reference's NFD knows.  A class never
    changes once assigned (Unicode's stability policy), so each is Python's
    value, kept only where the reference orders the mark by it: a mark of class
    k > 1 moves in front of a preceding U+0334 (class 1); one of class 1 moves
    in front of a preceding U+0301 (class 230)."""
    out: dict[int, int] = {}
    for cp in code_points():
        c = chr(cp)
        k = unicodedata.combining(c)
        if not k or nfd.normalize_str(c) != c:
            continue  # class 0, or decomposes (its parts carry the classes)
        before = "\u0334" if k > 1 else "\u0301"
        if nfd.normalize_str(c + before) == before + c:
            out[cp] = k
    return out


def lookup_table(name: str, mapping: dict[int, str]) -> str:
    pool: list[int] = []
    rows = []
    for cp in sorted(mapping):
        s = [ord(x) for x in mapping[cp]]
        rows.append(f"{{0x{cp:X}, {len(pool)}, {len(s)}}}")
        pool.extend(s)
    body = ",\n    ".join(", ".join(rows[i:i + 6]) for i in range(0, len(rows), 6))
    pool_body = ",\n    ".join(", ".join(f"0x{x:X}" for x in pool[i:i + 10]) for i in range(0, len(pool), 10))
    return (f"constexpr CharMapping k{name}[] = {{\n    {body}}};\n"
            f"constexpr char32_t k{name}Pool[] = {{\n    {pool_body}}};\n")


def pairs_table(name: str, rows: list[tuple[int, int]]) -> str:
    body = ",\n    ".join(", ".join(f"{{0x{a:X}, {b}}}" if name.endswith("Classes") else f"{{0x{a:X}, 0x{b:X}}}"
                                     for a, b in rows[i:i + 6]) for i in range(0, len(rows), 6))
    return f"constexpr CodeRange k{name}[] = {{\n    {body}}};\n"


def generate() -> str:
    clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                       lowercase=False)
    # BertNormalizer strips nonspacing marks only (the StripAccents normalizer strips all marks).
    strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True,
                                       lowercase=False)
    nfd, lower = normalizers.NFD(), normalizers.Lowercase()
    pre = pre_tokenizers.BertPreTokenizer()

    classes: dict[int, int] = {}
    decompositions: dict[int, str] = {}
    lowercase: dict[int, str] = {}
    marks: set[int] = set()
    spaces: set[int] = set()
    punctuation: set[int] = set()
    for cp in code_points():
        c = chr(cp)
        k = clean_class(clean, cp)
        if k != KEEP:
            classes[cp] = k
        d = nfd.normalize_str(c)
        if d != c:
            # Hangul syllables decompose by formula in the C++; check the formula here.
            if HANGUL_FIRST <= cp <= HANGUL_LAST:
                if d != unicodedata.normalize("NFD", c):
                    raise SystemExit(f"Hangul U+{cp:04X} does not decompose by the formula")
            else:
                decompositions[cp] = d
        if d == c and strip.normalize_str(c) == "":
            marks.add(cp)
        low = lower.normalize_str(c)
        if low != c:
            lowercase[cp] = low
        words = [w for w, _ in pre.pre_tokenize_str(f"a{c}b")]
        if words == ["a", "b"]:
            spaces.add(cp)
        elif words == ["a", c, "b"]:
            punctuation.add(cp)
        elif words != [f"a{c}b"]:
            raise SystemExit(f"unexpected pre-tokenization of U+{cp:04X}: {words!r}")
    ccc = combining_classes(nfd)

    parts = [
        f"// Generated by scripts/gen_bert_tables.py from tokenizers {tokenizers.__version__}: do not edit.\n"
        "// BERT's text rules as the reference tokenizer applies them, one code point at a time.\n",
        "// Cleaning: (first code point, class) at each change; 0 keep, 1 drop, 2 space, 3 CJK (padded).\n",
        pairs_table("CleanClasses", ranges(classes)),
        "// Canonical decompositions (full), Hangul syllables excepted (by formula).\n",
        lookup_table("Decompositions", decompositions),
        "// Canonical combining classes above 0, as the reference's NFD orders marks.\n",
        pairs_table("CombiningClasses", sorted(ccc.items())),
        "// Nonspacing marks that stripping accents removes (inclusive ranges).\n",
        pairs_table("StrippedMarks", intervals(marks)),
        "// Lowercase mappings (one code point to one or more).\n",
        lookup_table("Lowercase", lowercase),
        "// Pre-tokenizer: whitespace that splits words, and punctuation that stands alone (inclusive ranges).\n",
        pairs_table("Whitespace", intervals(spaces)),
        pairs_table("Punctuation", intervals(punctuation)),
    ]
    return "\n".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the committed file instead of writing it")
    args = ap.parse_args()
    text = generate()
    if args.check:
        same = OUT.is_file() and OUT.read_text() == text
        print(f"{OUT.name}: {'up to date' if same else 'differs from the generator output'}")
        return 0 if same else 1
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(text):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
