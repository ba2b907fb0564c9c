"""`dataprep generate` end to end on fake teachers: every stage resumes, bad answers never reach the data,
the judge filters, and a bad spec or an unreachable teacher fails in one line before any call."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from novelcraft import dataprep
from novelcraft.backends.base import Completion
from novelcraft.backends.fake import FakeBackend, _rng, _sentence
from novelcraft.cli.main import app
from novelcraft.dataprep.options import GENERATE_STAGES
from novelcraft.dataprep.synth.run import Generator, model_settings
from novelcraft.dataprep.synth.spec import load_spec
from novelcraft.runtime.calls import BudgetExceeded
from novelcraft.train.data import read_chat_file

SPEC = """
name: test-verse
seed: 3
teacher: {max_attempts: 3}
format:
  system_prompt: You answer every request in rhymed verse, in stanzas.
  train_system_prompt: You answer in verse.
  check: {kind: lines, min_lines: 4, max_words_per_line: 14}
prompts:
  topics: [the sea, bread, owls]
  seed_prompts: ["Why is the sky blue?"]
  count: 10
  per_call: 3
refine:
  length_variants: {share: 0.5}
  rewrite: {path: conversations.jsonl, keep_original: true}
plain:
  count: 3
  topics: [geography]
filter: {near_duplicate: 0.7}
mix: {format_share: 0.8}
compile: {val_fraction: 0.2}
"""

CONVERSATIONS = [
    {"prompt": "What is the capital of France?", "response": "Paris, on the Seine."},
    {"prompt": "How many legs has a spider?", "response": "Eight."},
    {"prompt": "What is the biggest ocean?", "response": "The Pacific."},
]


class VerseTeacher(FakeBackend):
    """JSON as the fake backend writes it; text answers in verse under a verse system prompt, in prose
    otherwise; a prompt with POISON in it is always answered empty."""

    def complete(self, messages, sampling, *, json_schema=None, adapter=None):
        if json_schema is not None:
            return super().complete(messages, sampling, json_schema=json_schema, adapter=adapter)
        self.calls += 1
        self.history.append(
            {"messages": messages, "sampling": sampling, "json_schema": None, "adapter": adapter}
        )
        if "POISON" in messages[-1].content:
            return Completion(text="")
        rng = _rng([m.model_dump() for m in messages], sampling.seed)
        if "verse" in messages[0].content:
            stanzas = ["\n".join(_sentence(rng) for _ in range(4)) for _ in range(rng.randint(1, 2))]
            text = "\n\n".join(stanzas)
        else:
            text = " ".join(_sentence(rng) for _ in range(3))
        return Completion(text=text, tokens_in=10, tokens_out=len(text.split()))


@pytest.fixture
def spec_path(tmp_path: Path) -> Path:
    (tmp_path / "conversations.jsonl").write_text("".join(json.dumps(c) + "\n" for c in CONVERSATIONS))
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return path


def generate(out: Path, spec: Path, teacher, upto="compile", judge=None, **flags):
    """A run with the spec's own teacher and judge layers under `--backend fake` (+ flags); the judge
    backend answers for settings whose model is "judge" (the specs below set filter.judge.model)."""
    loaded = load_spec(spec)
    teacher_settings, judge_settings = model_settings(loaded, {"flags": {"backend": "fake", **flags}})

    def factory(settings):
        return judge if (judge is not None and settings.model == "judge") else teacher

    gen = Generator(out, loaded, teacher_settings, judge_settings, workers=2, backend_factory=factory)
    try:
        return gen.run(upto)
    finally:
        gen.close()


def calls_rows(out: Path) -> list[dict]:
    with sqlite3.connect(out / "calls.db") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("select * from calls order by id")]


def test_a_full_run_makes_a_trainable_corpus(tmp_path: Path, spec_path: Path) -> None:
    out = tmp_path / "out"
    result = generate(out, spec_path, VerseTeacher())
    by_stage = {s.stage: s for s in result.stages}
    assert list(by_stage) == list(GENERATE_STAGES)
    prompts = [json.loads(x) for x in (out / "prompts.jsonl").read_text().splitlines()]
    assert (
        sum(p["kind"] == "format" for p in prompts) == 10 and sum(p["kind"] == "plain" for p in prompts) == 3
    )
    assert prompts[0] == {**prompts[0], "prompt": "Why is the sky blue?", "source": "seed"}
    report = json.loads((out / "report.json").read_text())
    assert report["origins"]["rewrite"] == 3 and report["origins"]["real"] == 3
    assert report["origins"]["short"] == report["origins"]["long"] == 5  # half of the 10 teacher pairs
    assert report["mix"]["target_share"] == 0.8 and report["format_share"] == report["mix"]["share"]
    train = read_chat_file(out / "train.jsonl")  # the trainer reads it as it reads a book corpus
    val = read_chat_file(out / "val.jsonl")
    assert len(train) + len(val) == report["records"] and val
    assert train[0].messages[0] == {"role": "system", "content": "You answer in verse."}
    # A pair and its length variants stay on one side of the split.
    families = [{r.meta["family"] for r in part} for part in (train, val)]
    assert not families[0] & families[1]
    # Every call is a row: stage, template, outcome.
    rows = calls_rows(out)
    assert len(rows) == result.calls_total == result.calls
    assert {r["book_id"] for r in rows} == {"prompts", "answers", "refine"}
    assert {r["template"] for r in rows} == {
        "generate_prompts.j2",
        "generate_answer",
        "generate_length.j2",
        "generate_rewrite.j2",
    }
    config = json.loads((out / "config.json").read_text())
    assert config["generate"]["prompts"]["count"] == 10 and config["settings"]["backend"] == "fake"
    manifest = json.loads((out / "manifest.json").read_text())
    assert {Path(o["path"]).name for o in manifest["outputs"]} >= {"train.jsonl", "val.jsonl", "report.json"}


@pytest.mark.parametrize("stage", GENERATE_STAGES)
def test_every_stage_resumes_without_a_call(tmp_path: Path, spec_path: Path, stage: str) -> None:
    out = tmp_path / "out"
    first = generate(out, spec_path, VerseTeacher(), upto=stage)
    assert first.calls > 0 and [s.stage for s in first.stages][-1] == stage
    files = {p.name: p.read_bytes() for p in out.glob("*.jsonl")}
    teacher = VerseTeacher()
    again = generate(out, spec_path, teacher, upto=stage)
    assert teacher.calls == 0 and again.calls == 0
    assert all(s.requests == 0 for s in again.stages)
    assert {p.name: p.read_bytes() for p in out.glob("*.jsonl")} == files
    # Going on from there makes only the later stages' calls, and ends where a one-shot run ends.
    rest = VerseTeacher()
    generate(out, spec_path, rest)
    whole = generate(tmp_path / "whole", spec_path, VerseTeacher())
    assert first.calls + rest.calls == whole.calls
    for name in ("train.jsonl", "val.jsonl", "filtered.jsonl"):
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


@pytest.mark.parametrize("budget", [2, 10, 22])
def test_a_run_stopped_mid_stage_resumes_to_the_same_corpus(
    tmp_path: Path, spec_path: Path, budget: int
) -> None:
    """The budget stops the run inside the prompts (2), answers (10) and refine (22) stages; the rerun sends
    only the requests not yet answered and ends with the corpus of an uninterrupted run."""
    whole = generate(tmp_path / "whole", spec_path, VerseTeacher())
    out = tmp_path / "out"
    with pytest.raises(BudgetExceeded):
        generate(out, spec_path, VerseTeacher(), max_calls=budget)
    assert len(calls_rows(out)) == budget  # every attempt recorded, none past the budget
    rest = VerseTeacher()
    generate(out, spec_path, rest)
    assert budget + rest.calls == whole.calls  # no request sent twice
    for name in ("prompts.jsonl", "answers.jsonl", "train.jsonl", "val.jsonl"):
        assert (out / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


class Flaky(VerseTeacher):
    """A JSON answer that is not JSON, then one empty, one cut off and one leaking the chat template on
    the first attempt of every answer; the retries get a usable answer."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()
        self.faults = iter(["", "The tide comes in and", "Verse.<|im_end|><|im_start|>user"])

    def complete(self, messages, sampling, *, json_schema=None, adapter=None):
        key = messages[-1].content
        first = key not in self.seen
        self.seen.add(key)
        if json_schema is not None and first:
            return Completion(text="Sure! Here are some prompts: 1. Why")
        if json_schema is None and first and "POISON" not in key:
            text = next(self.faults, None)
            if text is not None:
                self.calls += 1
                return Completion(text=text, finish_reason="length" if text.endswith("and") else "stop")
        return super().complete(messages, sampling, json_schema=json_schema, adapter=adapter)


