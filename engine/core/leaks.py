"""Prompt and template text that leaked into the prose: found with offsets, and cut.

The patterns follow what `prompts/*.j2` and the running summary put in front of the model (upper-case
field labels, bracket tags, word budgets) plus what chat models wrap around an answer. They are
case-aware on purpose: "SETTING:" anywhere or "Setting:" at a line start is a leak, while "the setting
sun" is prose. Chat filler only counts outside quoted speech, where a character may well say "Sure!".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from novelcraft.core.text import dialogue_spans

Category = Literal["label", "heading", "tag", "budget", "chat", "meta"]
# What strip_leaks removes for a hit: the whole line it is on, or only the matched text.
Scope = Literal["line", "span"]


@dataclass(frozen=True)
class LeakPattern:
    name: str
    category: Category
    regex: re.Pattern
    scope: Scope
    outside_dialogue: bool = False


class LeakHit(BaseModel):
    category: Category
    rule: str
    start: int
    end: int
    line: int
    text: str


class LeakReport(BaseModel):
    count: int
    per_1k_words: float
    by_category: dict[str, int]
    examples: list[LeakHit]


# The running summary's fields, the scene prompt's labels and the outline's: distinctive enough in
# upper case to be a leak anywhere in a line.
UPPER_LABELS = (
    "RUNNING SUMMARY",
    "SCENE END STATE",
    "EMOTIONAL BEAT",
    "IMMEDIATE TENSION",
    "GLOBAL EVENTS",
    "UNRESOLVED THREADS",
    "WORLD STATE",
    "ACTIVE CHARACTERS",
    "GLOBAL SHIFT",
    "GLOBAL STATE",
    "LOCAL MOMENTUM",
    "NOVEL PROGRESS",
    "SCENE GOAL",
    "WORLD CONTEXT",
    "STORY SO FAR",
    "NEW SCENE",
)
# Single upper-case words that are only a leak when a colon follows ("CHAPTER: The Lamp").
UPPER_COLON_LABELS = (
    "CHAPTER",
    "CHARACTERS",
    "SETTING",
    "SCENE",
    "STYLE",
    "PREMISE",
    "GOAL",
    "SUMMARY",
    "TITLE",
)
# Any case, but only at the start of a line and with a colon: "Setting: a lighthouse at dusk".
LINE_START_LABELS = tuple(label.lower() for label in UPPER_LABELS) + (
    "setting",
    "characters",
    "character",
    "chapter",
    "scene",
    "goal",
    "summary",
    "style",
    "premise",
    "title",
    "instruction",
    "note",
    "notes",
    "author's note",
    "word count",
    "pov",
    "point of view",
)
FIELD_NAMES = (
    "scene_end_state",
    "emotional_beat",
    "immediate_tension",
    "global_events",
    "unresolved_threads",
    "world_state",
    "active_characters",
    "global_shift",
    "target_words",
    "scene_words",
)
NUMBER_WORDS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|[0-9]+|(?-i:[IVXLC]+)"
# Markdown decoration a model puts around a label: "**Setting:**", "> Scene goal:", "## CHAPTER:".
LEAD = r"^[ \t>*_#-]*"


def _alternatives(items: tuple[str, ...], flexible_space: bool = False) -> str:
    parts = [re.escape(item) for item in sorted(items, key=len, reverse=True)]
    if flexible_space:
        parts = [p.replace(r"\ ", "[ _]") for p in parts]
    return "|".join(parts)


LEAK_PATTERNS: tuple[LeakPattern, ...] = (
    # --- labels -------------------------------------------------------------------------------
    LeakPattern("upper_label", "label", re.compile(rf"\b(?:{_alternatives(UPPER_LABELS, True)})\b"), "line"),
    LeakPattern(
        "upper_colon_label", "label", re.compile(rf"\b(?:{_alternatives(UPPER_COLON_LABELS)})[ \t]*:"), "line"
    ),
    LeakPattern(
        "line_start_label",
        "label",
        re.compile(rf"{LEAD}(?:{_alternatives(LINE_START_LABELS, True)})[*_]*[ \t]*:", re.I | re.M),
        "line",
    ),
    LeakPattern("field_name", "label", re.compile(rf"\b(?:{_alternatives(FIELD_NAMES)})\b", re.I), "line"),
    LeakPattern("json_line", "label", re.compile(r'^[ \t]*(?:[{}]|"\w+"[ \t]*:)[^\n]*$', re.M), "line"),
    # --- headings inside a scene ----------------------------------------------------------------
    LeakPattern("markdown_heading", "heading", re.compile(r"^[ \t]*#{1,6}[ \t]+\S[^\n]*$", re.M), "line"),
    LeakPattern(
        "bold_line", "heading", re.compile(r"^[ \t]*\*\*[^*\n]{1,80}\*\*[ \t]*:?[ \t]*$", re.M), "line"
    ),
    LeakPattern(
        "scene_number",
        "heading",
        re.compile(rf"{LEAD}scene[ \t]+(?:{NUMBER_WORDS})\b[ \t]*(?:[:.—–-]|$)", re.I | re.M),
        "line",
    ),
    LeakPattern(
        "chapter_title_line",
        "heading",
        re.compile(rf"{LEAD}chapter[ \t]+(?:{NUMBER_WORDS})\b[^\n]{{0,60}}$", re.I | re.M),
        "line",
    ),
    # --- bracket tags and special tokens --------------------------------------------------------
    LeakPattern(
        "begin_end_tag", "tag", re.compile(r"\[(?:BEGIN|END|START|STOP)\b[^\]\n]{0,60}\]", re.I), "span"
    ),
    LeakPattern(
        "section_tag",
        "tag",
        re.compile(r"\[(?:scene|chapter|act|part|summary)\b[^\]\n]{0,40}\]", re.I),
        "span",
    ),
    LeakPattern("upper_tag", "tag", re.compile(r"\[[A-Z][A-Z0-9 _\-]{2,40}\]"), "span"),
    LeakPattern("special_token", "tag", re.compile(r"<\|[^|>\n]{1,30}\|>|\[/?INST\]|</?s>"), "span"),
    LeakPattern(
        "xml_tag",
        "tag",
        re.compile(
            r"</?(?:scene|story|prose|text|summary|start_of_turn|end_of_turn|bos|eos)\b[^>\n]{0,30}>", re.I
        ),
        "span",
    ),
    # --- markup a model writes instead of prose (LaTeX, template braces) ----------------------------
    LeakPattern(
        "latex",
        "tag",
        re.compile(
            r"\\(?:documentclass|usepackage|begin|end|section|chapter|paragraph|author|title|maketitle"
            r"|textbf|textit|emph)\b"
        ),
        "line",
    ),
    LeakPattern("template_braces", "tag", re.compile(r"\{%|%\}|\{\{|\}\}"), "line"),
    # --- word budgets from the instructions -----------------------------------------------------
    LeakPattern(
        "word_budget",
        "budget",
        re.compile(
            r"\b(?:at most|at least|about|around|approximately|roughly|exactly|no more than|no fewer than"
            r"|up to|under|over|nearly|some)[ \t]+~?[0-9][0-9,]*[ \t]*(?:more[ \t]+)?(?:words?|tokens?)\b",
            re.I,
        ),
        "line",
    ),
    LeakPattern(
        "word_count",
        "budget",
        re.compile(r"\bword[ \t]+count\b|\(\s*~?[0-9][0-9,]*\s*words?\s*\)", re.I),
        "line",
    ),
    LeakPattern("n_word", "budget", re.compile(r"\b[0-9][0-9,]*-word\b", re.I), "line"),
    # --- chat filler, outside quoted speech -----------------------------------------------------
    LeakPattern(
        "assent",
        "chat",
        re.compile(
            r"^[ \t*_]*(?:sure|certainly|absolutely|of course|okay)[!,.][ \t]*(?:here|below|i|i'll|let)\b"
            r"|^[ \t*_]*(?:sure|certainly|absolutely)![ \t]*$",
            re.I | re.M,
        ),
        "line",
        True,
    ),
    LeakPattern(
        "here_is",
        "chat",
        re.compile(
            r"^[ \t*_]*here(?:[ \t]+is|'s|’s|[ \t]+are)[ \t]+(?:the|a|an|your|my)[ \t]+(?:[\w-]+[ \t]+){0,3}?"
            r"(?:scene|story|chapter|continuation|draft|summary|outline|rewrite|prose)\b",
            re.I | re.M,
        ),
        "line",
        True,
    ),
    LeakPattern(
        "assistant",
        "chat",
        re.compile(r"\bas an ai\b|\bas a (?:large )?language model\b|\bi(?:'m|’m| am) an ai\b", re.I),
        "line",
        True,
    ),
    LeakPattern(
        "hope_this",
        "chat",
        re.compile(
            r"\bi hope (?:this|that|you)\b[^.\n]{0,40}?\b(?:helps|enjoy|enjoyed|meets|fits|works|captures|like|liked)\b",
            re.I,
        ),
        "line",
        True,
    ),
    # --- narration about the story instead of the story (the prompt's own words echoed back) ------
    LeakPattern(
        "meta_narration",
        "meta",
        re.compile(
            r"\bThis is the (?:opening|first|beginning|final|last|next) (?:scene|chapter)\b"
            r"|\bThis is the (?:beginning|start|end) of (?:a|the) (?:story|novel|tale)\b"
            r"|\b(?:This|The) (?:scene|chapter) (?:is about|begins with|opens with|takes place|is set in|ends with)\b"
            r"|\bIn this (?:scene|chapter)\b"
            r"|\bThe story (?:begins|opens|starts) (?:with|in|where|when|on)\b"
        ),
        "line",
        True,
    ),
    LeakPattern(
        "offer",
        "chat",
        re.compile(
            r"\blet me know (?:if|what|whether|how)\b|\bi(?:'d|’d| would) be happy to\b|^[ \t*_]*feel free to\b"
            r"|\((?:note|author's note)[ \t]*:",
            re.I | re.M,
        ),
        "line",
        True,
    ),
)


def find_leaks(text: str, patterns: tuple[LeakPattern, ...] = LEAK_PATTERNS) -> list[LeakHit]:
    """Leak hits in text order; where two patterns match overlapping text the earlier, longer one wins."""
    speech = dialogue_spans(text) if any(p.outside_dialogue for p in patterns) else []
    found = []
    for pattern in patterns:
        for m in pattern.regex.finditer(text):
            if m.end() == m.start():
                continue
            if pattern.outside_dialogue and _inside(speech, m.start()):
                continue
            found.append((m.start(), -m.end(), pattern, m))
    hits: list[LeakHit] = []
    last_end = -1
    for start, neg_end, pattern, m in sorted(found, key=lambda f: (f[0], f[1])):
        if start < last_end:
            continue
        last_end = -neg_end
        hits.append(
            LeakHit(
                category=pattern.category,
                rule=pattern.name,
                start=start,
                end=-neg_end,
                line=text.count("\n", 0, start) + 1,
                text=m.group().strip(),
            )
        )
    return hits


def strip_leaks(text: str) -> tuple[str, list[LeakHit]]:
    """The text with leaked lines (and leaked inline tags) cut out, and the hits that were cut.

    Line-scoped hits remove the whole line they start on: a leaked label drags its value along
    ("SCENE GOAL: Mara finds the letter"), and half a line of instructions is not prose worth keeping.
    """
    hits = find_leaks(text)
    if not hits:
        return text, hits
    scope = {p.name: p.scope for p in LEAK_PATTERNS}
    cuts: list[tuple[int, int]] = []
    for hit in hits:
        if scope[hit.rule] == "line":
            line_start = text.rfind("\n", 0, hit.start) + 1
            line_end = text.find("\n", hit.end)
            cuts.append((line_start, len(text) if line_end < 0 else line_end + 1))
        else:
            cuts.append((hit.start, hit.end))
    pieces, position = [], 0
    for start, end in sorted(cuts):
        if start > position:
            pieces.append(text[position:start])
        position = max(position, end)
    pieces.append(text[position:])
    clean = re.sub(r"[ \t]+\n", "\n", "".join(pieces))
    clean = re.sub(r"\n{3,}", "\n\n", clean)
    clean = re.sub(r"[ \t]{2,}", " ", clean)
    return clean.strip(), hits


def leak_report(text: str, word_total: int, max_examples: int = 5) -> LeakReport:
    hits = find_leaks(text)
    by_category: dict[str, int] = {}
    for hit in hits:
        by_category[hit.category] = by_category.get(hit.category, 0) + 1
    return LeakReport(
        count=len(hits),
        per_1k_words=1000 * len(hits) / word_total if word_total else 0.0,
        by_category=by_category,
        examples=hits[:max_examples],
    )


def _inside(spans: list[tuple[int, int]], offset: int) -> bool:
    return any(s <= offset < e for s, e in spans)
