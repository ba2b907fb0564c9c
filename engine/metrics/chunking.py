"""Cutting a whole text into the scenes the per-scene metrics need: chapters, or fixed-size chunks."""

from __future__ import annotations

import re

from novelcraft.core.text import paragraphs, word_count

HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
CHAPTER_HEADING = re.compile(r"^chapter\b", re.I)
PLAIN_CHAPTER = re.compile(
    r"^(?:CHAPTER|Chapter|STAVE|Stave)\s+(?:[IVXLCDM]+|\d+|[Oo]ne|[Tt]wo|[Tt]hree|[Ff]our|[Ff]ive|ONE|TWO|THREE"
    r"|FOUR|FIVE)\b"
)


def markdown_sections(markdown: str) -> list[tuple[str, str]]:
    """(heading, body) for each `#` section; text before the first heading has the heading ""."""
    sections, heading, start = [], "", 0
    for m in HEADING.finditer(markdown):
        sections.append((heading, markdown[start : m.start()].strip()))
        heading, start = m.group(1), m.end()
    sections.append((heading, markdown[start:].strip()))
    return [(h, body) for h, body in sections if body]


def chapter_texts(text: str) -> list[str]:
    """Chapter bodies without their headings: the `# Chapter …` sections of Markdown (what
    dataprep.gutenberg.to_markdown writes), else the parts between plain-text heading paragraphs
    ("CHAPTER I.", "Chapter 12", "STAVE ONE"); front matter before the first chapter is not the
    novel's prose. A text with fewer than two chapter headings is returned whole, without `#` lines."""
    sections = markdown_sections(text)
    chapters = [body for heading, body in sections if CHAPTER_HEADING.match(heading)]
    if chapters:
        return chapters
    whole = "\n\n".join(body for _, body in sections)
    return _plain_chapters(whole) or [whole]


def _plain_chapters(text: str) -> list[str]:
    chapters: list[list[str]] = []
    for paragraph in paragraphs(text):
        if _is_plain_heading(paragraph):
            chapters.append([])
        elif chapters:
            chapters[-1].append(paragraph)
    if len(chapters) < 2:
        return []
    # A table of contents is a run of headings with nothing between them: those chapters are empty.
    return ["\n\n".join(body) for body in chapters if body]


def _is_plain_heading(paragraph: str) -> bool:
    # Dickens puts long upper-case summaries under the number; a prose paragraph is mixed case.
    return bool(PLAIN_CHAPTER.match(paragraph)) and (word_count(paragraph) <= 25 or paragraph.isupper())


def chunk_by_words(text: str, size: int = 800) -> list[str]:
    """Consecutive chunks of whole paragraphs, each closed at the paragraph that brings it to `size`
    words; a last chunk shorter than half of `size` joins the one before it."""
    chunks: list[list[str]] = []
    current: list[str] = []
    filled = 0
    for paragraph in paragraphs(text):
        current.append(paragraph)
        filled += word_count(paragraph)
        if filled >= size:
            chunks.append(current)
            current, filled = [], 0
    if current:
        if chunks and filled < size / 2:
            chunks[-1].extend(current)
        else:
            chunks.append(current)
    return ["\n\n".join(chunk) for chunk in chunks]


def excerpt(text: str, size: int, where: float = 0.5) -> str:
    """About `size` words of whole paragraphs centred at `where` (0 = start, 1 = end) of the text."""
    paras = paragraphs(text)
    counts = [word_count(p) for p in paras]
    total = sum(counts)
    if total <= size:
        return "\n\n".join(paras)
    first_word = int(max(0, min(total - size, where * total - size / 2)))
    seen, start = 0, 0
    for i, n in enumerate(counts):
        if seen + n > first_word:
            start = i
            break
        seen += n
    picked, filled = [], 0
    for p, n in zip(paras[start:], counts[start:], strict=True):
        picked.append(p)
        filled += n
        if filled >= size:
            break
    return "\n\n".join(picked)


def passages(text: str, words_per: int = 150, limit: int | None = None) -> list[str]:
    """Whole paragraphs gathered into passages of about `words_per` words (the first `limit` of them),
    each on one line: what a sentence embedder reads at once. Lines starting with # are comments or
    headings, not prose."""
    out: list[str] = []
    current: list[str] = []
    count = 0
    prose = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for paragraph in (" ".join(p.split()) for p in re.split(r"\n\s*\n", prose)):
        if not paragraph:
            continue
        current.append(paragraph)
        count += len(paragraph.split())
        if count >= words_per:
            out.append(" ".join(current))
            current, count = [], 0
            if limit is not None and len(out) == limit:
                return out
    if current and (limit is None or len(out) < limit):
        out.append(" ".join(current))
    return out
