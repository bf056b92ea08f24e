"""Every relative link in README.md and docs/*.md resolves, and README stays short.

A link is an inline Markdown link or image, ``[text](target)`` or
``![alt](target)``, outside fenced code blocks and inline code. Web links
(http, https, mailto) are not checked. A file target must exist relative to the
file that links it; a ``#fragment`` must name a heading of the Markdown file it
points into, by GitHub's anchor rule.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 250
MIN_LINKS = 20

LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
EXTERNAL = ("http://", "https://", "mailto:")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) for each line outside fenced code blocks."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0]
        elif fence is not None and match and match.group(1)[0] == fence:
            fence = None
        elif fence is None:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation but hyphens and spaces dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for match in LINK.finditer(INLINE_CODE.sub("", line)):
            found.append((number, match.group(1)))
    return found


def check(path: Path, target: str) -> str | None:
    """None if the link resolves, else why not."""
    file_part, _, fragment = target.partition("#")
    dest = (path.parent / file_part).resolve() if file_part else path
    if not dest.exists():
        return "no such file"
    if fragment:
        if dest.suffix != ".md" or dest.is_dir():
            return "an anchor into a file that is not Markdown"
        if fragment.lower() not in anchors(dest):
            return f"no heading with anchor #{fragment} in {dest.relative_to(ROOT)}"
    return None


def test_every_relative_link_resolves() -> None:
    broken, checked = [], 0
    for path in markdown_files():
        for number, target in links(path):
            if target.startswith(EXTERNAL):
                continue
            checked += 1
            why = check(path, target)
            if why:
                broken.append(f"{path.relative_to(ROOT)}:{number}: ({target}): {why}")
    assert not broken, "broken links:\n" + "\n".join(broken)
    assert checked >= MIN_LINKS, f"only {checked} relative links found; the link pattern is broken"


def test_readme_is_short() -> None:
    n = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines, more than {README_MAX_LINES}: move details to docs/"
