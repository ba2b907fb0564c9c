"""Plan metrics on constructed outlines with known answers, and in `novelcraft eval`."""

from __future__ import annotations

import json

from novelcraft.cli.main import app
from novelcraft.core.schema import Act, Chapter, Character, Outline, SceneGoal, Seed
from novelcraft.metrics.plan import junk_reason, names_cast, plan_metrics

SEED = Seed(
    title="The Keeper of Gannet Rock",
    premise="In 1911 a young woman takes over her drowned father's lighthouse on a remote Scottish rock.",
    characters=[Character(name="Isla Mackay"), Character(name="Tobias Reid")],
)


def outline_of(*goals: tuple[str, str]) -> Outline:
    scenes = [SceneGoal(goal=g, setting=s) for g, s in goals]
    return Outline(acts=[Act(title="One", chapters=[Chapter(title="First", scenes=scenes)])])


def test_each_kind_of_junk_is_named():
    cases = {
        "The Keeper of Gannets": "title",
        "the keeper of gannet rock": "title",
        "a young woman takes over her drowned father's lighthouse": "premise copy",
        "Tobias Reid": "bare name or date",
        "1911 Scotland": "bare name or date",
        "storm comes at night": "under five words",
        'scene1: {"goal": "Isla climbs the tower"}': "markup",
        "setting1.com/2018-09-30 Isla walks to the rock at dawn": "markup",
        "LAST TIME: Isla rows the boat out to the rock": "markup",
        # A goal the default model wrote for stories/orchard.yaml: a row of fields, not a sentence.
        ",n,david:10.56,hale-johnstone": "markup",
        "isla.tobias.morag.the.rock": "under five words",
    }
    assert {goal: junk_reason(goal, SEED) for goal in cases} == cases
    assert junk_reason("Isla rows out to the rock and finds the lamp dark.", SEED) is None
    assert junk_reason("Isla meets Tobias at 10:30, by the wall, and lies.", SEED) is None


def test_a_goal_names_the_cast_by_a_whole_word():
    assert names_cast("Isla finds the logbook her father hid.", SEED)
    assert names_cast("The inspector questions Mr Reid on the pier.", SEED)
    assert not names_cast("Islands of fog close the harbour for a week.", SEED)


def test_plan_figures_of_a_constructed_outline():
    outline = outline_of(
        ("Isla rows out to the rock and finds the lamp dark.", "the rock"),
        ("Isla rows out to the rock and finds the lamp dark.", "The Rock "),
        ("Tobias Reid", "the pier"),
        ("The Keeper of Gannets", ""),
        ("A storm cuts the rock off and Tobias must choose.", "the lamp room"),
    )
    m = plan_metrics(outline, SEED)
    assert m.goals == 5
    assert m.distinct_share == 4 / 5
    assert m.junk_share == 2 / 5 and m.junk_reasons == {"bare name or date": 1, "title": 1}
    assert m.cast_share == 4 / 5  # the title goal names nobody
    assert m.settings == 3  # "the rock" twice (case and spaces aside), the pier, the lamp room
    assert len(m.junk_examples) == 2


def test_an_empty_outline_has_no_figures():
    assert plan_metrics(Outline(acts=[]), SEED).goals == 0


def test_eval_shows_the_plan_rows(tmp_path, db_path, runner):
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "title: Plan\npremise: A keeper and a lamp.\nscenes: 3\ntarget_words: 600\nscene_words: 200\n"
    )
    base = ["--db", str(db_path), "--backend", "fake"]
    story_id = json.loads(runner.invoke(app, [*base, "write", str(seed), "--json"]).stdout)["story_id"]
    table = runner.invoke(app, [*base, "eval", story_id])
    assert table.exit_code == 0
    for label in ("plan: distinct goals", "plan: junk goals", "plan: goals naming cast"):
        assert label in table.stdout
    plan = json.loads(runner.invoke(app, [*base, "eval", story_id, "--json"]).stdout)[0]["engine"]["plan"]
    assert plan["goals"] == 3 and 0 <= plan["junk_share"] <= 1
