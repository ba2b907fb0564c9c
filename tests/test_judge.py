"""Judges on the fake backend: order swap, a flip is a tie, the bootstrap interval, records."""

import json

import pytest

from novelcraft.backends.fake import FakeBackend
from novelcraft.core.schema import Sampling
from novelcraft.judges.judge import Judge, RubricResult, combine, rubric_summary, win_rate
from novelcraft.runtime.calls import ModelClient, ModelOutputError

SAMPLING = Sampling(temperature=0.3, max_tokens=300, seed=5)


def judge_with(*answers, records=None):
    backend = FakeBackend()
    backend.enqueue(*answers)
    client = ModelClient(backend, (records.append if records is not None else None), backoff_s=0)
    return Judge(client, SAMPLING), backend


def pair_answer(winner):
    return json.dumps({"analysis": "One is livelier.", "winner": winner})


def test_pairwise_runs_both_orders_with_the_texts_swapped():
    judge, backend = judge_with(pair_answer("A"), pair_answer("B"))
    result = judge.pair("The gull cried over the rock.", "Rain. Rain. Rain. Rain.")
    first, second = (h["messages"][-1].content for h in backend.history)
    assert first.index("gull") < first.index("Rain. Rain") and second.index("Rain. Rain") < second.index(
        "gull"
    )
    # A in the first order and B in the second are both the first text: a consistent win.
    assert (result.first, result.second, result.outcome, result.flipped) == ("a", "a", "a", False)


def test_a_verdict_that_flips_with_the_order_is_a_tie():
    judge, _ = judge_with(pair_answer("A"), pair_answer("A"))
    result = judge.pair("first text here", "second text here")
    assert (result.first, result.second) == ("a", "b") and result.flipped and result.outcome == "tie"
    assert combine("tie", "a") == "tie" and combine("b", "b") == "b"


def test_win_rate_and_its_bootstrap_interval():
    outcomes = ["a"] * 14 + ["b"] * 4 + ["tie"] * 2
    wr = win_rate(outcomes, seed=1)
    assert (wr.wins, wr.losses, wr.ties, wr.n) == (14, 4, 2, 20)
    assert wr.rate == pytest.approx(0.75)
    assert wr.low < 0.75 < wr.high and wr.low > 0.5 and wr.high <= 1.0
    assert win_rate(outcomes, seed=1) == wr  # reproducible
    narrow = win_rate(outcomes * 10, seed=1)
    assert narrow.high - narrow.low < wr.high - wr.low  # more items, a tighter interval
    assert win_rate(["a"] * 5).low == 1.0


def test_rubric_answer_is_schema_checked_retried_and_recorded():
    records = []
    good = json.dumps(
        {"analysis": "Clear prose, some repetition.", "format_ok": True, "score": 3, "on_goal": True}
    )
    judge, _ = judge_with(
        "Sure! score 4", json.dumps({"analysis": "x", "format_ok": True, "score": 9}), good, records=records
    )
    result = judge.rubric("The lamp burned.", goal="Isla lights the lamp.", scene_index=2)
    assert (result.score, result.format_ok, result.on_goal) == (3, True, True)
    assert [r.outcome for r in records] == ["malformed", "malformed", "ok"]
    assert {r.template for r in records} == {"judge_rubric.j2"} and {r.scene_index for r in records} == {2}


def test_a_judge_that_never_answers_well_fails_in_one_error():
    judge, _ = judge_with(*["not json"] * 4)
    with pytest.raises(ModelOutputError, match="judge_rubric.j2: no valid answer after 4 attempts"):
        judge.rubric("text")


def test_long_texts_are_cut_to_fit_the_window():
    backend = FakeBackend()
    client = ModelClient(backend, context_window=1024, backoff_s=0)
    Judge(client, SAMPLING).pair("word " * 3000, "other " * 3000)
    for call in backend.history:
        assert backend.count_prompt_tokens(call["messages"]) + 320 <= 1024


def test_rubric_summary_counts_failures_and_format():
    results = [
        RubricResult(score=s, format_ok=f, analysis=".")
        for s, f in [(0, False), (1, True), (4, True), (5, True)]
    ]
    summary = rubric_summary(results)
    assert summary.mean_score == 2.5 and summary.failure_rate == 0.5 and summary.format_adherence == 0.75


def test_a_scene_judged_with_its_goal_answers_the_goal_question_too():
    judge, backend = judge_with(
        json.dumps({"analysis": "Does not climb.", "format_ok": True, "score": 2, "on_goal": False}),
        json.dumps({"analysis": "A whole story.", "format_ok": True, "score": 3}),
    )
    scene = judge.rubric("Isla sat by the fire.", kind="scene", goal="Isla climbs the tower")
    assert scene.on_goal is False and "on_goal is true when" in backend.history[0]["messages"][-1].content
    assert "on_goal" in backend.history[0]["json_schema"]["required"]
    story = judge.rubric("A whole story.", kind="story", goal="")
    assert story.on_goal is None and "on_goal" not in backend.history[1]["json_schema"].get("required", [])


def test_adherence_figures_take_the_judge_answers_and_scores_by_chapter():
    from novelcraft.metrics.adherence import adherence_metrics

    m = adherence_metrics(
        ["a b", "c d", "e f"],
        ["a b", "c d", "e f"],
        [0, 0, 1],
        judge_on_goal=[True, False],
        judge_scores=[4, 2, 1],
    )
    assert m.judge_share == 0.5 and m.judge_first_chapter_score == 3 and m.judge_last_chapter_score == 1
