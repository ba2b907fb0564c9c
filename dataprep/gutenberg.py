"""Project Gutenberg plain text -> Markdown: boilerplate stripped, chapters detected, paragraphs joined."""

from __future__ import annotations

import re

from pydantic import BaseModel

START = re.compile(r"^\*{3}\s*START OF (?:THE|THIS) PROJECT GUTENBERG.*$", re.M | re.I)
END = re.compile(r"^\*{3}\s*END OF (?:THE|THIS) PROJECT GUTENBERG.*$", re.M | re.I)
# Older files close the text with a plain "End of the Project Gutenberg EBook of ..." line.
END_LINE = re.compile(r"^\s*End of (?:the |this )?Project Gutenberg.*$", re.M | re.I)
HEADER_FIELD = re.compile(r"^(Title|Author):\s*(.+)$", re.M)
# A paragraph of this kind is licence or production noise wherever it sits.
NOISE = re.compile(
    r"project gutenberg|gutenberg\.org|gutenberg-tm|^produced by|^\[illustration|^transcriber.s note"
    r"|^e-?text prepared by|^updated editions will replace",
    re.I,
)
# "CHAPTER I", "Chapter 1.", "STAVE III:  THE SECOND...", "CHAPTER XXXVIII—CONCLUSION".
CHAPTER = re.compile(r"^(?:CHAPTER|Chapter|STAVE|Stave)\s+([IVXLCDM]+|\d+)\b\.?\s*(?:[:.—–-]\s*)?(.*)$")
# Story collections: "XII. THE ADVENTURE OF THE COPPER BEECHES" (an upper-case title).
STORY = re.compile(r"^([IVXLC]+)\.\s+([^a-z]+)$")
# A numeral alone ("II.") divides a story into parts: a scene break, not a chapter.
PART = re.compile(r"^[IVXLC]+\.?$")
SCENE_BREAK = re.compile(r"^(?:[*·•.]\s*){3,}$|^[-—_=~]{3,}$")
DROP_LINE = re.compile(r"^(?:THE END\.?|FINIS\.?|VOLUME [IVX]+\.?|BOOK THE \w+\.?)$", re.I)
MIN_CHAPTER_WORDS = 40
# Headings inside the front matter: each starts a reference section of its own.
FRONT_HEADING = re.compile(
    r"^(?:PREFACE|CONTENTS|INTRODUCTION|DEDICATION|NOTE|NOTES|FOREWORD|ADVERTISEMENT|TO THE READER"
    r"|(?:LIST OF )?ILLUSTRATIONS|PREFACE TO THE \w+ EDITION)\.?$",
    re.I,
)


class Header(BaseModel):
    title: str = ""
    author: str = ""


def header_fields(text: str) -> Header:
    head = text[: START.search(text).start()] if START.search(text) else text[:3000]
    fields = {k.lower(): v.strip() for k, v in HEADER_FIELD.findall(head)}
    return Header(**fields)


def strip_boilerplate(text: str) -> str:
    """The text between the START and END markers, without licence or production notes."""
    text = text.replace("\r\n", "\n").replace("\ufeff", "")
    if m := START.search(text):
        text = text[m.end() :]
    if m := END.search(text):
        text = text[: m.start()]
    if m := END_LINE.search(text):
        text = text[: m.start()]
    return text


def paragraphs(text: str) -> list[list[str]]:
    """Blank-line separated paragraphs as lists of stripped lines, noise paragraphs dropped."""
    out: list[list[str]] = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in block.split("\n") if ln.strip()]
        if lines and not NOISE.search(" ".join(lines)):
            out.append(lines)
    return out


def _words(lines: list[str]) -> int:
    return sum(len(ln.split()) for ln in lines)


def _is_heading(p: list[str], pattern: re.Pattern) -> bool:
    if not pattern.match(p[0]):
        return False
    # Dickens puts long upper-case chapter summaries under the number; prose lines are mixed case.
    return (len(p) <= 3 and _words(p) <= 25) or (len(p) <= 6 and " ".join(p[1:]).isupper())


def _candidates(paras: list[list[str]], pattern: re.Pattern) -> list[int]:
    return [i for i, p in enumerate(paras) if _is_heading(p, pattern)]


def _drop_contents(paras: list[list[str]], found: list[int]) -> list[int]:
    """A table of contents is a run of headings with no text between: keep only headings with a body."""
    kept = []
    for n, i in enumerate(found):
        end = found[n + 1] if n + 1 < len(found) else len(paras)
        if sum(_words(p) for p in paras[i + 1 : end]) >= MIN_CHAPTER_WORDS:
            kept.append(i)
    return kept


def _title_like(p: list[str]) -> bool:
    text = " ".join(p)
    if PART.match(text) or len(p) > 3 or _words(p) > 15:
        return False
    return text.isupper() or not text.endswith((".", "!", "?", ",", ";", ":", '"', "”", "’"))


def _heading(paras: list[list[str]], i: int, pattern: re.Pattern) -> tuple[str, int]:
    """(title, paragraphs used) for the heading at i; the title may be on the next lines or paragraph."""
    m = pattern.match(paras[i][0])
    title = (m.group(2) if m and m.lastindex and m.lastindex >= 2 else "") or ""
    title = " ".join([title, *paras[i][1:]]).strip()
    used = 1
    if not title and i + 1 < len(paras) and _title_like(paras[i + 1]):
        title, used = " ".join(paras[i + 1]), 2
    return title.strip(" .:—-"), used


def _body(paras: list[list[str]]) -> list[str]:
    out = []
    for p in paras:
        joined = " ".join(p)
        if DROP_LINE.match(joined):
            continue
        out.append("* * *" if SCENE_BREAK.match(joined) or PART.match(joined) else joined)
    return out


def _front_matter(paras: list[list[str]]) -> list[str]:
    """Title page, contents, preface...: reference sections, split at their own headings."""
    parts: list[str] = []
    title, body = "Front Matter", []
    for p in paras:
        if len(p) == 1 and FRONT_HEADING.match(p[0]):
            if body:
                parts.append(f"# {title}\n\n" + "\n\n".join(_body(body)))
            title, body = p[0].strip(" .").title(), []
        else:
            body.append(p)
    if body:
        parts.append(f"# {title}\n\n" + "\n\n".join(_body(body)))
    return parts


def to_markdown(text: str, title: str) -> tuple[str, int]:
    """Markdown with `# Front Matter` and `# Chapter N: Title` sections, and the chapter count."""
    paras = paragraphs(strip_boilerplate(text))
    found: list[int] = []
    pattern = CHAPTER
    for pattern in (CHAPTER, STORY):
        found = _drop_contents(paras, _candidates(paras, pattern))
        if len(found) >= 2:
            break
    if len(found) < 2:
        # No chapter headings (an essay, a short piece): the whole text is one chapter.
        return f"# Chapter 1: {title}\n\n" + "\n\n".join(_body(paras)) + "\n", 1
    parts: list[str] = []
    parts.extend(_front_matter(paras[: found[0]]))
    for n, i in enumerate(found):
        end = found[n + 1] if n + 1 < len(found) else len(paras)
        heading, used = _heading(paras, i, pattern)
        label = f"# Chapter {n + 1}: {heading}" if heading else f"# Chapter {n + 1}"
        parts.append(label + "\n\n" + "\n\n".join(_body(paras[i + used : end])))
    return "\n\n".join(parts) + "\n", len(found)
