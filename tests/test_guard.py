"""The repetition guard on constructed chunks: what it cuts and what it must keep."""

from __future__ import annotations

from novelcraft.drafting.guard import book_paragraphs_of, clean_tail, drop_restart, guard_chunk

EARLIER = (
    "The lamp room smelled of paraffin and salt. Isla trimmed the wick twice before the light caught.\n\n"
    "Outside, the gannets wheeled over the rock and the swell broke white against the landing stage."
)


def kinds(guarded) -> list[str]:
    return [c.kind for c in guarded.cuts]


def test_a_paragraph_already_written_is_cut_and_new_ones_kept():
    new = "Tobias came up the iron stair with the mail bag on his shoulder, wet to the knees."
    chunk = (
        "Outside, the gannets wheeled over the rock and the swell broke white against the landing stage.\n\n"
        + new
    )
    guarded = guard_chunk(chunk, [EARLIER])
    assert guarded.text == new
    assert kinds(guarded) == ["paragraph"]


def test_a_sentence_repeating_a_long_phrase_is_a_loop():
    chunk = (
        "She climbed to the gallery. Isla trimmed the wick twice before the light caught, and waited. "
        "The wind had turned to the north-east by midnight."
    )
    guarded = guard_chunk(chunk, [EARLIER])
    assert "trimmed the wick" not in guarded.text
    assert guarded.text == "She climbed to the gallery. The wind had turned to the north-east by midnight."
    assert kinds(guarded) == ["loop"]


def test_a_chunk_that_is_mostly_repeats_keeps_only_what_came_before_the_loop():
    looped = " ".join(
        ["A gull screamed once."]
        + ["Isla trimmed the wick twice before the light caught, she said."] * 2
        + ["The lamp room smelled of paraffin and salt and of old rope."] * 2
        + ["Then the boat came."]
    )
    guarded = guard_chunk(looped, [EARLIER])
    assert guarded.text == "A gull screamed once."


def test_the_book_title_as_a_line_of_prose_is_cut_anywhere_in_the_book():
    written = book_paragraphs_of([EARLIER], headings=["The Keeper of Gannet Rock", "Cut Off"])
    chunk = "The Keeper of Gannet Rock\n\nCut off.\n\nThe supply boat was three days late."
    guarded = guard_chunk(chunk, [], book_paragraphs=written)
    assert guarded.text == "The supply boat was three days late."
    assert kinds(guarded) == ["paragraph", "paragraph"]


def test_a_paragraph_from_many_scenes_back_is_cut_through_the_book_paragraphs():
    far_back = book_paragraphs_of([EARLIER])
    chunk = "The lamp room smelled of paraffin and salt. Isla trimmed the wick twice before the light caught."
    # Not in the recent scenes, so only the book's paragraphs know it was written.
    assert guard_chunk(chunk, [], book_paragraphs=far_back).text == ""
    assert guard_chunk(chunk, []).text == chunk


def test_short_paragraphs_said_twice_already_are_a_list_not_prose():
    names = "\n\n".join(["Morag Mackay", "Tobias Reid"] * 4)
    guarded = guard_chunk(names, [])
    assert guarded.text.split("\n\n") == ["Morag Mackay", "Tobias Reid", "Morag Mackay", "Tobias Reid"]
    assert kinds(guarded) == ["paragraph"] * 4


def test_short_dialogue_lines_may_repeat():
    chunk = '"Yes."\n\n"No."\n\n"Yes."\n\n"No."\n\n"Yes."'
    assert guard_chunk(chunk, []).text == chunk


def test_leaked_prompt_text_is_cut():
    chunk = "Here is the scene:\n\nThe boat came at dawn, low in the water."
    guarded = guard_chunk(chunk, [])
    assert "Here is the scene" not in guarded.text and "The boat came at dawn" in guarded.text
    assert "leak" in kinds(guarded)


def test_a_continuation_restating_the_end_of_the_scene_loses_the_restated_words():
    head = "She set the letter down. The light turned above her, slow and white."
    rest, cut = drop_restart(head, "The light turned above her, slow and white. Then the telegraph clicked.")
    assert rest == "Then the telegraph clicked."
    assert cut is not None and cut.kind == "restart"
    assert drop_restart(head, "Then the telegraph clicked.") == ("Then the telegraph clicked.", None)


def test_a_chunk_cut_off_mid_sentence_ends_at_its_last_full_sentence():
    assert clean_tail("The boat came. It was low in the wat") == "The boat came."
    assert clean_tail("No sentence end at all") == "No sentence end at all"


def test_narration_about_the_scene_or_story_is_cut_and_speech_about_it_kept():
    chunk = (
        "Isla climbed to the gallery. The scene ended on a note of determination.\n\n"
        "In the next scene, the storm would rise to meet her. Tobias waited below.\n\n"
        '"Tell me the story again," Morag said.'
    )
    guarded = guard_chunk(chunk, [EARLIER])
    assert guarded.text == (
        'Isla climbed to the gallery.\n\nTobias waited below.\n\n"Tell me the story again," Morag said.'
    )
    assert [(c.kind, c.text) for c in guarded.cuts] == [
        ("meta", "The scene ended on a note of determination."),
        ("meta", "In the next scene, the storm would rise to meet her."),
    ]
