"""Prompt and template leaks: each category is found, clean prose is left alone, strip_leaks cuts."""

from __future__ import annotations

import pytest

from novelcraft.core.leaks import find_leaks, leak_report, strip_leaks

CLEAN_PROSE = """The setting sun lit the chapter house, and the old monks went in to hear the scene read aloud.

"Sure!" said Tom. "Let me know if you see the boat, and I hope this fog lifts by morning."

She had been setting the table for an hour. In the last chapter of her life she would remember the
scene at the harbour, the characters she had met there, and the summary judgment of her aunt: a
setting, she said, fit for a play. Here is the story of the lamp, as the keeper told it, about two
thousand words long in his own hand. The world state of things was grim; nobody spoke of it."""


@pytest.mark.parametrize(
    ("text", "category", "matched"),
    [
        ("She waited.\nSCENE END STATE: Mara stands alone.\nThe tide rose.", "label", "SCENE END STATE:"),
        ("The door shut.\nSETTING: a lighthouse at dusk\nShe climbed.", "label", "SETTING:"),
        ("Setting: a lighthouse at dusk\nShe climbed the stairs.", "label", "Setting:"),
        ("**Scene goal:** Mara finds the letter.\nShe found it.", "label", "**Scene goal:"),
        ("She said nothing. EMOTIONAL BEAT - dread. Then she left.", "label", "EMOTIONAL BEAT"),
        ('She left.\n{"scene_end_state": "alone"}', "label", '{"scene_end_state": "alone"}'),
        ("The world_state was grim.", "label", "world_state"),
        ("NOVEL PROGRESS: 40%\nThe storm broke.", "label", "NOVEL PROGRESS:"),
        ("## The Storm\n\nRain hammered the glass.", "heading", "## The Storm"),
        ("Scene 3: The Cellar\nIt was dark.", "heading", "Scene 3:"),
        ("Chapter 2: The Lamp\n\nThe lamp was out.", "heading", "Chapter 2: The Lamp"),
        ("The lamp went out. [END OF SCENE]", "tag", "[END OF SCENE]"),
        ("[BEGIN APPENDIX]\nNotes follow.", "tag", "[BEGIN APPENDIX]"),
        ("[Scene 3] The cellar was cold.", "tag", "[Scene 3]"),
        ("She slept.<|im_end|>", "tag", "<|im_end|>"),
        ("She wrote the letter in about 800 words of prose.", "budget", "about 800 words"),
        ("Keep each field at most 20 words.", "budget", "at most 20 words"),
        ("Sure! Here is the scene you asked for.\n\nThe boat left.", "chat", "Sure! Here"),
        ("Here's the next scene:\n\nThe boat left.", "chat", "Here's the next scene"),
        ("As an AI, I cannot write that.", "chat", "As an AI"),
        ("The boat left.\n\nI hope this captures the mood you wanted.", "chat", "I hope this captures"),
        ("The boat left.\n\nLet me know if you would like changes.", "chat", "Let me know if"),
    ],
)
def test_each_category_is_found(text: str, category: str, matched: str) -> None:
    hits = find_leaks(text)
    assert [h.category for h in hits] == [category], hits
    assert hits[0].text == matched
    assert text[hits[0].start : hits[0].end].strip() == matched
    assert hits[0].line == text[: hits[0].start].count("\n") + 1


def test_clean_literary_prose_has_no_leaks() -> None:
    assert find_leaks(CLEAN_PROSE) == []


def test_chat_filler_inside_quoted_speech_is_prose() -> None:
    text = "“Sure! Here is the story you wanted,” she said. ‘As an AI,’ he joked, ‘I cannot.’"
    assert find_leaks(text) == []


def test_hits_report_line_and_category_counts() -> None:
    text = "RUNNING SUMMARY\nSCENE GOAL: find it\n\nThe boat left the harbour.\n[END]"
    hits = find_leaks(text)
    assert [(h.line, h.category) for h in hits] == [(1, "label"), (2, "label"), (5, "tag")]
    report = leak_report(text, word_total=10)
    assert report.count == 3
    assert report.by_category == {"label": 2, "tag": 1}
    assert report.per_1k_words == pytest.approx(300.0)


def test_strip_leaks_cuts_leaked_lines_and_inline_tags() -> None:
    text = (
        "Sure! Here is the scene.\n\n"
        "SCENE GOAL: Mara finds the letter.\n"
        "Mara climbed the stairs. [END SCENE]\n\n"
        "The lamp was cold.\n"
        "EMOTIONAL BEAT: dread"
    )
    clean, hits = strip_leaks(text)
    assert clean == "Mara climbed the stairs.\n\nThe lamp was cold."
    assert [h.category for h in hits] == ["chat", "label", "tag", "label"]
    assert find_leaks(clean) == []


def test_strip_leaks_leaves_clean_text_unchanged() -> None:
    assert strip_leaks(CLEAN_PROSE) == (CLEAN_PROSE, [])
