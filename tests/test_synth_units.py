"""`dataprep generate`'s pure parts: format checks, duplicates, the mix, the spec, conversations, the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from novelcraft.backends.base import Completion
from novelcraft.core.errors import InputError
from novelcraft.dataprep.synth.cache import ResultCache
from novelcraft.dataprep.synth.conversations import read_conversations
from novelcraft.dataprep.synth.dedup import exact_duplicates, jaccard, near_duplicates, shingles
from novelcraft.dataprep.synth.filtering import filter_pairs
from novelcraft.dataprep.synth.formats import FormatCheck, check_text, judge_rule, needs_judge, stanzas
from novelcraft.dataprep.synth.mixing import mix
from novelcraft.dataprep.synth.records import Pair
from novelcraft.dataprep.synth.spec import load_spec
from novelcraft.dataprep.synth.teacher import answer_problem

REPO = Path(__file__).resolve().parent.parent
CHECK = TypeAdapter(FormatCheck)

VERSE = """The tide comes in, the tide goes out,
the moon is what it is about.

She pulls the water, near and far,
and leaves the sand beneath a star."""


def check(**kwargs) -> FormatCheck:
    return CHECK.validate_python(kwargs)


# format checks ---------------------------------------------------------------------------------------


def test_line_and_stanza_rule() -> None:
    rule = check(kind="lines", min_lines=4, max_lines=8, max_words_per_line=10, min_stanzas=2)
    assert [len(s) for s in stanzas(VERSE)] == [2, 2]
    assert check_text(VERSE, [rule]).ok
    prose = "The tide is caused by the moon's gravity pulling on the oceans of the earth as it turns."
    verdict = check_text(prose, [rule])
    assert not verdict.ok
    assert verdict.reasons == [
        "1 lines (want 4-8)",
        "1 stanzas (want at least 2)",
        "a line of 18 words (max 10)",
    ]
    too_long = check_text("\n".join(["short line here"] * 9), [rule])
    assert "9 lines (want 4-8)" in too_long.reasons


def test_stanza_size_rule() -> None:
    rule = check(kind="lines", min_stanza_lines=3, max_stanza_lines=4)
    assert check_text(VERSE, [rule]).reasons == ["stanzas of 2-2 lines (want 3-4)"]


def test_regex_rule_search_and_full() -> None:
    assert check_text(VERSE, [check(kind="regex", pattern=r"^the tide", ignore_case=True)]).ok
    assert not check_text(VERSE, [check(kind="regex", pattern=r"^moon")]).ok
    full = check(kind="regex", pattern=r"[A-Z][^\n]*(\n+[^\n]+)*")
    assert check_text(VERSE, [full]).ok
    assert check_text("no capital", [check(kind="regex", pattern=r"[A-Z].*", match="full")]).reasons == [
        "does not match /[A-Z].*/"
    ]


def test_json_schema_rule() -> None:
    rule = check(
        kind="json_schema",
        json_schema={
            "type": "object",
            "properties": {"verse": {"type": "string"}, "lines": {"type": "integer", "minimum": 4}},
            "required": ["verse", "lines"],
        },
    )
    assert check_text('{"verse": "a", "lines": 4}', [rule]).ok
    assert check_text('{"verse": "a", "lines": 2}', [rule]).reasons == [
        "JSON at lines: 2 is less than the minimum of 4"
    ]
    assert check_text("Sure! {", [rule]).reasons[0].startswith("not JSON: ")


def test_judge_question_is_left_to_the_judge() -> None:
    question = check(kind="judge", question="Does the answer rhyme?")
    lines = check(kind="lines", min_lines=4)
    assert check_text("one line", [question]).ok  # no model here: the judge decides
    assert needs_judge([lines, question]) and not needs_judge([lines])
    assert judge_rule([lines, question]) == (
        "verse: at least 4 lines, in at least 1 stanza(s) separated by blank lines; Does the answer rhyme?"
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"kind": "regex", "pattern": "("}, "not a valid regular expression"),
        ({"kind": "lines", "min_lines": 5, "max_lines": 2}, "max_lines is below min_lines"),
        ({"kind": "json_schema", "json_schema": {"type": "nonsense"}}, "not a valid JSON schema"),
        ({"kind": "haiku"}, "does not match any of the expected tags"),
    ],
)
def test_bad_format_checks_are_refused(bad: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CHECK.validate_python(bad)


# duplicates ------------------------------------------------------------------------------------------


def test_exact_duplicates_ignore_case_spacing_and_punctuation() -> None:
    texts = ["Why is the sky blue?", "why   is the SKY blue", "Why is grass green?"]
    assert exact_duplicates(texts) == {1: 0}


def test_near_duplicates_keep_the_first_and_spare_distinct_prompts() -> None:
    texts = [
        "Write a short poem about the sea at night under the stars",
        "Write a short poem about the sea at night under the stars, please",
        "Explain how a steam engine turns heat into motion",
        "Write a short poem about the sea at night under the bright stars",
        "Give me a recipe for a quick tomato soup with basil",
    ]
    dropped = near_duplicates(texts, 0.7)
    assert set(dropped) == {1, 3}
    assert all(original == 0 for original, _ in dropped.values())
    assert all(similarity >= 0.7 for _, similarity in dropped.values())
    assert round(jaccard(shingles(texts[0]), shingles(texts[1])), 3) == dropped[1][1]


def test_near_duplicates_find_every_pair_above_the_threshold() -> None:
    """MinHash only proposes candidates: what it finds must equal the exact all-pairs answer here."""
    texts = []
    for topic in ("sea", "bread", "stars"):
        words = [f"{topic}{k}" for k in range(30)]
        texts.append(" ".join(words))
        # One word changed: Jaccard 25/31 = 0.81 with the original, 22/34 = 0.65 between two variants.
        texts += [" ".join([*words[:i], f"other{i}", *words[i + 1 :]]) for i in range(2, 28, 3)]
    threshold = 0.7
    dropped = near_duplicates(texts, threshold)
    kept: list[int] = []
    expected = set()
    for i, text in enumerate(texts):
        if any(jaccard(shingles(text), shingles(texts[j])) >= threshold for j in kept):
            expected.add(i)
        else:
            kept.append(i)
    assert len(expected) == 27 and set(dropped) == expected


def pair(pid: str, prompt: str, answer: str = VERSE, **kw) -> Pair:
    return Pair(
        id=pid,
        kind=kw.pop("kind", "format"),
        origin=kw.pop("origin", "teacher"),
        prompt=prompt,
        answer=answer,
        **kw,
    )


def test_filter_drops_bad_format_duplicates_and_orphaned_variants() -> None:
    lines = check(kind="lines", min_lines=4)
    pairs = [
        pair("a", "Tell me about the tides of the sea"),
        pair("b", "Tell me about the tides of the sea!", answer=VERSE + "\nagain"),  # same prompt
        pair("c", "How do I bake bread at home?", answer="Just prose, one line."),  # not verse
        pair("d", "What is the moon made of?", answer=VERSE),  # same answer as a
        pair(
            "e",
            "How do I bake bread at home? Keep it brief.",
            origin="short",
            parent="c",
            answer=VERSE + "\nx",
        ),
        pair(
            "f", "Tell me about the tides of the sea", origin="rewrite", answer=VERSE + "\ny"
        ),  # other origin
        pair(
            "g",
            "Tell me about the tides of the sea",
            kind="plain",
            origin="real",
            answer="Prose is fine here.",
        ),
    ]
    kept, rejected = filter_pairs(pairs, [lines], 0.7)
    assert [p.id for p in kept] == ["a", "f", "g"]
    why = {r.pair.id: (r.category, r.reasons[0]) for r in rejected}
    assert why == {
        "b": ("duplicate prompt", "same prompt as a"),
        "c": ("format", "1 lines (want at least 4)"),
        "d": ("duplicate answer", "same answer as a"),
        "e": ("parent filtered out", "its parent c was filtered out"),
    }


# the mix ---------------------------------------------------------------------------------------------


def pairs_of(kind: str, n: int) -> list[Pair]:
    return [pair(f"{kind}{i}", f"prompt {kind} {i}", kind=kind, origin="teacher") for i in range(n)]


def test_mix_samples_plain_pairs_to_the_share() -> None:
    mixed, report = mix(pairs_of("format", 80) + pairs_of("plain", 50), 0.8, seed=3)
    assert (report.format_used, report.plain_used, report.share, report.short_of_plain) == (
        80,
        20,
        0.8,
        False,
    )
    assert sum(p.kind == "format" for p in mixed) == 80 and len(mixed) == 100
    again, _ = mix(pairs_of("plain", 50) + pairs_of("format", 80), 0.8, seed=3)
    assert {p.id for p in again} == {p.id for p in mixed}  # the sample does not depend on list order
    other, _ = mix(pairs_of("format", 80) + pairs_of("plain", 50), 0.8, seed=4)
    assert {p.id for p in other} != {p.id for p in mixed}


def test_mix_short_of_plain_keeps_them_all_and_says_so() -> None:
    mixed, report = mix(pairs_of("format", 90) + pairs_of("plain", 4), 0.8, seed=0)
    assert len(mixed) == 94 and report.short_of_plain and report.share == round(90 / 94, 4)


def test_mix_cap_keeps_the_share() -> None:
    mixed, report = mix(pairs_of("format", 90) + pairs_of("plain", 40), 0.75, seed=0, max_pairs=40)
    assert (report.format_used, report.plain_used, len(mixed)) == (30, 10, 40)
    only_format, report = mix(pairs_of("format", 10) + pairs_of("plain", 10), 1.0, seed=0)
    assert len(only_format) == 10 and report.plain_used == 0


# the spec --------------------------------------------------------------------------------------------

MINIMAL = """
format:
  system_prompt: Answer in rhymed verse, four lines or more.
  check: {kind: lines, min_lines: 4}
