"""The whole metric set for a text, a book's scenes and a plain file; human prose as a false-positive check."""

from __future__ import annotations

from pathlib import Path

import pytest

from novelcraft.core.text import word_count
from novelcraft.dataprep.gutenberg import to_markdown
from novelcraft.evaluation.table import METRICS
from novelcraft.metrics import (
    book_metrics,
    build_reference,
    flatten,
    load_baselines,
    scene_metrics,
    split_scenes,
    text_metrics,
)
from novelcraft.metrics.chunking import chapter_texts, chunk_by_words, excerpt
from novelcraft.metrics.length import length_score

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "gutenberg"

SCENE = """I climbed the stairs to the lamp room. The glass was cold under my hand.

“You should not be here,” the keeper said. “The storm is coming.”

I watched the sea. The waves broke on the rocks below the tower."""


def numbered_words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


def test_text_metrics_on_a_scene() -> None:
    leaked = SCENE + "\n\nSCENE END STATE: the keeper leaves."
    metrics = text_metrics(leaked, target_words=60, pov="first")
    assert metrics.length.words == word_count(leaked)
    assert metrics.length.score == pytest.approx(length_score(word_count(leaked), 60))
    assert metrics.leaks.count == 1 and metrics.leaks.examples[0].category == "label"
    assert metrics.voice.pov.consistency == 1.0
    assert metrics.attribution is None and metrics.voice.transfer_score is None
    flat = flatten(metrics)
    assert flat["leaks.count"] == 1.0
    assert flat["voice.pov.consistency"] == 1.0
    assert "repetition.rep_4" in flat and "diversity.mtld" in flat and "slop.index" in flat
    assert not any(key.startswith("leaks.examples") for key in flat)


def test_text_metrics_with_a_reference() -> None:
    reference = build_reference(
        [
            ("keeper", "one", SCENE * 3),
            ("clerk", "two", "The clerk counted the coins. He wrote the sums in a ledger. " * 20),
        ],
        chunk_words=50,
    )
    metrics = text_metrics(SCENE, pov="first", reference=reference, author="keeper")
    assert metrics.attribution is not None and metrics.attribution.cosine.nearest == "keeper"
    assert metrics.voice.reference_author == "keeper"
    assert 0.9 < metrics.voice.transfer_score <= 1.0
    other = text_metrics(SCENE, pov="first", reference=reference, author="clerk")
    assert other.voice.transfer_score < metrics.voice.transfer_score
    with pytest.raises(ValueError, match="no reference author"):
        text_metrics(SCENE, reference=reference, author="nobody")


def test_scene_metrics_per_scene_and_aggregated() -> None:
    looping = " ".join(["the rain fell on the roof"] * 20)  # 120 words, mostly repeats
    scenes = [(numbered_words(100), 100), (numbered_words(200), 100), (looping, None)]
    metrics = scene_metrics(scenes)
    assert [s.scene for s in metrics.scenes] == [1, 2, 3]
    assert [s.length_score for s in metrics.scenes] == [pytest.approx(100.0), pytest.approx(200 / 3), None]
    assert metrics.scenes[0].rep_4 == 0.0
    assert metrics.scenes[2].rep_4 == pytest.approx(1 - 6 / 117)
    assert metrics.summary["length_score"].mean == pytest.approx((100 + 200 / 3) / 2)
    assert metrics.summary["rep_4"].max == pytest.approx(1 - 6 / 117)
    assert metrics.summary["words"].min == 100


def test_book_metrics_join_scenes_and_sum_targets() -> None:
    paragraph = "The lamp burned all night while the keeper wrote his long letter home. " * 2
    scenes = [(paragraph, 30), (numbered_words(30), 30), (paragraph, 30)]
    metrics = book_metrics(scenes, pov="third")
    assert metrics.book.length.target_words == 90
    # The same paragraph in scenes 1 and 3 is a book-level duplicate, invisible within a scene.
    assert metrics.book.repetition.duplicate_paragraphs.duplicates == 1
    assert metrics.scenes.summary["duplicate_paragraphs"].max == 0
    assert book_metrics([(paragraph, None)]).book.length.score is None


