"""Format checks: does an answer have the target format? Pure functions over the text.

A check is a regex, a line/stanza rule, a JSON schema, or a question for the judge. The first three are
decided here; a judge question needs a model, so `check_text` leaves it out and the caller asks the judge
(novelcraft.judges.answer) with `judge_rule` as what format_ok means.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from novelcraft.core.text import words


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # How the judge is told the format (what format_ok means); each kind has a default description.
    describe: str = ""


class RegexCheck(_Check):
    kind: Literal["regex"]
    pattern: str
    # search: the pattern occurs somewhere; full: the whole answer (stripped) matches it.
    match: Literal["search", "full"] = "search"
    ignore_case: bool = False
    # ^ and $ match at every line (verse rules are usually about lines).
    multiline: bool = True

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return v

    def compiled(self) -> re.Pattern[str]:
        flags = (re.IGNORECASE if self.ignore_case else 0) | (re.MULTILINE if self.multiline else 0)
        return re.compile(self.pattern, flags)

    def description(self) -> str:
        return (
            self.describe
            or f"the answer {'matches' if self.match == 'full' else 'contains'} /{self.pattern}/"
        )


class LinesCheck(_Check):
    """Lines are the non-blank lines; stanzas are blocks of them between blank lines."""

    kind: Literal["lines"]
    min_lines: int = Field(default=1, ge=1)
    max_lines: int | None = Field(default=None, ge=1)
    min_words_per_line: int = Field(default=1, ge=0)
    max_words_per_line: int | None = Field(default=None, ge=1)
    min_stanzas: int = Field(default=1, ge=1)
    max_stanzas: int | None = Field(default=None, ge=1)
    min_stanza_lines: int = Field(default=1, ge=1)
    max_stanza_lines: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _ranges(self) -> LinesCheck:
        for low, high in (
            ("min_lines", "max_lines"),
            ("min_words_per_line", "max_words_per_line"),
            ("min_stanzas", "max_stanzas"),
            ("min_stanza_lines", "max_stanza_lines"),
        ):
            if getattr(self, high) is not None and getattr(self, high) < getattr(self, low):
                raise ValueError(f"{high} is below {low}")
        return self

    def description(self) -> str:
        if self.describe:
            return self.describe
        lines = _range_text(self.min_lines, self.max_lines)
        per_line = f" of at most {self.max_words_per_line} words" if self.max_words_per_line else ""
        stanzas = _range_text(self.min_stanzas, self.max_stanzas)
        return f"verse: {lines} lines{per_line}, in {stanzas} stanza(s) separated by blank lines"


class JsonSchemaCheck(_Check):
    kind: Literal["json_schema"]
    json_schema: dict[str, Any]

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(v)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON schema: {exc.message}") from None
        return v

    def description(self) -> str:
        return self.describe or "the answer is one JSON value matching this schema: " + json.dumps(
            self.json_schema, sort_keys=True
        )


class JudgeCheck(_Check):
    kind: Literal["judge"]
    # A yes/no question about the answer, put to the judge as what format_ok means.
    question: str = Field(min_length=5)

    def description(self) -> str:
        return self.describe or self.question


FormatCheck = Annotated[RegexCheck | LinesCheck | JsonSchemaCheck | JudgeCheck, Field(discriminator="kind")]


class FormatVerdict(BaseModel):
    ok: bool
    reasons: list[str] = Field(default_factory=list)


def _range_text(low: int, high: int | None) -> str:
    if high is None:
        return f"at least {low}"
    return str(low) if low == high else f"{low}-{high}"


def stanzas(text: str) -> list[list[str]]:
    """Blocks of non-blank lines (stripped), split at blank lines."""
    blocks: list[list[str]] = [[]]
    for line in text.strip().splitlines():
        if line.strip():
            blocks[-1].append(line.strip())
        elif blocks[-1]:
            blocks.append([])
    return [b for b in blocks if b]


def lines_problems(text: str, rule: LinesCheck) -> list[str]:
    found = stanzas(text)
    lines = [line for block in found for line in block]
    problems = []
    if len(lines) < rule.min_lines or (rule.max_lines is not None and len(lines) > rule.max_lines):
        problems.append(f"{len(lines)} lines (want {_range_text(rule.min_lines, rule.max_lines)})")
    if len(found) < rule.min_stanzas or (rule.max_stanzas is not None and len(found) > rule.max_stanzas):
        problems.append(f"{len(found)} stanzas (want {_range_text(rule.min_stanzas, rule.max_stanzas)})")
    counts = [len(words(line)) for line in lines]
    if rule.max_words_per_line is not None and any(c > rule.max_words_per_line for c in counts):
        problems.append(f"a line of {max(counts)} words (max {rule.max_words_per_line})")
    if counts and min(counts) < rule.min_words_per_line:
        problems.append(f"a line of {min(counts)} words (min {rule.min_words_per_line})")
    sizes = [len(block) for block in found]
    if sizes and (
        min(sizes) < rule.min_stanza_lines
        or (rule.max_stanza_lines is not None and max(sizes) > rule.max_stanza_lines)
    ):
        want = _range_text(rule.min_stanza_lines, rule.max_stanza_lines)
        problems.append(f"stanzas of {min(sizes)}-{max(sizes)} lines (want {want})")
    return problems


def regex_problems(text: str, rule: RegexCheck) -> list[str]:
    pattern = rule.compiled()
    hit = pattern.fullmatch(text.strip()) if rule.match == "full" else pattern.search(text)
    return [] if hit else [f"does not {'match' if rule.match == 'full' else 'contain'} /{rule.pattern}/"]


def json_problems(text: str, rule: JsonSchemaCheck) -> list[str]:
    from jsonschema import Draft202012Validator

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return [f"not JSON: {exc.msg} at char {exc.pos}"]
    error = next(iter(Draft202012Validator(rule.json_schema).iter_errors(value)), None)
    if error is None:
        return []
    where = "/".join(map(str, error.absolute_path)) or "(root)"
    return [f"JSON at {where}: {error.message}"]


def check_text(text: str, checks: list[FormatCheck]) -> FormatVerdict:
    """Every check that needs no model; judge questions are the caller's (see judge_rule)."""
    problems: list[str] = []
    for rule in checks:
        if isinstance(rule, RegexCheck):
            problems += regex_problems(text, rule)
        elif isinstance(rule, LinesCheck):
            problems += lines_problems(text, rule)
        elif isinstance(rule, JsonSchemaCheck):
            problems += json_problems(text, rule)
    return FormatVerdict(ok=not problems, reasons=problems)


def needs_judge(checks: list[FormatCheck]) -> bool:
    return any(isinstance(rule, JudgeCheck) for rule in checks)


def judge_rule(checks: list[FormatCheck]) -> str:
    """What format_ok means, for the judge: every check's description, joined."""
    return "; ".join(rule.description() for rule in checks)
