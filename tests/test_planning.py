"""Structured planning (engine/drafting/planning.py): beats onto scenes, every refusal, every fallback."""

import json
import re

import pytest
import yaml

from novelcraft.backends.base import Completion
from novelcraft.backends.fake import FakeBackend
from novelcraft.core.schema import Character, Message, Outline, Sampling, Seed
from novelcraft.drafting.outline_edit import outline_yaml, parse_outline, still_filled
from novelcraft.drafting.planning import (
    GIVE_UP_AFTER,
    GOAL_ATTEMPTS,
    QUESTION,
    cast_named,
    fallback_goal,
    goal_refusal,
    hero_phrase,
    plan_structured,
    plot_trait,
    premise_places,
    premise_things,
    title_refusal,
)
from novelcraft.drafting.scene_events import ENDING, MIDDLE, OPENING, fill, part_of
from novelcraft.drafting.structures import STRUCTURES, beat_plan
from novelcraft.metrics.plan import plan_metrics
from novelcraft.runtime.calls import ModelClient

SYSTEM = Message(role="system", content="s")
PREMISE = (
    "In 1911 a young woman takes over her drowned father's lighthouse on a remote Scottish rock and finds,"
    " in the log book, entries in his hand dated after his death. She must learn who is keeping the light"
    " before the winter storms cut the rock off from the mainland."
)
SEED = Seed(
    title="The Keeper of Gannet Rock",
    premise=PREMISE,
    characters=[
        Character(name="Isla Mackay", description="twenty-three, a telegraphist"),
        Character(name="Tobias Reid", description="the relief keeper"),
        Character(name="Morag Mackay", description="Isla's aunt"),
    ],
    scenes=12,
    target_words=1200,
    scene_words=100,
)


def sampling(max_tokens, seed):
    return Sampling(max_tokens=max_tokens, seed=seed)


class Scripted(FakeBackend):
    """Answers each planning question with `answer(template, prompt, n)`: n counts that template's calls."""

    def __init__(self, answer):
        super().__init__()
        self.answer = answer
        self.asked: list[tuple[str, str]] = []

    def complete(self, messages, sampling, *, json_schema=None, adapter=None, **kw):
        prompt = messages[-1].content
        template = (
            "spine"
            if "three short sentences" in prompt
            else "titles"
            if "chapter title" in prompt
            else "scene"
        )
        n = sum(1 for t, _ in self.asked if t == template)
        self.asked.append((template, prompt))
        return Completion(text=json.dumps(self.answer(template, prompt, n)), tokens_in=1, tokens_out=1)


def good_answer(template, prompt, n):
    if template == "spine":
        return {
            "wants": "to find out who writes in the log at night",
            "obstacle": "the silence of everyone on the mainland",
            "stakes": "her place at the light and her own sanity",
        }
    if template == "titles":
        k = len(re.findall(r"^\d+\. ", prompt, re.M))
        return {"act_title": f"Winter Tide {n + 1}", "chapters": [f"The Lamp Room {n}{c}" for c in range(k)]}
    number = int(re.search(r"Scene (\d+) of", prompt).group(1))
    who = re.search(r"Plan this one scene for ([A-Z][a-z]+ [A-Z][a-z]+)", prompt).group(1)
    deeds = [
        "searches the cellar for the missing oil",
        "rows across the sound to question the ferryman",
        "burns a letter in the kitchen stove",
        "counts the rockets in the signal store",
        "waits on the gallery through a gale",
        "reads the log aloud by candle",
        "follows wet footprints down the stair",
        "bargains with a smuggler over a debt",
        "mends the broken telegraph wire",
        "buries a stranger's coat under stones",
        "lights the lamp against orders",
        "confesses the truth about the drowning",
    ]
    return {
        "goal": f"{who} {deeds[(number - 1) % len(deeds)]}",
        "setting": "the lamp room at dusk",
        "change": f"{who} learns one more thing about the entries",
        "hook": "a light shows on the water where no boat should be",
    }


def test_beats_cover_every_scene_for_every_structure():
    for name, structure in STRUCTURES.items():
        for n in (1, 3, 4, 7, 12, 20, 35, 50):
            plan = beat_plan(name, n)
            assert len(plan) == n
            acts = [act for act, _ in plan]
            assert acts == sorted(acts), "acts run in order"
            beats = [b.name for _, b in plan if b]
            if structure.beats and n >= len(structure.beats):
                # Every beat gets a scene, in the structure's order.
                assert list(dict.fromkeys(beats)) == [b.name for b in structure.beats]