prompts:
  topics: [the sea]
  count: 4
"""


def write(tmp: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_spec_loads() -> None:
    loaded = load_spec(REPO / "dataprep" / "specs" / "verse.yaml")
    spec = loaded.spec
    assert spec.prompts.count == 60 and spec.format.check[0].kind == "lines"
    assert spec.refine.rewrite is not None and spec.refine.rewrite.path.exists()
    exchanges, skipped = read_conversations(spec.refine.rewrite.path)
    assert len(exchanges) == 10 and skipped == 0
    assert loaded.seed_prompts[:1] == ["Why is the sky blue?"]


def test_unknown_key_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "promts: {count: 3}\n")
    with pytest.raises(InputError) as exc:
        load_spec(path)
    assert exc.value.lines == [f"{path}: field 'promts': unknown key"]


def test_bad_teacher_setting_names_the_spec(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "teacher: {temprature: 0.5}\n")
    with pytest.raises(InputError) as exc:
        load_spec(path)
    assert exc.value.lines == [f"{path}: teacher: unknown setting 'temprature'"]


def test_missing_key_variable_is_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("VERSE_TEACHER_KEY", raising=False)
    path = write(tmp_path, MINIMAL + "teacher: {backend: openai, openai: {api_key_env: VERSE_TEACHER_KEY}}\n")
    with pytest.raises(InputError) as exc:
        load_spec(path)
    assert exc.value.lines == [
        f"{path}: field 'teacher.openai.api_key_env': environment variable VERSE_TEACHER_KEY is not set"
    ]
    monkeypatch.setenv("VERSE_TEACHER_KEY", "sk-test")
    assert load_spec(path).spec.teacher["backend"] == "openai"
    assert load_spec(path, for_teacher=False)  # the arena reads only the format: no key needed


def test_spec_needs_prompts_and_existing_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="give topics, seed_prompts or seed_prompts_file"):
        load_spec(write(tmp_path, "format: {system_prompt: Answer in verse please.}\nprompts: {count: 3}\n"))
    with pytest.raises(InputError, match=r"field 'refine.rewrite.path': .*nope.jsonl not found"):
        load_spec(write(tmp_path, MINIMAL + "refine: {rewrite: {path: nope.jsonl}}\n"))


def test_seed_prompts_file_is_relative_to_the_spec(tmp_path: Path) -> None:
    (tmp_path / "seeds.jsonl").write_text(
        '{"prompt": "Why is the sea salty?"}\n\n{"prompt": "What is rain?"}\n'
    )
    loaded = load_spec(
        write(tmp_path, MINIMAL.replace("count: 4", "count: 4\n  seed_prompts_file: seeds.jsonl"))
    )
    assert loaded.seed_prompts == ["Why is the sea salty?", "What is rain?"]
    (tmp_path / "seeds.jsonl").write_text('{"text": "no prompt key"}\n')
    with pytest.raises(InputError, match=r"seeds.jsonl:1: expected a JSON object with a \"prompt\" string"):
        load_spec(tmp_path / "spec.yaml")


# conversations, the cache, answer checks -------------------------------------------------------------


def test_conversations_take_the_first_exchange(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    rows = [
        {
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "Q1"},
                {"role": "assistant", "content": "A1"},
            ]
        },
        {"prompt": "Q2", "response": "A2"},
        {"messages": [{"role": "user", "content": "only a question"}]},
        {
            "messages": [
                {"role": "user", "content": "Q4"},
                {"role": "assistant", "content": "A4"},
                {"role": "user", "content": "more"},
            ]
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    exchanges, skipped = read_conversations(path)
    assert [(e.line, e.prompt, e.answer) for e in exchanges] == [
        (1, "Q1", "A1"),
        (2, "Q2", "A2"),
        (4, "Q4", "A4"),
    ]
    assert skipped == 1
    assert len(read_conversations(path, limit=2)[0]) == 2
    path.write_text('{"prompt": "Q"}\nnot json\n')
    with pytest.raises(InputError, match=r"c.jsonl:2: not valid JSON"):
        read_conversations(path)


def test_cache_survives_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "answers.jsonl"
    cache = ResultCache(path)
    cache.put("k1", {"text": "one"})
    cache.put("k2", {"text": "two"})
    with path.open("a") as fh:
        fh.write('{"key": "k3", "value": {"te')  # killed mid-write
    reopened = ResultCache(path)
    assert len(reopened) == 2 and "k3" not in reopened
    reopened.put("k3", {"text": "three"})
    assert ResultCache(path).get("k3") == {"text": "three"}


@pytest.mark.parametrize(
    ("completion", "problem"),
    [
        (Completion(text="  \n"), "empty answer"),
        (Completion(text="The tide comes in and", finish_reason="length"), "answer cut off at max_tokens"),
        (Completion(text="A verse.<|im_end|>\n<|im_start|>user"), "chat-template tokens in the answer"),
        (Completion(text=VERSE), None),
    ],
)
def test_answer_problems(completion: Completion, problem: str | None) -> None:
    assert answer_problem(completion) == problem
