"""Stage 2b: cleaned Markdown -> sections, narrative chapters apart from reference matter."""

from __future__ import annotations

import re

from novelcraft.core.tokens import count_words
from novelcraft.dataprep.clean import PART
from novelcraft.dataprep.models import Section

# Part of the clean stage key, with clean.VERSION: bump it when section or reference rules change.
VERSION = 1

# Titles of matter that is about the book rather than the story.
REFERENCE = re.compile(
    r"\b(?:contents|etymology|extracts?|preface|foreword|introduction|transcriber|notes?|appendix|appendices"
    r"|glossary|dramatis personae|characters|persons of the|copyright|title ?page|dedication"
    r"|acknowledg\w*|about the author|index|footnotes|bibliography|colophon|illustrations|front matter"
    r"|back matter|untitled)\b",
    re.I,
)
# Reference matter kept in ref/ but never made into training scenes: lists and licences, not prose.
NOT_FOR_TRAINING = re.compile(
    r"\b(?:contents|copyright|title ?page|colophon|index|untitled|front matter|illustrations)\b", re.I
)
LICENCE = re.compile(r"project gutenberg|gutenberg\.org|all rights reserved", re.I)
MIN_WORDS = 5


def split_sections(markdown: str) -> list[Section]:
    sections: list[Section] = []
    title, lines = "Untitled", []

    def flush() -> None:
        body = "\n".join(lines).strip()
        if count_words(body) >= MIN_WORDS:
            # A numbered chapter is story whatever its title says ("Introduces Some Respectable Characters").
            numbered = re.match(r"chapter\s+\w+\b", title, re.I)
            kind = "reference" if REFERENCE.search(title) and not numbered else "chapter"
            sections.append(Section(title=title, kind=kind, text=body))

    for line in markdown.split("\n"):
        if line.startswith("# ") or line.strip() == PART:
            flush()
            title, lines = (line[2:].strip() if line.startswith("# ") else "Untitled"), []
        else:
            lines.append(line)
    flush()
    return sections


def for_training(section: Section) -> bool:
    """Narrative chapters always; reference prose too (it gets its own summary), lists and licences never."""
    if section.kind == "chapter":
        return True
    return not NOT_FOR_TRAINING.search(section.title) and not LICENCE.search(section.text)