def test_weights_give_long_beats_more_scenes():
    plan = beat_plan("three-act", 35)
    counts = {}
    for _, beat in plan:
        counts[beat.name] = counts.get(beat.name, 0) + 1
    assert counts["Rising action"] > counts["Opening"] and counts["Complications"] > counts["Midpoint"]


@pytest.mark.parametrize(
    "goal, reason",
    [
        ("The Keeper of Gannet Rock", "title"),
        ("She must learn who is keeping the light before the storms", "premise copy"),
        ("Tobias Reid", "bare name"),
        ("1920 a month", "under five words"),
        ('{"goal": "Isla waits"}', "markup"),
        ("A stranger rows out to the rock in the fog at dawn", "names no one of the cast"),
        ("Isla climbs to the lamp room and finds the log book open", "repeats an earlier goal"),
        ("One new sentence that names Isla Mackay and says what happens", "repeats the question"),
    ],
)
def test_every_kind_of_junk_goal_is_refused(goal, reason):
    earlier = ["Isla climbs to the lamp room and finds the log book open again"]
    refusal = goal_refusal(goal, SEED, [c.name for c in SEED.characters], earlier, QUESTION)
    assert refusal and reason in refusal


def test_a_goal_with_a_cast_member_and_its_own_words_is_accepted():
    assert (
        goal_refusal(
            "Tobias rows to Oban and pawns the lamp's brass to pay the smuggler", SEED, ["Tobias Reid"], []
        )
        is None
    )


def test_a_shared_family_name_alone_names_no_one():
    cast = ["Isla Mackay", "Morag Mackay", "Tobias Reid"]
    assert cast_named("Miss Mackay waits", cast) == []
    assert cast_named("Isla and Reid argue", cast) == ["Isla Mackay", "Tobias Reid"]


@pytest.mark.parametrize(
    "title, ok",
    [
        ("The Lamp Room", True),
        ("Winter Tide", True),
        ("Woman Drowned Father's", False),
        ("Cut Rock Off", False),
        ("The Keeper of Gannet Rock", False),
        ("the lamp room", False),
        ("A Title That Goes On Far Too Long", False),
        ("Drowned Woman", False),  # the premise's words in another order
        ("Keeper: 1", False),
    ],
)
def test_titles_must_read_as_titles(title, ok):
    assert (title_refusal(title, SEED.title, [], PREMISE) is None) is ok


def test_premise_places_and_second_person_verbs():
    assert premise_places(SEED) == [
        "a remote Scottish rock",
        "the mainland",
        "her drowned father's lighthouse",
        "the rock",
    ]
    # "his hand" and "his death" lose their owner out of the premise's sentence: left out.
    assert premise_things(SEED) == ["the log book", "the light", "the winter storms"]
    only_owned = SEED.model_copy(update={"premise": "A keeper dreams of his death."})
    assert premise_things(only_owned) == ["his death"]
    assert hero_phrase("you", "meets the event and loses a friend") == "you meet the event and lose a friend"
    assert hero_phrase("you", "is pushed into the conflict") == "you are pushed into the conflict"
    assert hero_phrase("Isla", "is pushed") == "Isla is pushed"


def test_people_in_the_world_are_not_places():
    seed = SEED.model_copy(
        update={
            "characters": [
                *SEED.characters,
                Character(name="Anna Weiss", description="a conductor who says little"),
            ]
        }
    )
    world = (
        "The lamp burns at the top of the iron stair. Isla sits with a charming old lady from the harbour"
        " and talks to a tired young conductor near the north landing stage."
    )
    places = premise_places(seed, world)
    assert not any("lady" in p or "conductor" in p for p in places), places
    assert set(premise_places(SEED)) <= set(places) and "the north landing stage" in places


def test_good_answers_make_the_outline_with_nothing_filled():
    backend = Scripted(good_answer)
    outline = plan_structured(ModelClient(backend), SYSTEM, SEED, sampling)
    goals = [g for _, _, g in outline.scene_goals()]
    assert len(goals) == 12 and outline.filled == [] and outline.structure == "three-act"
    assert [s.character for s in outline.spine] == ["Isla Mackay", "Tobias Reid", "Morag Mackay"]
    assert all(g.beat and g.change and g.hook for g in goals)
    assert all(set(g.characters) <= {c.name for c in SEED.characters} for g in goals)
    metrics = plan_metrics(outline, SEED)
    assert metrics.junk_share == 0 and metrics.distinct_share == 1 and metrics.cast_share == 1
    titles = [c.title for c in outline.chapters()]
    assert titles[0] == "The Lamp Room 00" and len(set(titles)) == len(titles)
    # One spine question per main character, one per scene, one titles question per act.
    asked = [t for t, _ in backend.asked]
    assert asked.count("spine") == 3 and asked.count("scene") == 12 and asked.count("titles") == 3