def test_malformed_or_empty_answers_are_retried_recorded_and_never_written(
    tmp_path: Path, spec_path: Path
) -> None:
    spec_path.write_text(
        spec_path.read_text().replace(
            'seed_prompts: ["Why is the sky blue?"]', 'seed_prompts: ["POISON apple?"]'
        )
    )
    out = tmp_path / "out"
    result = generate(out, spec_path, Flaky())
    rows = calls_rows(out)
    malformed = [r for r in rows if r["outcome"] == "malformed"]
    errors = {r["error"] for r in malformed}
    assert {"empty answer", "answer cut off at max_tokens", "chat-template tokens in the answer"} <= errors
    assert any(e.startswith("malformed JSON") for e in errors)
    assert all(
        r["attempt"] >= 2 for r in rows if r["outcome"] == "ok" and r["template"] == "generate_prompts.j2"
    )
    # The poisoned prompt: every attempt empty, recorded, then a failure; it has no pair anywhere.
    by_prompt: dict[str, list[dict]] = {}
    for r in rows:
        if r["book_id"] == "answers":
            by_prompt.setdefault(r["prompt_hash"], []).append(r)
    never = [
        attempts for attempts in by_prompt.values() if all(a["outcome"] == "malformed" for a in attempts)
    ]
    assert len(never) == 1 and [(a["attempt"], a["error"]) for a in never[0]] == [
        (1, "empty answer"),
        (2, "empty answer"),
        (3, "empty answer"),
    ]
    answers = by_stage(result)["answers"]
    assert len(answers.failures) == 1 and "no valid answer after 3 attempts" in answers.failures[0].error
    for name in ("answers.jsonl", "refined.jsonl", "train.jsonl", "val.jsonl"):
        text = (out / name).read_text()
        assert "POISON" not in text and "<|im_end|>" not in text and "The tide comes in and" not in text
    stages = json.loads((out / "stages.json").read_text())
    assert stages[1]["failures"][0]["what"].startswith("answer to prompt")
    # The failure is cached too: a rerun does not ask again.
    teacher = Flaky()
    generate(out, spec_path, teacher)
    assert teacher.calls == 0


