"""Forms that take YAML (a seed, an edited outline): every problem the engine reports is placed next
to the line of the field it names, and the ones with no line (a required field that is missing) go
above the text.

The engine's lines name their field ("field 'characters.0.name': required", "outline: field
'acts.0.chapters.1.title': ...", "YAML syntax error at line 3, column 5: ..."); the field's line comes
from the YAML node tree (yaml.compose keeps every node's position), so nesting of any depth is found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from novelcraft.core.seedfile import SeedError

# Shown beside the empty new-story form: the fields of a seed file, as the README lists them.
EXAMPLE_SEED = """\
title: The Last Ferry
genre: quiet drama
premise: >-
  Two estranged brothers meet on the last ferry of the season and must decide
  whether to sell the family island.
characters:
  - name: Ewan
    description: the elder brother, a lawyer in Glasgow
  - name: Callum
    description: the younger, who never left the island
style: Spare, close third person; the sea in every scene.
pov: third
target_words: 1500
scenes: 3
scene_words: 500
seed: 3
"""

_SOURCE = r"(?:[\w.\-/ ]+: )?"  # "seed: ", "outline: " before the problem
_FIELD = re.compile(rf"^{_SOURCE}fields? '([^']+)'(?:, '[^']+')*: (.*)$")
_YAML_AT = re.compile(rf"^{_SOURCE}YAML syntax error at line (\d+), column \d+: ")


@dataclass(frozen=True)
class Problem:
    message: str
    field: str | None = None  # dotted path, as pydantic names it
    line: int | None = None  # 1-based line of the submitted text it belongs to


# A long text (an outline of 40 scenes) is shown only around its problems, this many lines each side.
SHOWN_WHOLE_UP_TO = 40
CONTEXT_LINES = 3


@dataclass
class Line:
    number: int
    text: str
    problems: list[Problem] = field(default_factory=list)
    gap_before: bool = False  # lines were left out before this one


def decode_upload(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SeedError(f"not UTF-8 (byte {exc.start})") from None


def problems_of(lines: list[str], text: str, *, front_matter: bool = False) -> list[Problem]:
    """Each error line with the field it names and the line of `text` where that field is written.
    `front_matter`: a seed, whose leading `---` opens Markdown front matter (its YAML errors count
    lines from inside it)."""
    offset = _yaml_part(text, front_matter)[1]
    out = []
    for line in lines:
        if m := _YAML_AT.match(line):
            out.append(Problem(line, None, int(m.group(1)) + offset))
        elif m := _FIELD.match(line):
            path = m.group(1)
            out.append(
                Problem(m.group(2), path, field_line(text, path.split("."), front_matter=front_matter))
            )
        else:
            out.append(Problem(line))
    return out


def _yaml_part(text: str, front_matter: bool) -> tuple[str, int]:
    """The YAML of a text and how many lines come before it (a Markdown seed's front matter)."""
    lines = text.splitlines()
    if front_matter and lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), len(lines))
        return "\n".join(lines[1:end]), 1
    return text, 0


def field_line(text: str, path: list[str], *, front_matter: bool = False) -> int | None:
    """The 1-based line where the dotted field is written, or of its nearest parent that is; None when
    not even its top-level key is there (a missing required field)."""
    source, offset = _yaml_part(text, front_matter)
    try:
        node = yaml.compose(source)
    except yaml.YAMLError:
        return None
    line = None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if found is None:
                break
            key, node = found
            line = key.start_mark.line + 1 + offset
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1 + offset
        else:
            break
    return line


def annotate(text: str, problems: list[Problem]) -> tuple[list[Problem], list[Line]]:
    """(problems with no line, the lines of the text with the problems that belong beside them): every
    line of a short text, the lines around the problems of a long one."""
    numbered = [Line(n, line) for n, line in enumerate(text.splitlines(), start=1)]
    loose = []
    for problem in problems:
        if problem.line is not None and numbered and problem.line >= 1:
            # A parser that ran off the end (an unclosed bracket) names the line after the last.
            numbered[min(problem.line, len(numbered)) - 1].problems.append(problem)
        else:
            loose.append(problem)
    if len(numbered) <= SHOWN_WHOLE_UP_TO:
        return loose, numbered
    near = {
        i
        for i, line in enumerate(numbered)
        if line.problems
        for i in range(i - CONTEXT_LINES, i + CONTEXT_LINES + 1)
    }
    shown = []
    for i, line in enumerate(numbered):
        if i in near:
            line.gap_before = line.number != (shown[-1].number if shown else 0) + 1
            shown.append(line)
    return loose, shown