def test_a_model_that_answers_again_after_a_run_of_refusals_is_still_asked():
    def answer(template, prompt, n):
        number = int(m.group(1)) if (m := re.search(r"Scene (\d+) of", prompt)) else 0
        if template == "scene" and number in (2, 3, 4):
            return {"goal": "x", "setting": "x", "change": "x", "hook": "x"}
        return good_answer(template, prompt, n)

    outline = plan_structured(ModelClient(Scripted(answer)), SYSTEM, SEED, sampling)
    assert [s for s in outline.filled if s.endswith("goal")] == [
        "scene 2 goal",
        "scene 3 goal",
        "scene 4 goal",
    ]


def test_a_refused_goal_is_asked_again_with_the_refusal_shown_then_accepted():
    def answer(template, prompt, n):
        if template == "scene" and "Scene 1 of" in prompt and "Refused before" not in prompt:
            return {
                "goal": "The Keeper of Gannet Rock",
                "setting": "x y",
                "change": "a b c d",
                "hook": "a b c d",
            }
        return good_answer(template, prompt, n)

    backend = Scripted(answer)
    outline = plan_structured(ModelClient(backend), SYSTEM, SEED, sampling)
    first_scene = [p for t, p in backend.asked if t == "scene" and "Scene 1 of" in p]
    assert len(first_scene) == 2 and "is title" in first_scene[1]
    # An answer that copies the refusal it was shown is refused too.
    assert goal_refusal(
        "The Keeper of Gannets: a young woman named Isla Mackay is markup.",
        SEED,
        ["Isla Mackay"],
        [],
        "the goal 'The Keeper of Gannets: a young woman named Isla Mackay' is markup",
    )
    assert "scene 1 goal" not in outline.filled
    assert outline.scene_goals()[0][2].goal.startswith("Isla Mackay searches")


def test_a_model_that_only_answers_junk_gets_the_seed_floor_recorded_slot_by_slot():
    def junk(template, prompt, n):
        if template == "spine":
            return {"wants": "x", "obstacle": "x", "stakes": "x"}
        if template == "titles":
            return {"act_title": "The Keeper of Gannet Rock", "chapters": ["Cut Rock Off"] * 8}
        return {"goal": "The Keeper of Gannet Rock", "setting": "{}", "change": "x", "hook": "x"}

    backend = Scripted(junk)
    outline = plan_structured(ModelClient(backend), SYSTEM, SEED, sampling)
    goals = [g for _, _, g in outline.scene_goals()]
    # Never accepted: every goal is the seed's, and every slot says so.
    assert all(f"scene {n} goal" in outline.filled for n in range(1, 13))
    assert {f"spine {c.name}" for c in SEED.characters} <= set(outline.filled)
    assert {"act 1 title", "act 1 chapter 1 title"} <= set(outline.filled)
    # Bounded: GOAL_ATTEMPTS questions per slot, and none after GIVE_UP_AFTER slots failed in a row.
    assert [t for t, _ in backend.asked].count("scene") == GIVE_UP_AFTER * GOAL_ATTEMPTS
    metrics = plan_metrics(outline, SEED)
    assert metrics.junk_share == 0 and metrics.distinct_share == 1 and metrics.cast_share == 1
    assert metrics.settings >= 3
    assert [a.title for a in outline.acts] == ["The Setup", "The Confrontation", "The Resolution"]
    titles = [c.title for c in outline.chapters()]
    assert titles[0] == "Opening" and len(set(titles)) == len(titles)
    assert all(g.beat for g in goals) and goals[0].goal.startswith("Isla Mackay arrives at")
    # Every other of the cast has scenes beside the hero.
    others = {c.name for c in SEED.characters[1:]}
    assert {name for g in goals for name in others if name in g.goal} == others


def test_a_second_person_seed_plans_for_you_with_the_cast_named():
    seed = SEED.model_copy(update={"pov": "second"})
    outline = plan_structured(ModelClient(Scripted(lambda t, p, n: {})), SYSTEM, seed, sampling)
    goals = [g.goal for _, _, g in outline.scene_goals()]
    assert all(g.startswith("You ") for g in goals)
    # The hero's verbs in the second person, everyone else's as they were.
    assert goals[2] == (
        "You ask Morag Mackay straight out about the winter storms over a meal at her drowned father's"
        " lighthouse, and Morag changes the subject."
    )
    assert not any(re.search(r"\bYou (?:\w+s|is|has)\b", g) for g in goals), goals
    assert plan_metrics(outline, seed).cast_share == 1


