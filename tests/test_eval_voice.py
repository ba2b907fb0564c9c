"""Text splitting, point of view, style markers and the transfer score."""

from __future__ import annotations

import pytest

from novelcraft.core.text import dialogue_spans, narrative_text, paragraphs, sentences, windows, words
from novelcraft.metrics.pov import pov_report, sentence_person
from novelcraft.metrics.style import (
    js_similarity,
    punctuation_profile,
    sentence_length_histogram,
    style_markers,
    style_profile,
    style_similarity,
    vocabulary_overlap,
)
from novelcraft.metrics.voice import TRANSFER_WEIGHTS, transfer_score, voice_metrics

FIRST_PERSON = """I walked down to the harbour before dawn. “She never comes here,” he told the boy. “He left her years ago.”

I waited by the wall until the light came. “They are all gone,” she said. My hands were cold and I could not feel my feet.

“You should go home,” he said, and I did not answer him."""

THIRD_PERSON = """Mara climbed the stairs to the lamp room. "I will not leave," she said. "I am the keeper now."

She trimmed the wick and watched the sea. The gulls wheeled over Tom's boat. "We could go tonight," he called up to her.

She did not answer him."""


# --- splitting -------------------------------------------------------------------------------------


def test_words_keep_contractions_and_hyphens_and_drop_italic_marks() -> None:
    assert words("Don’t _ever_ say well-known things, Mr. O'Hara; 1984!") == [
        "don't",
        "ever",
        "say",
        "well-known",
        "things",
        "mr",
        "o'hara",
        "1984",
    ]


def test_sentences_respect_abbreviations_initials_and_speech() -> None:
    text = 'Mr. Darcy met J. Smith at St. Paul\'s. "Stop!" she cried. Why? "Because." He left...\nThen rain.'
    assert sentences(text) == [
        "Mr. Darcy met J. Smith at St. Paul's.",
        '"Stop!" she cried.',
        "Why?",
        '"Because."',
        "He left...",
        "Then rain.",
    ]


def test_paragraphs_by_blank_lines_or_by_lines_when_there_is_no_blank_line() -> None:
    assert paragraphs("One line\nwrapped.\n\n  \nTwo.") == ["One line wrapped.", "Two."]
    assert paragraphs("First.\nSecond.\nThird.") == ["First.", "Second.", "Third."]


def test_dialogue_spans_for_curly_straight_and_single_quotes() -> None:
    text = '“Go,” she said. "Now," he said. ‘Don’t,’ I said, ‘it’s late.’ The boys’ books.'
    spoken = [text[s:e] for s, e in dialogue_spans(text)]
    assert spoken == ["“Go,”", '"Now,"', "‘Don’t,’", "‘it’s late.’"]
    assert narrative_text(text).split() == [
        "she",
        "said.",
        "he",
        "said.",
        "I",
        "said,",
        "The",
        "boys’",
        "books.",
    ]


def test_unclosed_speech_runs_to_the_paragraph_end() -> None:
    text = "“Wait for me, he never\n\nShe left."
    assert [text[s:e] for s, e in dialogue_spans(text)] == ["“Wait for me, he never"]


def test_windows_drop_a_short_tail_but_keep_a_short_text_whole() -> None:
    assert windows(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5]]
    assert windows(list(range(2)), 3) == [[0, 1]]
    assert windows([], 3) == []


# --- point of view -----------------------------------------------------------------------------------


def test_sentence_person_precedence_and_names() -> None:
    assert sentence_person("He gave me the key.") == "first"
    assert sentence_person("You open the door and he follows.") == "second"
    assert sentence_person("They ran.") == "third"
    assert sentence_person("The keeper met Mara.") == "third"  # a name, no pronoun
    assert sentence_person("Mara ran.") is None  # any first word is capitalised
    assert sentence_person("Mara ran.", frozenset({"Mara"})) == "third"
    assert sentence_person("The wind rose.") is None
    assert sentence_person("I'm late.") == "first"


def test_first_person_narrative_with_third_person_dialogue_counts_as_first() -> None:
    report = pov_report(FIRST_PERSON, "first")
    assert report.consistency == 1.0
    assert report.dominant == "first"
    # "They are all gone," she said. is a speech tag; the all-speech sentences are skipped too.
    assert report.classified == 4


def test_third_person_narrative_with_first_person_dialogue_counts_as_third() -> None:
    report = pov_report(THIRD_PERSON, "third")
    assert report.consistency == 1.0
    assert report.shares["first"] == 0.0
    assert pov_report(THIRD_PERSON, "first").consistency == 0.0