def by_stage(result) -> dict:
    return {s.stage: s for s in result.stages}


class ScoringJudge(FakeBackend):
    """Scores 1 any answer whose first word starts with a letter in a-h, 4 the others; format_ok is
    false for answers of one stanza."""

    def complete(self, messages, sampling, *, json_schema=None, adapter=None):
        self.calls += 1
        self.history.append({"messages": messages})
        shown = messages[-1].content.split('ANSWER TO JUDGE\n"""\n', 1)[1].split('\n"""', 1)[0]
        low = shown[:1].lower() <= "h"
        verdict = {"analysis": "judged", "format_ok": "\n\n" in shown, "score": 1 if low else 4}
        return Completion(text=json.dumps(verdict))


def test_the_judge_threshold_filters_and_is_cached(tmp_path: Path, spec_path: Path) -> None:
    spec_path.write_text(
        spec_path.read_text().replace(
            "filter: {near_duplicate: 0.7}", "filter: {judge_min_score: 3, judge: {model: judge}}"
        )
    )
    out = tmp_path / "out"
    judge = ScoringJudge()
    result = generate(out, spec_path, VerseTeacher(), judge=judge)
    rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
    low = [r for r in rejected if r["category"] == "judge score"]
    assert low and all(r["reasons"][0].startswith("judge score 1 < 3") for r in low)
    kept = [json.loads(x) for x in (out / "filtered.jsonl").read_text().splitlines()]
    assert all(k["answer"][:1].lower() > "h" for k in kept)
    # A variant whose parent the judge dropped goes with it, even when its own score was high.
    gone = {r["pair"]["id"] for r in rejected}
    assert all(k["parent"] not in gone for k in kept if k["origin"] in ("short", "long"))
    judged = [r for r in calls_rows(out) if r["book_id"] == "judge"]
    assert judged and {r["template"] for r in judged} == {"judge_answer.j2"}
    assert result.rejected["judge score"] == len(low)
    again = ScoringJudge()
    generate(out, spec_path, VerseTeacher(), judge=again)
    assert again.calls == 0


