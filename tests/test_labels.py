"""Labels the model makes up at a paragraph's start ("LAST TIME:", "WEARING:", "Unreserved:"): found,
counted as label leaks, cut down to the text after them; prose with an early colon left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.core.leaks import find_leaks, leak_report, strip_leaks
from novelcraft.core.text import strip_gutenberg
from novelcraft.drafting.guard import guard_chunk

GUTENBERG = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "gutenberg"


def invented(text: str) -> list[str]:
    return [h.text for h in find_leaks(text) if h.rule == "invented_label"]


# The issue's examples, as SmolLM2-135M wrote them at a paragraph's start.
@pytest.mark.parametrize(
    ("text", "label", "clean"),
    [
        (
            "LAST TIME: Isla had locked the lamp room and hidden the key.",
            "LAST TIME:",
            "Isla had locked the lamp room and hidden the key.",
        ),
        ("WEARING: a grey oilskin, wet to the knees.", "WEARING:", "A grey oilskin, wet to the knees."),
        (
            "Unreserved: she told him everything about the letter.",
            "Unreserved:",
            "She told him everything about the letter.",
        ),
        # A word in capitals before a title, from the lighthouse book on the event floor.
        (
            "MAGNESIS The Keeper of Gannarts: a young woman with a lamp.",
            "MAGNESIS The Keeper of Gannarts:",
            "A young woman with a lamp.",
        ),
    ],
)
def test_the_issue_examples_are_caught_and_cut_to_their_text(text: str, label: str, clean: str) -> None:
    hits = find_leaks(text)
    assert [(h.category, h.rule, h.text) for h in hits] == [("label", "invented_label", label)]
    assert text[hits[0].start : hits[0].end].strip() == label
    assert strip_leaks(text) == (clean, hits)


@pytest.mark.parametrize(
    ("text", "label", "clean"),
    [
        # After a blank line, and after a line that ended a sentence (models often use one newline).
        (
            "The boat left.\n\nWEARING: a coat.\n\nShe waited.",
            "WEARING:",
            "The boat left.\n\nA coat.\n\nShe waited.",
        ),
        ("The boat left.\nNOTE TO SELF: the key.", "NOTE TO SELF:", "The boat left.\nThe key."),
        # Title Case labels of two or three words, with a lower-case connector inside.
        ("Last Time: Isla slept.", "Last Time:", "Isla slept."),
        ("State of Play: the lamp is out.", "State of Play:", "The lamp is out."),
        # Capitals run longer ("LAST TIME I WAS ABOUT INCIDENT:", the default model on stories/orchard.yaml).
        (
            "LAST TIME I WAS ABOUT INCIDENT: Ruth has met it.",
            "LAST TIME I WAS ABOUT INCIDENT:",
            "Ruth has met it.",
        ),
        # Four words: the book's own title as a label (the default model on stories/lighthouse.yaml).
        ("The Keeper of Gannets: she climbed the stair.", "The Keeper of Gannets:", "She climbed the stair."),
        # A script-like speaker label is a leak in a novel too; the speech stays.
        ('Tobias: "Come here, Isla."', "Tobias:", '"Come here, Isla."'),
        ("Mr. Reid: come up the stair.", "Mr. Reid:", "Come up the stair."),
        ("Tobias: nothing had changed on the rock.", "Tobias:", "Nothing had changed on the rock."),
        # Markdown around the label goes with it.
        ("**WEARING:** a grey coat.", "**WEARING:**", "A grey coat."),
        # One label line after another: the second opens its own line although the first ends mid-phrase.
        ("LAST TIME: the lamp\nWEARING: a coat", "LAST TIME:", "The lamp\nA coat"),
    ],
)
def test_label_shapes_at_a_paragraph_or_line_start(text: str, label: str, clean: str) -> None:
    assert invented(text)[0] == label
    assert strip_leaks(text)[0] == clean
    assert find_leaks(strip_leaks(text)[0]) == []


# Lines from Gutenberg novels (their first line as it stands, at a paragraph's start), each with a
# colon in its first words: prose, not labels.
NOVEL_LINES = [
    "No: whatever might have been the general’s crimes, he had certainly too",  # Northanger Abbey
    "The carriage came: and Mr. Woodhouse, always the first object on such",  # Emma
    "Isabella corroborated it: “My dearest Catherine, you cannot form an",  # Northanger Abbey
    "She did:  he was satisfied, and said no more.  But the remembrance of",  # Persuasion
    "Thursday came: all work had been completed the previous evening;",  # Jane Eyre
    "Business now began: the day’s Collect was repeated, then certain texts",  # Jane Eyre
    "Something creaked: it was a door ajar; and that door was Mr.",  # Jane Eyre
    "I looked: I saw a woman attired like a well-dressed servant, matronly,",  # Jane Eyre
    "Alice said nothing: she had never been so much contradicted in her life",  # Alice in Wonderland
    "MARLEY was dead: to begin with. There is no doubt",  # A Christmas Carol
    "I said: ‘Yes, ma’am.’",  # David Copperfield
    "Oliver: who was completely stupified by the unwonted exercise, and the",  # Oliver Twist
    "Mr. Noah Claypole: receiving a free pardon from the Crown in",  # Oliver Twist
    "Stave III: The Second of the Three Spirits",  # A Christmas Carol (a heading, not a label)
]
OTHER_PROSE = [
    "She knew one thing: the light was out.",
    "At 10:30 the boat came round the point.",
    "Dear Sir: I write to you from the rock.",
    "My dear Madam: the letter came this morning.",
    "Listen: the tide is on the turn.",
    # A hard-wrapped book's line that carries on its paragraph after "Mrs." is no paragraph start.
    "“You ought to be aware, Miss, that you are under obligations to Mrs.\nReed: she keeps you: if she were to",
]


@pytest.mark.parametrize("line", NOVEL_LINES + OTHER_PROSE)
def test_prose_with_an_early_colon_is_not_a_label(line: str) -> None:
    assert invented("The tide rose.\n\n" + line) == []
    assert invented(line) == []


def test_a_line_inside_quoted_speech_is_not_a_label() -> None:
    # Hard-wrapped speech (the text has blank lines, so a single newline does not end the paragraph).
    assert invented("The tide rose.\n\n“Well, then.\nTobias: he said it was his.”") == []


def test_a_known_label_keeps_its_own_rule_and_scope() -> None:
    # "Setting:" is a known label: the whole line goes, as before, and it is counted once.
    hits = find_leaks("Setting: a lighthouse at dusk\nShe climbed the stairs.")
    assert [h.rule for h in hits] == ["line_start_label"]
    assert strip_leaks("SCENE GOAL: Mara finds it.\nShe climbed.")[0] == "She climbed."


def test_the_leak_metric_counts_them_as_labels() -> None:
    text = "LAST TIME: the keeper slept.\n\nWEARING: oilskins.\n\nUnreserved: she spoke.\n\nThe boat came."
    report = leak_report(text, word_total=11)
    assert report.count == 3
    assert report.by_category == {"label": 3}


def test_the_guard_cuts_the_label_and_keeps_the_paragraph() -> None:
    chunk = "The boat came at dawn, low in the water.\n\nWEARING: a grey oilskin, wet to the knees."
    guarded = guard_chunk(chunk, [])
    assert guarded.text == "The boat came at dawn, low in the water.\n\nA grey oilskin, wet to the knees."
    assert [(c.kind, c.text) for c in guarded.cuts] == [("leak", "WEARING:")]


NOVELS = ["austen_-_pride_and_prejudice.txt", "bronte_-_jane_eyre.txt", "dickens_-_oliver_twist.txt"]


@pytest.mark.skipif(not GUTENBERG.is_dir(), reason="no Gutenberg corpus here")
@pytest.mark.parametrize("name", NOVELS)
def test_whole_novels_have_no_invented_labels(name: str) -> None:
    text = strip_gutenberg((GUTENBERG / name).read_text(encoding="utf-8"))
    assert invented(text) == []


def test_talk_to_the_writer_and_a_line_of_capitals_are_leaks():
    from novelcraft.core.leaks import find_leaks

    text = (
        "FADE OUT OF THE LYING BOOKS:\n\nThis scene is a stark contrast to the rest of the story, but also an"
        " opportunity for you to further develop your characters.\n\nThis scene was as silent as a picture."
    )
    hits = find_leaks(text)
    assert [h.rule for h in hits][:2] == ["upper_label_line", "meta_narration"]
    assert all("silent" not in h.text for h in hits)


def test_a_note_on_how_the_scene_was_written_is_a_leak():
    from novelcraft.core.leaks import find_leaks, strip_leaks

    note = (
        "The scene has been written as a continuation of the narrative in a style reminiscent of the"
        " original, with the same characters."
    )
    prose = "The lamp was lit by nine. She wrote the hour in the log book, in her father's hand."
    text = f"{note}\n\n{prose}"
    hits = find_leaks(text)
    assert hits and {h.line for h in hits} == {1}
    assert {h.category for h in hits} == {"meta"}
    assert strip_leaks(text)[0].strip() == prose


@pytest.mark.skipif(not GUTENBERG.is_dir(), reason="no Gutenberg corpus here")
@pytest.mark.parametrize("name", NOVELS)
def test_whole_novels_have_no_notes_on_their_writing(name: str) -> None:
    from novelcraft.core.leaks import find_leaks

    text = strip_gutenberg((GUTENBERG / name).read_text(encoding="utf-8"))
    assert [h.text for h in find_leaks(text) if h.rule == "meta_narration"] == []


@pytest.mark.parametrize(
    "label", ["AUTONOMY:", "GIDEON HALE (LOCAL STORIES):", "FADE OUT OF THE LYING BOOKS:"]
)
def test_a_line_of_capitals_and_a_colon_alone_is_a_label(label: str) -> None:
    """The default model's headings for what follows (stories/orchard.yaml), a word or several."""
    text = f"The wall broke.\n\n{label}\n\nThe sea came in."
    assert [h.rule for h in find_leaks(text)] == ["upper_label_line"]
    assert strip_leaks(text)[0] == "The wall broke.\n\nThe sea came in."


def test_title_case_runs_past_four_words_are_prose() -> None:
    assert invented("The Rule of the Old Sea House: none broke it.") == []
