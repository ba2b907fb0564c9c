"""The deterministic metrics on constructed texts whose answers are known by hand."""

from __future__ import annotations

import pytest

from novelcraft.core.text import words
from novelcraft.metrics.diversity import mattr, mtld
from novelcraft.metrics.length import length_score
from novelcraft.metrics.repetition import (
    distinct_n,
    duplicate_paragraphs,
    rep_n,
    repeated_openings,
    windowed_distinct_n,
    windowed_rep_n,
)
from novelcraft.metrics.slop import load_slop_list, slop_report


def distinct_words(n: int, prefix: str = "w") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


# --- length -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "target", "expected"),
    [
        (800, 800, 100.0),
        (1600, 800, 200 / 3),
        (400, 800, 50.0),
        (3200, 800, 0.0),
        (5000, 800, 0.0),
        (0, 800, 0.0),
    ],
)
def test_length_score_at_the_formula_points(output: int, target: int, expected: float) -> None:
    assert length_score(output, target) == pytest.approx(expected)


def test_length_score_falls_slower_above_target_than_below() -> None:
    assert length_score(1200, 800) > length_score(800 * 800 // 1200, 800)
    assert length_score(1200, 800) == pytest.approx(100 * (1 - 0.5 / 3))


def test_length_score_rejects_a_missing_target() -> None:
    with pytest.raises(ValueError):
        length_score(100, 0)


# --- repetition -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 4])
def test_rep_n_of_a_text_repeated_twice(n: int) -> None:
    # m distinct words twice: 2m − n + 1 n-grams, of which m are distinct (the m starting positions
    # of the first copy; every n-gram of the second copy repeats one of them).
    m = 10
    tokens = distinct_words(m) * 2
    assert rep_n(tokens, n) == pytest.approx(1 - m / (2 * m - n + 1))
    assert distinct_n(tokens, n) == pytest.approx(m / (2 * m - n + 1))


def test_rep_n_is_zero_without_repeats_and_without_ngrams() -> None:
    assert rep_n(distinct_words(50), 4) == 0.0
    assert rep_n(["one", "two"], 4) == 0.0
    assert distinct_n([], 1) == 1.0


def test_windowed_rep_n_averages_equal_windows_and_drops_the_tail() -> None:
    looped = distinct_words(250, "a") * 2  # window 1: 250 words twice
    fresh = distinct_words(500, "b")  # window 2: nothing repeats
    tail = distinct_words(100, "c") * 3  # shorter than a window after full ones: left out
    tokens = looped + fresh + tail
    assert windowed_rep_n(tokens, 4, 500) == pytest.approx((1 - 250 / 497) / 2)
    assert windowed_distinct_n(looped + fresh, 1, 500) == pytest.approx((0.5 + 1.0) / 2)


def test_windowed_rep_n_of_a_short_text_is_its_plain_rep_n() -> None:
    tokens = distinct_words(30) * 2
    assert windowed_rep_n(tokens, 3, 500) == pytest.approx(rep_n(tokens, 3))


def test_duplicate_paragraphs_after_normalising_case_and_spaces() -> None:
    text = (
        "The rain fell on the old harbour.\n\n"
        "She walked to the end of the pier.\n\n"
        "* * *\n\n"
        "the rain  fell on the\nOLD harbour.\n\n"
        "Yes.\n\nYes.\n\n"
        "She walked to the end of the pier.\n\n"
        "Nothing else happened that night at all."
    )
    found = duplicate_paragraphs(text)
    assert found.paragraphs == 5  # "* * *" and the one-word "Yes." are too short to count
    assert found.duplicates == 2
    assert found.share == pytest.approx(0.4)
    assert found.examples == ["the rain fell on the OLD harbour.", "She walked to the end of the pier."]


def test_repeated_openings_within_a_window() -> None:
    text = (
        "She felt the cold. She felt the wind. He ran. She felt the rain on her face. "
        "Then the door opened. Then the door closed."
    )
    two = repeated_openings(text, 2)
    assert (two.sentences, two.repeats) == (6, 3)
    assert two.top[0] == ("she felt", 3)
    three = repeated_openings(text, 3)
    # "He ran." has two words, too short for a 3-word opening.
    assert (three.sentences, three.repeats) == (5, 3)
    assert three.top == [("she felt the", 3), ("then the door", 2)]


def test_repeated_openings_reset_at_each_window() -> None:
    text = "She felt the cold. She felt the wind. She felt the rain."
    # A window of 4 words closes after every sentence: no opening repeats inside one.
    assert repeated_openings(text, 2, window=4).repeats == 0
    assert repeated_openings(text, 2, window=500).repeats == 2


# --- diversity ------------------------------------------------------------------------------------


def test_mattr_exact_values() -> None:
    assert mattr(["a", "b", "a", "b"], window=2) == pytest.approx(1.0)
    assert mattr(["a", "b", "a", "b"], window=3) == pytest.approx(2 / 3)
    # Shorter than the window: plain type-token ratio.
    assert mattr(["a", "b", "a", "c"], window=500) == pytest.approx(3 / 4)


def test_mattr_low_for_constant_text_and_high_for_varied_text() -> None:
    assert mattr(["the"] * 1200) == pytest.approx(1 / 500)
    assert mattr(distinct_words(1200)) == pytest.approx(1.0)


def test_mtld_exact_on_an_alternating_text() -> None:
    # Forward: "a b a" reaches TTR 2/3 ≤ 0.72 (one factor), "b a b" another: 6 tokens / 2 factors.
    assert mtld(["a", "b"] * 3) == pytest.approx(3.0)


def test_mtld_low_for_constant_text_and_high_for_varied_text() -> None:
    assert mtld(["the"] * 1000) == pytest.approx(2.0)
    varied = distinct_words(1000)
    assert mtld(varied) == pytest.approx(1000.0)
    half = distinct_words(50) * 20
    assert 2.0 < mtld(half) < mtld(varied)


# --- slop -------------------------------------------------------------------------------------------


def test_slop_index_counts_weighted_whole_word_hits() -> None:
    text = (
        "She felt a palpable tension. It was a testament to her nerve; she couldn’t help but smile. "
        "Tapestry. The palpably odd delver did not delve-dive."
    )
    report = slop_report(text)
    phrases = load_slop_list()
    expected = (
        phrases["palpable"] + phrases["testament to"] + phrases["couldn't help but"] + phrases["tapestry"]
    )
    assert report.hits == 4  # "palpably", "delver" and "delve-dive" are other words
    assert report.weighted_hits == pytest.approx(expected)
    assert report.index == pytest.approx(1000 * expected / len(words(text)))


def test_slop_list_from_text_and_multiword_phrases_across_line_breaks() -> None:
    custom = load_slop_list("# comment\nshivers down her spine\t3\nnod\t1\n")
    text = "It sent shivers down\nher spine. She gave a nod, then another nod. Nodding."
    report = slop_report(text, custom)
    assert dict(report.top) == {"shivers down her spine": 1, "nod": 2}
    assert report.weighted_hits == 5


def test_packaged_slop_list_size_and_weights() -> None:
    phrases = load_slop_list()
    assert 60 <= len(phrases) <= 140
    assert all(1 <= w <= 3 for w in phrases.values())