def test_a_judge_question_decides_the_format(tmp_path: Path, spec_path: Path) -> None:
    spec_path.write_text(
        spec_path.read_text()
        .replace(
            "check: {kind: lines, min_lines: 4, max_words_per_line: 14}",
            "check: {kind: judge, question: 'Is the answer in two stanzas or more?'}",
        )
        .replace("filter: {near_duplicate: 0.7}", "filter: {judge: {model: judge}}")
    )
    out = tmp_path / "out"
    judge = ScoringJudge()
    generate(out, spec_path, VerseTeacher(), judge=judge)
    rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
    kept = [json.loads(x) for x in (out / "filtered.jsonl").read_text().splitlines()]
    assert any(r["category"] == "judge format" for r in rejected)
    assert all("\n\n" in k["answer"] for k in kept if k["kind"] == "format")
    # The question reached the judge as what format_ok means.
    assert (
        "format_ok is true when Is the answer in two stanzas or more?"
        in judge.history[0]["messages"][-1].content
    )


# the command line ------------------------------------------------------------------------------------


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    return lines[0]


def test_cli_runs_the_stages_and_prints_what_each_made(tmp_path: Path, spec_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(dataprep.synth.teacher, "_open_checked", lambda settings: VerseTeacher())
    out = tmp_path / "out"
    res = cli("--backend", "fake", "dataprep", "generate", str(spec_path), "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "prompts: 13 made, " in res.output and "records " in res.output
    res = cli("--backend", "fake", "dataprep", "generate", str(spec_path), "--out", str(out), "--json")
    assert res.exit_code == 0 and json.loads(res.output)["calls"] == 0


def test_cli_unknown_key_fails_in_one_line_before_any_call(tmp_path: Path, spec_path: Path) -> None:
    spec_path.write_text(spec_path.read_text() + "temprature: 0.9\n")
    out = tmp_path / "out"
    res = cli("--backend", "fake", "dataprep", "generate", str(spec_path), "--out", str(out))
    assert res.exit_code == 2
    assert one_error_line(res.output) == f"error: {spec_path}: field 'temprature': unknown key"
    assert not out.exists()


def test_cli_missing_key_variable_fails_in_one_line(tmp_path: Path, spec_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("VERSE_KEY_FOR_TESTS", raising=False)
    teacher = "teacher: {backend: openai, openai: {base_url: 'http://127.0.0.1:9/v1', api_key_env: VERSE_KEY_FOR_TESTS}}"
    spec_path.write_text(spec_path.read_text().replace("teacher: {max_attempts: 3}", teacher))
    res = cli("dataprep", "generate", str(spec_path), "--out", str(tmp_path / "out"))
    assert res.exit_code == 2
    assert one_error_line(res.output).endswith("environment variable VERSE_KEY_FOR_TESTS is not set")
    assert not (tmp_path / "out").exists()


def test_cli_unreachable_teacher_fails_in_one_line_before_any_call(tmp_path: Path, spec_path: Path) -> None:
    teacher = "teacher: {backend: openai, max_attempts: 1, openai: {base_url: 'http://127.0.0.1:9/v1', timeout_s: 2}}"
    spec_path.write_text(spec_path.read_text().replace("teacher: {max_attempts: 3}", teacher))
    out = tmp_path / "out"
    res = cli("dataprep", "generate", str(spec_path), "--out", str(out))
    assert res.exit_code == 1
    line = one_error_line(res.output)
    assert "cannot connect" in line and "127.0.0.1:9" in line
    assert not (out / "calls.db").exists() or calls_rows(out) == []
    assert not (out / "prompts.jsonl").exists()
