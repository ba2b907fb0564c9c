import json

import pytest

from novelcraft.backends.fake import FakeBackend
from novelcraft.core.outline_checks import goal_problem
from novelcraft.core.schema import Message, Sampling, SceneGoal, Seed
from novelcraft.drafting.outline import MAX_ROUNDS, act_layout, collect_items, plan_outline
from novelcraft.prompts import ScenesPrompt
from novelcraft.runtime.calls import ModelClient, ModelOutputError

SYSTEM = Message(role="system", content="s")


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 20, 35, 50])
def test_layout_covers_every_scene_with_no_empty_chapter(n):
    layout = act_layout(n)
    assert sum(map(sum, layout)) == n and all(size > 0 for act in layout for size in act)


def _prompt(missing, got, avoid):
    return ScenesPrompt(
        premise="p",
        act_title="a",
        chapter_title="c",
        chapter_summary="",
        characters=[],
        n_scenes=missing,
        earlier_goals=[],
        avoid=avoid,
    )


def test_missing_and_broken_items_are_asked_for_again():
    fake = FakeBackend()
    fake.enqueue(
        json.dumps(
            {"scenes": [{"goal": "Isla finds the log.", "characters": [], "setting": "tower"}, {"goal": ""}]}
        ),
        json.dumps(
            {
                "scenes": [
                    {"goal": "Tobias lies.", "characters": ["Tobias"], "setting": "boat"},
                    {"goal": "Storm."},
                ]
            }
        ),
    )
    got = collect_items(
        ModelClient(fake), SYSTEM, "outline_scenes.j2", _prompt, "scenes", {}, SceneGoal, 3, Sampling(), "t"
    )
    assert [g.goal for g in got] == ["Isla finds the log.", "Tobias lies.", "Storm."]
    asked = [h["json_schema"]["properties"]["scenes"]["minItems"] for h in fake.history]
    assert asked == [3, 2]  # the second batch asks only for what is missing


def test_a_model_that_never_delivers_gets_a_clear_error_not_a_loop():
    fake = FakeBackend()
    fake.enqueue(*[json.dumps({"scenes": []})] * 10)
    with pytest.raises(ModelOutputError, match=f"0 of 2 valid items after {MAX_ROUNDS}"):
        collect_items(
            ModelClient(fake),
            SYSTEM,
            "outline_scenes.j2",
            _prompt,
            "scenes",
            {},
            SceneGoal,
            2,
            Sampling(),
            "t",
        )
    assert fake.calls == MAX_ROUNDS


@pytest.mark.parametrize("n", [3, 20, 41])
def test_outline_has_exactly_the_requested_scenes(n):
    seed = Seed(premise="p", scenes=n, target_words=n * 100, scene_words=100)
    acts = plan_outline(
        ModelClient(FakeBackend()), SYSTEM, seed, lambda mt, s: Sampling(max_tokens=mt, seed=s)
    )
    from novelcraft.core.schema import Outline

    assert len(Outline(acts=acts).scene_goals()) == n


PREMISE = "In 1911 a young woman takes over her drowned father's lighthouse on a remote Scottish rock."


def test_repeated_goals_and_copied_premise_are_asked_for_again_with_the_reason():
    fake = FakeBackend()
    climb = {"goal": "Isla climbs the tower.", "characters": [], "setting": "rock"}
    fake.enqueue(
        json.dumps({"scenes": [climb, climb, {"goal": PREMISE, "characters": [], "setting": "rock"}]}),
        json.dumps({"scenes": [{"goal": "Tobias hides the ledger.", "characters": [], "setting": "boat"}]}),
    )
    got = collect_items(
        ModelClient(fake),
        SYSTEM,
        "outline_scenes.j2",
        _prompt,
        "scenes",
        {},
        SceneGoal,
        2,
        Sampling(),
        "t",
        lambda item, got: goal_problem(
            item.goal, book_title="Gannet", chapter_title="c", premise=PREMISE, used=[g.goal for g in got]
        ),
    )
    assert [g.goal for g in got] == ["Isla climbs the tower.", "Tobias hides the ledger."]
    second_prompt = fake.history[1]["messages"][-1].content
    assert "repeats an earlier goal" in second_prompt and "copies the premise" in second_prompt


def test_a_model_that_repeats_the_book_title_gets_distinct_chapter_titles():
    class Parrot(FakeBackend):
        def complete(self, messages, sampling, *, json_schema=None, adapter=None):
            answer = super().complete(messages, sampling, json_schema=json_schema, adapter=adapter)
            data = json.loads(answer.text)
            for key in ("acts", "chapters"):
                for item in data.get(key, []):
                    item.update(title="The Keeper", summary=PREMISE + " Then the storm comes.")
            return answer.model_copy(update={"text": json.dumps(data)})

    seed = Seed(title="The Keeper", premise=PREMISE, scenes=12, target_words=1200, scene_words=100)
    acts = plan_outline(ModelClient(Parrot()), SYSTEM, seed, lambda mt, s: Sampling(max_tokens=mt, seed=s))
    titles = [c.title for a in acts for c in a.chapters]
    assert len(set(map(str.lower, titles))) == len(titles) and "The Keeper" not in titles
    assert len({a.title for a in acts}) == len(acts)