def test_structure_none_and_kishotenketsu():
    none = plan_structured(
        ModelClient(Scripted(lambda t, p, n: {})),
        SYSTEM,
        SEED.model_copy(update={"structure": "none"}),
        sampling,
    )
    assert len(none.acts) == 3 and not any(g.beat for _, _, g in none.scene_goals())
    kishotenketsu = plan_structured(
        ModelClient(Scripted(lambda t, p, n: {})),
        SYSTEM,
        SEED.model_copy(update={"structure": "kishotenketsu"}),
        sampling,
    )
    assert [a.title for a in kishotenketsu.acts] == ["Ki", "Shō", "Ten", "Ketsu"]


def test_a_fallback_goal_is_an_event_of_its_own_with_who_where_and_what_changes():
    plan = beat_plan("three-act", 12)
    goal = fallback_goal(plan[1][1], 1, 12, "Isla Mackay", "Tobias Reid", "the mainland", "the log book")
    assert goal.goal == (
        "Isla Mackay sorts through old papers on the mainland with Tobias Reid and finds a note about the"
        " log book that no one has mentioned."
    )
    assert goal.change.startswith("Isla Mackay can no longer") and goal.beat == "Inciting incident"
    assert goal.hook == "Who wrote the note, and when?" and goal.setting == "the mainland"
    # What the seed says a character carries comes with them, as a sentence of its own.
    carried = fallback_goal(
        plan[1][1], 0, 12, "Isla Mackay", "Tobias Reid", "the rock", trait="hiding a debt"
    )
    assert carried.goal.endswith("that Tobias Reid swears no one lit. Tobias Reid is hiding a debt.")
    told = fallback_goal(None, 0, 12, "Isla", "Morag", "the rock", trait="who knows more than she says")
    assert told.goal.endswith(" Morag knows more than she says.") and told.beat == ""
    # A town or a region takes "in"; a named spot of more words keeps "at".
    assert " in Kent " in fallback_goal(plan[1][1], 0, 12, "Ruth Ashby", "", "Kent").goal
    assert " at Gannet Rock " in fallback_goal(plan[1][1], 0, 12, "Isla", "", "Gannet Rock").goal
    # One is on a mainland or a train, not at it.
    assert " on the night train " in fallback_goal(plan[1][1], 0, 12, "Ruth", "", "the night train").goal


def test_every_floor_goal_of_a_book_is_a_different_event_fitting_its_part():
    # 40 scenes: each part's events suffice, so no two goals share their event's words.
    goals = [fallback_goal(None, i, 40, "Isla", "Tobias", "the rock").goal for i in range(40)]
    assert len(set(goals)) == 40
    assert part_of(0, 40) == 0 and part_of(20, 40) == 1 and part_of(39, 40) == 2
    assert goals[0].startswith("Isla arrives") and goals[30].startswith("Isla sets a trap")
    # Every template's slots are known ones, and a second-person hero gets verbs without -s.
    for goal, hook in (*OPENING, *MIDDLE, *ENDING):
        filled = fill(goal, "you", "Anna", "at the train", "the envelope")
        assert "{" not in filled and "{" not in fill(hook, "you", "Anna", "at the train", "")
        assert not re.search(r"\bYou (?:\w+s|is|has)\b", filled), filled
        assert not re.search(r"\band (?:\w+s|is|has) ", filled.split("Anna")[0]), filled


@pytest.mark.parametrize(
    ("description", "trait"),
    [
        ("the relief keeper, kind, hiding a debt to a smuggler", "hiding a debt to a smuggler"),
        (
            "Isla's aunt, who knows more about the drowning than she says",
            "who knows more about the drowning than she says",
        ),
        ("a conductor who notices everything", "a conductor who notices everything"),
        ("twenty-three, stubborn, grieving", ""),
        ("", ""),
    ],
)
def test_a_characters_plot_trait_is_the_part_of_the_description_that_carries_plot(description, trait):
    assert plot_trait(description) == trait


def test_an_authors_edit_makes_a_filled_slot_the_authors(tmp_path):
    outline = plan_structured(ModelClient(Scripted(lambda t, p, n: {})), SYSTEM, SEED, sampling)
    text = outline_yaml(outline)
    assert "filled:" in text and "spine:" in text
    data = outline.model_dump()
    data["acts"][1]["chapters"][0]["scenes"][0]["goal"] = "Isla rows to the mainland alone to see Morag."
    edited = parse_outline(yaml.safe_dump(data))
    n = next(i for _, i, g in edited.scene_goals() if g.goal.startswith("Isla rows")) + 1
    kept = still_filled(outline, edited)
    assert f"scene {n} goal" not in kept and f"scene {n + 1} goal" in kept
    assert len(kept) == len(outline.filled) - 1
    assert Outline.model_validate_json(outline.model_dump_json()) == outline
