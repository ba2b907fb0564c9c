"""One name per character: a known first name under another surname is written as the known name."""

from __future__ import annotations

import json

from fake_stories import drafted

from novelcraft.core.schema import Character, Seed
from novelcraft.drafting.bible import Bible, BibleEntry
from novelcraft.drafting.names import name_variants, renamed

CAST = ["Ruth Ashby", "Daniel Ashby", "Gideon Hale"]


def test_a_cast_member_under_another_surname_is_the_cast_member() -> None:
    names = ["Ruth Blackwood", "Gideon Blackheart", "Ruth Ashby", "Gideon"]
    assert name_variants(names, Bible(), CAST) == {
        "Ruth Blackwood": "Ruth Ashby",
        "Gideon Blackheart": "Gideon Hale",
    }


def test_a_new_first_name_keeps_the_surname_it_is_first_given() -> None:
    # The orchard book: one stranger, a new surname each time he is named.
    names = ["Finnegan Blackwood", "Finnegan Blackheart", "Mr. Finnegan Blackstone's", "Finnegan Blackwood"]
    renames = name_variants(names, Bible(), CAST)
    assert renames == {
        "Finnegan Blackheart": "Finnegan Blackwood",
        "Finnegan Blackstone": "Finnegan Blackwood",
    }
    text = "Finnegan Blackwood came. Finnegan Blackheart sat. Mr. Finnegan Blackstone's coat was wet."
    assert renamed(text, renames) == (
        "Finnegan Blackwood came. Finnegan Blackwood sat. Mr. Finnegan Blackwood's coat was wet."
    )


def test_the_bible_knows_a_name_from_an_earlier_scene() -> None:
    bible = Bible(
        entries=[BibleEntry(kind="character", name="Finnegan Blackwood", detail="a sailor", scene=0)]
    )
    assert name_variants(["Finnegan Ashby"], bible, CAST) == {"Finnegan Ashby": "Finnegan Blackwood"}
    # A place of that name is no character: nothing to rename to.
    places = Bible(entries=[BibleEntry(kind="place", name="Finnegan Blackwood", detail="a farm", scene=0)])
    assert name_variants(["Finnegan Ashby"], places, CAST) == {}


def test_what_is_left_as_written() -> None:
    cast = [*CAST, "Ruth Clarke"]
    # Two known Ruths: "Ruth Blackwood" could be either.
    assert name_variants(["Ruth Blackwood"], Bible(), cast) == {}
    # A known name, a first name alone, three parts, a lower-case part.
    assert name_variants(["Ruth Clarke", "Daniel", "Daniel Ashby Hale", "Daniel the"], Bible(), cast) == {}
    # A first name that is a title of the cast's name is not the name's first part.
    assert name_variants(["Captain Blackwood"], Bible(), ["Captain Tobias Reid"]) == {}
    # Nor is a title that may stand before several people's names.
    assert name_variants(["King Ashworth", "King Ashley"], Bible(), CAST) == {}


def test_a_titled_cast_name_is_written_without_its_title() -> None:
    assert name_variants(["Tobias Mackay"], Bible(), ["Captain Tobias Reid"]) == {
        "Tobias Mackay": "Tobias Reid"
    }


def test_renamed_touches_whole_names_only_in_one_pass() -> None:
    renames = {"Ruth Blackwood": "Ruth Ashby", "Finnegan Ashby": "Finnegan Blackwood"}
    text = "Ruth Blackwood-Smith and Ruth Blackwoods stayed; Ruth Blackwood's son, Finnegan Ashby, left."
    assert renamed(text, renames) == (
        "Ruth Blackwood-Smith and Ruth Blackwoods stayed; Ruth Ashby's son, Finnegan Blackwood, left."
    )
    assert renamed(text, {}) == text


def test_a_drafted_scene_is_saved_with_one_name_per_character(db_path, monkeypatch):
    import novelcraft.drafting.graph as graph

    real = graph.draft_scene

    def draft_scene(client, system, request):
        take = real(client, system, request)
        text = take.text + "\n\nIsla Blackwood came in from the rain."
        return take.model_copy(update={"text": text, "turns": [text]})

    def person_names(texts, cast=()):
        return [["Isla Blackwood"] if "Isla Blackwood" in t else [] for t in texts]

    monkeypatch.setattr(graph, "draft_scene", draft_scene)
    monkeypatch.setattr(graph, "person_names", person_names)
    monkeypatch.setattr(graph, "ner_available", lambda: True)
    seed = Seed(
        title="Names",
        premise="A keeper and a lamp on a rock.",
        characters=[Character(name="Isla Mackay", description="the keeper's daughter")],
        scenes=2,
        target_words=400,
        scene_words=200,
        seed=3,
    )
    story = drafted(db_path, seed)
    for idx in range(2):
        row = story.store.scene(story.id, idx)
        assert "Isla Mackay came in from the rain." in row["text"] and "Blackwood" not in row["text"]
        assert {"kind": "name", "text": "Isla Blackwood -> Isla Mackay"} in json.loads(row["cut_json"])
        assert "Blackwood" not in row["turns_json"]
