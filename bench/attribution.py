"""Authorship attribution on the reference corpus, each book held out of the reference in turn.

    .venv/bin/python bench/attribution.py [--corpus DIR] [--features 300 150 500] [--excerpt 10000]

For every book: a 10,000-word excerpt from its middle, Delta fitted on the other books only, and the
nearest author by Burrows' and cosine Delta with its margin. The cases that count are the books whose
author has another book in the corpus; target: the right author for at least 9 of the 11.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from novelcraft.core.text import words
from novelcraft.dataprep.gutenberg import to_markdown
from novelcraft.metrics.attribution import Attribution, attribute, build_corpus, fit_delta
from novelcraft.metrics.chunking import chapter_texts, excerpt
from novelcraft.metrics.reference import book_label

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "gutenberg"


def corpus_books(directory: Path) -> list[tuple[str, str, str]]:
    """(author, title, prose) for each Gutenberg file: boilerplate stripped, chapter bodies only."""
    books = []
    for path in sorted(directory.glob("*.txt")):
        author, title = book_label(path)
        markdown, _ = to_markdown(path.read_text(encoding="utf-8"), title)
        books.append((author, title, "\n\n".join(chapter_texts(markdown))))
    return books


def held_out_runs(
    books: list[tuple[str, str, str]], n_features: int, excerpt_words: int, where: float = 0.5
) -> list[tuple[str, str, int, Attribution]]:
    """Attribution of an excerpt of each book with Delta fitted on the other books only. The stored
    vocabulary (top 1,000 words) is built once over all books; the N features are then picked from
    the remaining books alone, and N ≤ 500 ≪ 1,000 keeps the held-out book out of that choice."""
    corpus = build_corpus(books)
    runs = []
    for author, title, text in books:
        tokens = words(excerpt(text, excerpt_words, where))[:excerpt_words]
        model = fit_delta(corpus, n_features, exclude_titles=[title])
        runs.append((author, title, len(tokens), attribute(tokens, model)))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--features", type=int, nargs="+", default=[300, 150, 500])
    parser.add_argument("--excerpt", type=int, default=10_000)
    parser.add_argument("--where", type=float, default=0.5, help="excerpt centre: 0 start, 1 end")
    args = parser.parse_args()

    started = time.perf_counter()
    books = corpus_books(args.corpus)
    book_count = {a: sum(1 for b, _, _ in books if b == a) for a, _, _ in books}
    print(
        f"{len(books)} books by {len(book_count)} authors, prepared in {time.perf_counter() - started:.1f}s\n"
    )
    for n, n_features in enumerate(args.features):
        runs = held_out_runs(books, n_features, args.excerpt, args.where)
        counted = [(a, r) for a, _, _, r in runs if book_count[a] > 1]
        burrows = sum(r.burrows.nearest == a for a, r in counted)
        cosine = sum(r.cosine.nearest == a for a, r in counted)
        if n == 0:
            print(
                f"N = {n_features} most frequent words, {args.excerpt}-word excerpts centred at {args.where}\n"
            )
            print("| book | author | words | Burrows nearest | margin | cosine nearest | margin |")
            print("|---|---|---:|---|---:|---|---:|")
            for author, title, n_words, r in runs:
                mark = "" if book_count[author] > 1 else " (only book)"
                print(
                    f"| {title}{mark} | {author} | {n_words} | {_call(r.burrows.nearest, author)} | "
                    f"{r.burrows.margin:.3f} | {_call(r.cosine.nearest, author)} | {r.cosine.margin:.3f} |"
                )
            print()
        wrong = [
            f"{t} ({r.burrows.nearest}/{r.cosine.nearest})"
            for a, t, _, r in runs
            if book_count[a] > 1 and (r.burrows.nearest != a or r.cosine.nearest != a)
        ]
        print(
            f"N = {n_features}: right author {burrows}/{len(counted)} (Burrows), {cosine}/{len(counted)} (cosine)"
            + (f"; missed: {', '.join(wrong)}" if wrong else "")
        )
    print(f"\ntotal {time.perf_counter() - started:.1f}s")


def _call(nearest: str, author: str) -> str:
    return nearest if nearest == author else f"**{nearest}** ✗"


if __name__ == "__main__":
    main()