def test_chunks_chapters_and_excerpts() -> None:
    paras = [numbered_words(300) for _ in range(7)]
    chunks = chunk_by_words("\n\n".join(paras), 800)
    # Three paragraphs (900 words) close a chunk; the last paragraph alone (300 < 400, half a chunk)
    # joins the chunk before it.
    assert [word_count(c) for c in chunks] == [900, 1200]
    assert [word_count(c) for c in chunk_by_words("\n\n".join(paras[:4]), 800)] == [1200]
    markdown = "# Front Matter\n\nContents.\n\n# Chapter 1: Dawn\n\nFirst.\n\n# Chapter 2\n\nSecond."
    assert chapter_texts(markdown) == ["First.", "Second."]
    assert split_scenes(markdown, by="chapters") == ["First.", "Second."]
    assert split_scenes("Just prose.\n\nMore prose.") == ["Just prose.\n\nMore prose."]
    plain = (
        "EMMA\n\nCONTENTS\n\nCHAPTER I\n\nCHAPTER II\n\n"
        "CHAPTER I\n\nEmma Woodhouse, handsome,\nclever, and rich.\n\nShe was the youngest.\n\n"
        "CHAPTER II. IN WHICH A NOTABLE PLAN\nIS DISCUSSED\n\nMr. Weston was a native of Highbury."
    )
    # Title page and contents fall away, hard-wrapped lines are joined, headings are not prose.
    assert chapter_texts(plain) == [
        "Emma Woodhouse, handsome, clever, and rich.\n\nShe was the youngest.",
        "Mr. Weston was a native of Highbury.",
    ]
    middle = excerpt("\n\n".join(f"p{i} " + numbered_words(99) for i in range(10)), 300)
    assert word_count(middle) == 300 and middle.startswith("p3 ")


@pytest.mark.skipif(not CORPUS.exists(), reason="reference corpus not present")
def test_no_leaks_or_duplicates_in_real_novels() -> None:
    """Human prose: the leak patterns must not fire on what real novelists write."""
    for path in sorted(CORPUS.glob("*.txt")):
        markdown, _ = to_markdown(path.read_text(encoding="utf-8"), path.stem)
        text = excerpt("\n\n".join(chapter_texts(markdown)), 5000, where=0.3)
        metrics = text_metrics(text)
        assert metrics.leaks.count == 0, (path.name, metrics.leaks.examples)
        assert metrics.repetition.rep_4 < 0.02, path.name


def test_committed_baselines_use_the_metric_names() -> None:
    baselines = load_baselines()
    assert baselines, "engine/metrics/data/baselines.json is missing: run bench/baselines.py"
    # Cohesion rows (cast, adherence) read their human range from the book level too.
    cohesion_keys = {m.baseline or m.source for m in METRICS if m.level == "cohesion"}
    book_keys = set(flatten(text_metrics(SCENE * 30, pov="first"))) | cohesion_keys
    scene_keys = set(flatten(scene_metrics([(SCENE, 60)])))
    for level, known in (("book", book_keys), ("scene", scene_keys)):
        for key, entry in baselines[level].items():
            assert key in known or key.startswith("voice."), key
            assert entry["min"] <= entry["median"] <= entry["max"], key


def test_empty_text_gives_zeros_not_errors() -> None:
    metrics = text_metrics("", target_words=800, pov="first")
    assert (metrics.length.words, metrics.length.score) == (0, 0.0)
    assert metrics.repetition.rep_4 == 0.0 and metrics.diversity.mtld == 0.0 and metrics.slop.index == 0.0
    assert metrics.voice.pov.consistency is None
    assert scene_metrics([]).summary == {}
    assert book_metrics([]).book.length.target_words is None
