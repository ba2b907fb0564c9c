"""Names in the bible: a mention resolves to the one character it can only mean, merges keep one entry
per character, and the names a scene adds become character entries."""

from __future__ import annotations

import pytest

from novelcraft.drafting.bible import (
    Bible,
    BibleEntry,
    Contradiction,
    EntryUpdate,
    merge,
    name_parts,
    new_name_updates,
    resolve_alias,
    verified,
)

BIBLE = Bible(
    entries=[
        BibleEntry(kind="character", name="Isla Mackay", detail="the keeper's daughter", scene=0),
        BibleEntry(kind="character", name="Morag Mackay", detail="Isla's aunt, keeps the logbook", scene=0),
        BibleEntry(kind="place", name="Gannet Rock", detail="the lighthouse rock", scene=0),
        BibleEntry(kind="object", name="Isla's lamp", detail="a brass storm lamp", scene=1),
    ]
)
CAST = ["Tobias Reid", "Isla Mackay"]


def test_name_parts_drop_titles_possessives_and_punctuation() -> None:
    assert name_parts("Aunt Morag's") == ["morag"]
    assert name_parts("Mr. Tobias Reid") == ["tobias", "reid"]
    assert name_parts("  miss   MACKAY ") == ["mackay"]
    assert name_parts("Captain") == []


@pytest.mark.parametrize(
    ("mention", "canonical"),
    [
        ("Isla Mackay", "Isla Mackay"),
        ("isla   MACKAY", "Isla Mackay"),  # case and spacing aside
        ("Isla", "Isla Mackay"),
        ("Isla's", "Isla Mackay"),
        ("Isla Mackay’s", "Isla Mackay"),
        ("Miss Isla", "Isla Mackay"),
        ("Aunt Morag", "Morag Mackay"),
        ("Morag", "Morag Mackay"),
        ("Tobias", "Tobias Reid"),  # from the cast: no bible entry yet
        ("Mr Reid", "Tobias Reid"),
        ("Captain Tobias Reid", "Tobias Reid"),
        # Ambiguous: both Mackays hold every part of the mention.
        ("Miss Mackay", None),
        ("Mackay", None),
        # Unknown, or titles alone.
        ("Ewan", None),
        ("Isla Reid", None),
        ("Captain", None),
        # A place or object is no character.
        ("Gannet Rock", None),
    ],
)
def test_resolve_alias(mention: str, canonical: str | None) -> None:
    assert resolve_alias(mention, BIBLE, CAST) == canonical


def test_resolve_alias_with_nothing_known() -> None:
    assert resolve_alias("Isla", Bible(), []) is None
    assert resolve_alias("Isla", Bible(), ["Isla Mackay"]) == "Isla Mackay"


def test_find_resolves_an_alias_among_character_entries_only() -> None:
    assert BIBLE.find("Isla").name == "Isla Mackay"
    assert BIBLE.find("Aunt Morag").name == "Morag Mackay"
    assert BIBLE.find("gannet rock").name == "Gannet Rock"  # exact names of any kind, as before
    assert BIBLE.find("isla's lamp").name == "Isla's lamp"
    assert BIBLE.find("Miss Mackay") is None  # ambiguous
    assert BIBLE.find("Tobias") is None  # cast only, not in the bible
    assert BIBLE.find("Rock") is None  # a place is not aliased


def test_a_flag_naming_a_character_by_first_name_is_kept() -> None:
    scene = "Isla climbed the iron stair with the lamp held high above her head."
    flag = Contradiction(
        category="character",
        claim="Isla is afraid of the stair",
        evidence="Isla climbed the iron stair",
        conflicts_with="Isla",
    )
    assert verified([flag], scene, BIBLE) == [flag]
    ambiguous = flag.model_copy(update={"conflicts_with": "Miss Mackay"})
    assert verified([ambiguous], scene, BIBLE) == []


