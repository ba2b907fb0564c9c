"""Burrows' and cosine Delta, the reference corpus, and its cache."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import novelcraft.metrics.reference as reference_module
from novelcraft.metrics.attribution import (
    ChunkCounts,
    ReferenceCorpus,
    attribute,
    build_corpus,
    burrows_delta,
    cosine_delta,
    fit_delta,
    z_scores,
)
from novelcraft.metrics.reference import book_label, load_reference

# Two made-up "authors" that differ only in how often they use a few function words.
HABITS = {
    "ann": {"the": 8, "of": 5, "and": 4, "a": 1, "to": 2, "but": 1, "sea": 2, "lamp": 2, "rope": 2},
    "bob": {"the": 3, "of": 1, "and": 2, "a": 6, "to": 5, "but": 4, "sea": 2, "lamp": 2, "rope": 2},
}


def sample_text(author: str, n_words: int, seed: int) -> str:
    rng = random.Random(seed)
    vocabulary, weights = zip(*HABITS[author].items(), strict=True)
    return " ".join(rng.choices(vocabulary, weights, k=n_words))


def test_delta_is_zero_for_identical_profiles_and_symmetric() -> None:
    a, b = [0.5, -1.0, 2.0], [1.5, 0.0, -1.0]
    assert burrows_delta(a, a) == 0.0
    assert cosine_delta(a, a) == pytest.approx(0.0)
    assert burrows_delta(a, b) == burrows_delta(b, a) == pytest.approx((1 + 1 + 3) / 3)
    assert cosine_delta(a, b) == pytest.approx(cosine_delta(b, a))
    assert cosine_delta([1, 0], [0, 1]) == pytest.approx(1.0)
    assert cosine_delta([1, 0], [-1, 0]) == pytest.approx(2.0)


def test_z_scores_and_book_balanced_centroids() -> None:
    def chunk(author: str, title: str, x: int, y: int) -> ChunkCounts:
        return ChunkCounts(author=author, title=title, tokens=10, counts=[x, y])

    corpus = ReferenceCorpus(
        chunk_words=10,
        vocabulary=["x", "y"],
        chunks=[
            chunk("a", "a1", 4, 1),
            chunk("a", "a2", 2, 3),
            chunk("a", "a2", 2, 3),
            chunk("b", "b1", 0, 5),
        ],
    )
    model = fit_delta(corpus, n_features=2)
    assert model.features == ["y", "x"]  # by mean share: y 0.3, x 0.2
    assert model.means == pytest.approx([0.3, 0.2])
    sd = (0.08 / 3) ** 0.5  # sample deviation over the four chunks
    assert model.stds == pytest.approx([sd, sd])
    # Author a: the mean of book a1 (z = ±0.2/sd) and book a2 (z = 0), not of its three chunks.
    assert model.centroids["a"] == pytest.approx([-0.1 / sd, 0.1 / sd])
    assert model.centroids["b"] == pytest.approx([0.2 / sd, -0.2 / sd])
    assert z_scores(["x", "x", "y", "y", "y"], model) == pytest.approx([(0.6 - 0.3) / sd, (0.4 - 0.2) / sd])
    held_out = fit_delta(corpus, n_features=2, exclude_titles=["a1"])
    assert set(held_out.centroids) == {"a", "b"} and held_out.means == pytest.approx([11 / 30, 4 / 30])


def test_nearest_author_on_made_up_authors() -> None:
    books = [
        (author, f"{author}{i}", sample_text(author, 3000, seed=i)) for author in HABITS for i in range(2)
    ]
    corpus = build_corpus(books, chunk_words=500)
    assert len(corpus.chunks) == 4 * 6
    model = fit_delta(corpus, n_features=9)
    for author in HABITS:
        result = attribute(sample_text(author, 2000, seed=99), model)
        assert result.burrows.nearest == author and result.cosine.nearest == author
        assert result.burrows.margin > 0 and result.cosine.margin > 0
        other = next(a for a in HABITS if a != author)
        assert result.burrows.margin == pytest.approx(
            result.burrows.distances[other] - result.burrows.distances[author]
        )


def test_build_corpus_keeps_a_short_book_as_one_chunk_and_drops_tails() -> None:
    corpus = build_corpus([("ann", "short", "the sea " * 100), ("bob", "long", "a rope " * 1100)], 1000)
    assert [(c.title, c.tokens) for c in corpus.chunks] == [("short", 200), ("long", 1000), ("long", 1000)]


def test_book_label_from_corpus_file_names() -> None:
    assert book_label(Path("dickens_-_bleak_house.txt")) == ("dickens", "bleak_house")
    assert book_label(Path("notes.txt")) == ("unknown", "notes")


def test_reference_is_cached_and_rebuilt_when_a_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = []
    for author in HABITS:
        path = tmp_path / f"{author}_-_book.txt"
        path.write_text(sample_text(author, 800, seed=1), encoding="utf-8")
        paths.append(path)
    cache = tmp_path / "cache"
    built = load_reference(paths, cache_dir=cache, chunk_words=200)
    assert len(list(cache.glob("reference-*.json"))) == 1
    assert built.authors() == ["ann", "bob"] and set(built.styles) == {"ann", "bob"}

    def no_rebuild(*args: object, **kwargs: object) -> None:
        raise AssertionError("rebuilt although cached")

    monkeypatch.setattr(reference_module, "build_reference", no_rebuild)
    cached = load_reference(paths, cache_dir=cache, chunk_words=200)
    assert cached.corpus == built.corpus and cached.styles == built.styles
    assert cached.delta_model(5) == built.delta_model(5)
    paths[0].write_text(sample_text("ann", 800, seed=2), encoding="utf-8")
    with pytest.raises(AssertionError, match="rebuilt"):
        load_reference(paths, cache_dir=cache, chunk_words=200)