def test_pov_drift_lowers_consistency() -> None:
    drifted = FIRST_PERSON + "\n\nMara walked to the boat. The rope was wet. The keeper watched Mara go."
    report = pov_report(drifted, "first")
    # "Mara" opens a sentence but is written mid-sentence too, so it is known as a name.
    assert report.consistency == pytest.approx(4 / 6)
    assert report.shares["third"] == pytest.approx(2 / 6)


# --- style markers and similarity --------------------------------------------------------------------


def test_style_markers_on_a_known_text() -> None:
    text = 'She *ran*. "Stop!" he cried. Was it _over_? You know it was.\n\nThe end came slowly.'
    markers = style_markers(text)
    total = len(words(text))
    assert markers.italics_per_1k == pytest.approx(1000 * 2 / total)
    assert markers.dialogue_share == pytest.approx(1 / total)
    assert markers.exclamation_rate == pytest.approx(1 / 5)  # '"Stop!" he cried.' has a "!"
    assert markers.question_rate == pytest.approx(1 / 5)
    assert markers.second_person_share == pytest.approx(1 / 5)  # 5 sentences with narration, 1 with "you"
    assert markers.mean_sentence_words == pytest.approx(total / 5)
    assert markers.mean_paragraph_words == pytest.approx(total / 2)


def test_scene_break_asterisks_are_not_italics() -> None:
    assert style_markers("He left.\n\n* * *\n\nShe stayed.").italics_per_1k == 0.0


def test_sentence_length_histogram_and_punctuation_profile() -> None:
    text = "One two three. " + " ".join(["Word"] * 12) + ". Short; sharp—done!"
    histogram = sentence_length_histogram(text)
    assert histogram[0] == pytest.approx(2 / 3) and histogram[2] == pytest.approx(1 / 3)
    profile = punctuation_profile(text)
    assert profile["."] == pytest.approx(2 / 5)
    assert profile[";"] == profile["—"] == profile["!"] == pytest.approx(1 / 5)
    assert punctuation_profile("a -- b – c")["—"] == 1.0


def test_js_similarity_bounds() -> None:
    assert js_similarity([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert js_similarity([1, 0], [0, 1]) == pytest.approx(0.0)
    assert 0 < js_similarity([3, 1], [1, 3]) < 1


def test_vocabulary_overlap_is_weighted_jaccard_and_ignores_names_and_function_words() -> None:
    a = {"sea": 0.5, "lamp": 0.5}
    b = {"sea": 0.25, "rope": 0.75}
    assert vocabulary_overlap(a, b) == pytest.approx(0.25 / (0.5 + 0.5 + 0.75))
    assert vocabulary_overlap(a, a) == 1.0
    profile = style_profile("Mara saw the sea. Mara saw the lamp and the sea. Then Mara slept.")
    assert set(profile.vocabulary) == {"saw", "sea", "lamp", "slept"}


def test_identical_style_profiles_transfer_fully() -> None:
    profile = style_profile(FIRST_PERSON)
    similarity = style_similarity(profile, profile)
    assert similarity.vocabulary == similarity.sentence_lengths == similarity.punctuation == 1.0
    assert similarity.markers == pytest.approx(1.0)
    voice = voice_metrics(FIRST_PERSON, "first", profile, "me")
    assert voice.transfer_score == pytest.approx(1.0)


def test_transfer_score_weights_and_missing_pov() -> None:
    assert sum(TRANSFER_WEIGHTS.values()) == pytest.approx(1.0)
    similarity = style_similarity(style_profile(FIRST_PERSON), style_profile(THIRD_PERSON))
    without_pov = transfer_score(similarity, None, None)
    parts = [similarity.vocabulary, similarity.sentence_lengths, similarity.punctuation, similarity.markers]
    weights = [TRANSFER_WEIGHTS[k] for k in ("vocabulary", "sentence_lengths", "punctuation", "markers")]
    assert without_pov == pytest.approx(
        sum(p * w for p, w in zip(parts, weights, strict=True)) / sum(weights)
    )
    # First-person consistency at the human level (0.7) counts as full marks for the pov part.
    assert transfer_score(similarity, 0.7, "first") == pytest.approx(0.2 + 0.8 * without_pov)
    assert transfer_score(similarity, 0.0, "first") == pytest.approx(0.8 * without_pov)