def test_merge_folds_an_alias_into_the_character() -> None:
    merged = merge(BIBLE, [EntryUpdate(kind="character", name="Isla", detail="has hurt her hand")], scene=2)
    characters = [e for e in merged.entries if e.kind == "character"]
    assert sorted(e.name for e in characters) == ["Isla Mackay", "Morag Mackay"]
    isla = merged.find("Isla Mackay")
    assert (isla.detail, isla.scene) == ("has hurt her hand", 2)
    assert len(merged.entries) == len(BIBLE.entries)


def test_merge_keeps_an_ambiguous_or_new_name_as_its_own_entry() -> None:
    updates = [
        EntryUpdate(kind="character", name="Miss Mackay", detail="someone at the door"),
        EntryUpdate(kind="character", name="Ewan Fraser", detail="the boatman"),
    ]
    merged = merge(BIBLE, updates, scene=2)
    assert {"Miss Mackay", "Ewan Fraser", "Isla Mackay", "Morag Mackay"} <= {e.name for e in merged.entries}
    assert len(merged.entries) == len(BIBLE.entries) + 2


def test_merge_resolves_within_one_scene_and_against_the_cast() -> None:
    updates = [
        EntryUpdate(kind="character", name="Ewan Fraser", detail="the boatman"),
        EntryUpdate(kind="character", name="Ewan", detail="the boatman, soaked"),
        EntryUpdate(kind="character", name="Tobias", detail="brings the mail"),
    ]
    merged = merge(BIBLE, updates, scene=3, cast=CAST)
    assert merged.find("Ewan Fraser").detail == "the boatman, soaked"
    assert merged.find("Tobias Reid").detail == "brings the mail"
    assert not any(e.name in ("Ewan", "Tobias") for e in merged.entries)
    # Without the cast, "Tobias" is a new entry under the name the scene used.
    assert merge(BIBLE, updates[2:], scene=3).find("Tobias").name == "Tobias"


def test_merge_leaves_other_kinds_alone() -> None:
    merged = merge(BIBLE, [EntryUpdate(kind="fact", name="Isla", detail="was born on the rock")], scene=2)
    assert [e.name for e in merged.entries if e.kind == "fact"] == ["Isla"]


def test_new_name_updates() -> None:
    names = [
        "Isla",  # known (bible)
        "Ewan",
        "Tobias",  # known (cast)
        "Ewan Fraser",
        "the keeper",  # not capitalised
        "Mhairi",
        "Mhairi",
        "J",  # one letter
        "Captain",  # a title alone
        "Miss Mackay",  # ambiguous between two known characters: not a new person either
        "Gannet Rock",  # a bible entry
        "Ewan's",
        "Dr Lachlan",
        "Annie",
        "Callum",
    ]
    updates = new_name_updates(names, BIBLE, CAST, scene=4)
    # Ewan Fraser: 3 mentions with "Ewan" and "Ewan's"; Mhairi 2; then the rest by first mention.
    assert [u.name for u in updates] == ["Ewan Fraser", "Mhairi", "Dr Lachlan", "Annie"]
    assert all(u.kind == "character" and u.detail == "first named in scene 5" for u in updates)


def test_new_name_updates_dedupe_and_a_scene_with_no_new_names() -> None:
    updates = new_name_updates(["Ewan", "ewan", "EWAN", "Ewan"], BIBLE, CAST, scene=0)
    assert [(u.name, u.detail) for u in updates] == [("Ewan", "first named in scene 1")]
    # Lower-case repeats are not names; "Ewan" was first written capitalised.
    assert new_name_updates(["Isla", "Aunt Morag", "Tobias Reid"], BIBLE, CAST, scene=1) == []
    assert new_name_updates([], BIBLE, CAST, scene=1) == []


def test_new_name_updates_merge_into_the_bible() -> None:
    updates = new_name_updates(["Ewan Fraser", "Ewan"], BIBLE, CAST, scene=1)
    merged = merge(BIBLE, updates, scene=1, cast=CAST)
    assert merged.find("Ewan").name == "Ewan Fraser"
    assert new_name_updates(["Ewan"], merged, CAST, scene=2) == []
