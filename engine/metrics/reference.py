"""Reference authors for attribution and voice: built from book files once, then read from a JSON cache.

Tokenising the 14 MB corpus takes seconds; the cache (keyed by the files' bytes and the parameters)
makes every later `eval` start from ~1 MB of JSON instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import BaseModel, PrivateAttr

from novelcraft.core.files import write_atomic
from novelcraft.metrics.attribution import (
    CHUNK_WORDS,
    DEFAULT_FEATURES,
    VOCABULARY_STORED,
    DeltaModel,
    ReferenceCorpus,
    build_corpus,
    fit_delta,
)
from novelcraft.metrics.style import StyleProfile, style_profile

# Bump when what a cache file holds changes meaning, so old caches are rebuilt, not misread.
CACHE_VERSION = 1


class Reference(BaseModel):
    corpus: ReferenceCorpus
    styles: dict[str, StyleProfile]
    _models: dict[tuple[int, tuple[str, ...]], DeltaModel] = PrivateAttr(default_factory=dict)

    def authors(self) -> list[str]:
        return self.corpus.authors()

    def delta_model(
        self, n_features: int = DEFAULT_FEATURES, exclude_titles: Iterable[str] = ()
    ) -> DeltaModel:
        key = (n_features, tuple(sorted(exclude_titles)))
        if key not in self._models:
            self._models[key] = fit_delta(self.corpus, n_features, key[1])
        return self._models[key]


def book_label(path: Path) -> tuple[str, str]:
    """(author, title) from a corpus file name `author_-_title.ext`; ("unknown", stem) otherwise."""
    author, sep, title = path.stem.partition("_-_")
    return (author, title) if sep else ("unknown", path.stem)


def build_reference(
    books: Iterable[tuple[str, str, str]],
    chunk_words: int = CHUNK_WORDS,
    vocabulary_size: int = VOCABULARY_STORED,
) -> Reference:
    """(author, title, text) books → chunk counts for Delta and one style profile per author."""
    books = list(books)
    texts_by_author: dict[str, list[str]] = {}
    for author, _, text in books:
        texts_by_author.setdefault(author, []).append(text)
    return Reference(
        corpus=build_corpus(books, chunk_words, vocabulary_size),
        styles={
            author: style_profile("\n\n".join(texts)) for author, texts in sorted(texts_by_author.items())
        },
    )


def default_cache_dir() -> Path:
    root = Path(os.environ.get("NOVELCRAFT_CACHE", Path.home() / ".cache" / "novelcraft"))
    return root / "eval"


def load_reference(
    paths: Iterable[Path],
    prepare: Callable[[str, str], str] = lambda text, title: text,
    cache_dir: Path | None = None,
    chunk_words: int = CHUNK_WORDS,
    vocabulary_size: int = VOCABULARY_STORED,
) -> Reference:
    """The reference built from book files, from the cache when the same files were built before.

    `prepare(text, title)` turns a file's text into prose (for Gutenberg files: boilerplate stripped and
    chapters kept, which is dataprep's job; the engine does not import dataprep). Pass a different
    `cache_dir` or change the files to get a fresh build; a changed `prepare` needs a fresh cache_dir.
    """
    paths = sorted(Path(p) for p in paths)
    key = _cache_key(paths, chunk_words, vocabulary_size)
    cache = (cache_dir or default_cache_dir()) / f"reference-{key[:20]}.json"
    if cache.exists():
        try:
            return Reference.model_validate_json(cache.read_text(encoding="utf-8"))
        except ValueError:
            pass  # a truncated or stale cache file is rebuilt below
    books = []
    for path in paths:
        author, title = book_label(path)
        books.append((author, title, prepare(path.read_text(encoding="utf-8"), title)))
    reference = build_reference(books, chunk_words, vocabulary_size)
    write_atomic(cache, reference.model_dump_json())
    return reference


def _cache_key(paths: list[Path], chunk_words: int, vocabulary_size: int) -> str:
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, chunk_words, vocabulary_size]).encode())
    for path in paths:
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
