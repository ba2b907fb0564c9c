"""Stage 2a: Markdown noise out (HTML, anchors, links, images, footnotes, page numbers); headings normalised."""

from __future__ import annotations

import re

PART = "<!--part-->"
# Part of the clean stage key, with split.VERSION: bump it when cleaning rules change.
VERSION = 1
# pandoc marks the start of every EPUB content document with an empty anchor named after the file.
_FILE_ANCHOR = re.compile(r'^\s*<span id="[^"]+\.x?html?"></span>\s*$', re.M)
_COMMENT = re.compile(r"<!--(?!part-->).*?-->", re.S)
_TAG = re.compile(r"</?[a-zA-Z][^>\n]*>")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]^][^\]]*)\]\([^)]*\)")
_REF_LINK = re.compile(r"\[([^\]^][^\]]*)\]\[[^\]]*\]")
_FOOTNOTE_DEF = re.compile(r"^\[\^[^\]]+\]:.*(?:\n(?: {4}|\t).*)*$", re.M)
_FOOTNOTE_REF = re.compile(r"\[\^[^\]]+\]")
_ATTRS = re.compile(r"\{[#.][^}\n]*\}")
_ESCAPE = re.compile(r"\\([\[\]#.!\-$'\"()&|<>{}])")
# A line that is only a number is a page number; roman numerals must be one case ("xii", not "Civil").
_PAGE_NUMBER = re.compile(r"^\s*(?:\[?(?:[Pp]\.|[Pp]age)?\s*\d{1,4}\]?|[ivxlc]{1,6}|[IVXLC]{1,6})\s*$", re.M)
_BREAK = re.compile(r"^\s*(?:(?:[-*_]\s*){3,}|(?:[·•]\s*){3,})\s*$", re.M)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.M)
CHAPTER_TITLE = re.compile(r"^(?:chapter|stave)\s+(\d+|[ivxlcdm]+)\b[.:]?\s*(.*)$", re.I)


def normalise_heading(title: str) -> str:
    title = re.sub(r"\s+", " ", title).strip()
    if m := CHAPTER_TITLE.match(title):
        rest = m.group(2).strip(" .:—-")
        return f"Chapter {m.group(1)}: {rest}" if rest else f"Chapter {m.group(1)}"
    return title.strip(" .:") or "Untitled"


def _section_level(text: str) -> int:
    """The heading level chapters sit at: some EPUBs put them at h2 under a part or book title."""
    levels = [len(h) for h, t in _HEADING.findall(text) if CHAPTER_TITLE.match(_strip_inline(t))]
    return min(levels) if levels else 1


def _strip_inline(text: str) -> str:
    text = _TAG.sub("", text)
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _REF_LINK.sub(r"\1", text)
    text = _FOOTNOTE_REF.sub("", text)
    text = _ATTRS.sub("", text)
    return _ESCAPE.sub(r"\1", text).strip()


def clean_markdown(markdown: str) -> str:
    text = markdown.replace("\r\n", "\n")
    text = _FILE_ANCHOR.sub("\n" + PART + "\n", text)
    text = _COMMENT.sub("", text)
    text = _FOOTNOTE_DEF.sub("", text)
    level = _section_level(text)

    def heading(m: re.Match) -> str:
        title = _strip_inline(m.group(2))
        if len(m.group(1)) <= level:
            return f"# {normalise_heading(title)}"
        # A sub-heading inside a chapter is kept as a line of text, not a section of its own.
        return title

    text = _HEADING.sub(heading, text)
    lines = [_strip_inline(ln) if not ln.startswith("# ") else ln for ln in text.split("\n")]
    text = "\n".join(lines)
    text = _PAGE_NUMBER.sub("", text)
    text = _BREAK.sub("* * *", text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"
