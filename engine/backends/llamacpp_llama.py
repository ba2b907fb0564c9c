"""The llama_cpp.Llama the llamacpp backend loads: what llama-cpp-python does not give on its own.

- A prompt that repeats what the model holds keeps the model's own tokens. A sampled answer is often
  not the canonical tokenization of its text (" w"+"afted" where the tokenizer says " waf"+"ted"), so
  a follow-up turn that sends the answer back as text matched the KV cache only up to the first such
  token, 33 tokens into a scene: the review and every continuation evaluated the scene again. The
  prompt's bytes are matched against the bytes of the tokens in the cache, and the matched part keeps
  those tokens.
- A grammar asked only when it must. llama-cpp-python puts the grammar in its sampler chain, so every
  token of a JSON answer runs the grammar over the whole vocabulary (49k candidates for SmolLM2): a
  summary decoded 1.6× slower than the same answer unconstrained. llama.cpp's own tools draw a token
  first and ask the grammar about that one token, applying it to every candidate only when the token is
  refused; so does this. The answer is still shaped by the grammar at every token.
- DRY ("don't repeat yourself", llama.cpp's `llama_sampler_init_dry`): a token that would extend a
  sequence already in the text (the prompt's tail included, so a continuation's earlier part counts) is
  penalised more the longer the repeat. Small models loop; the repetition guard cuts loops after they are
  written, and every token it cuts was paid for.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable
from itertools import takewhile
from typing import Any

from pydantic import BaseModel, Field


class Dry(BaseModel):
    """llama.cpp's DRY parameters (its documented defaults, but for the multiplier that turns it on)."""

    multiplier: float = Field(gt=0)
    base: float = Field(default=1.75, gt=1)
    allowed_length: int = Field(default=2, ge=1)
    # Tokens of history it looks back over, the prompt's tail included.
    last_n: int = Field(default=1024, ge=1)
    breakers: tuple[str, ...] = ("\n", ":", '"', "*")


class ControlledSampler:
    """Stands in for llama-cpp-python's sampler chain (its `sample(ctx, idx)`): the chain without a
    grammar draws, DRY (if set) adjusts the logits first, the grammar (if set) vets the drawn token."""

    def __init__(self, c: Any, chain: Any, n_vocab: int, grammar: Any = None, dry: Any = None) -> None:
        import numpy as np  # here, not at import: every command imports the backends to list them

        self._c, self._chain, self._n_vocab = c, chain, n_vocab
        self._grammar, self._dry = grammar, dry
        self._ids = np.arange(n_vocab, dtype=np.intc)
        self._data = (c.llama_token_data * n_vocab)()
        token_data = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)
        self._view = np.frombuffer(self._data, dtype=token_data)
        self._logits = lambda pointer: np.ctypeslib.as_array(pointer, shape=(n_vocab,))
        self._one = (c.llama_token_data * 1)()

    def _array(self, data: Any, size: int) -> Any:
        return self._c.llama_token_data_array(
            data=ctypes.cast(data, self._c.llama_token_data_p), size=size, selected=-1, sorted=False
        )

    def _draw(self, ctx: Any, idx: int, constrained: bool) -> int:
        logits = self._c.llama_get_logits_ith(ctx.ctx, idx)
        self._view["id"] = self._ids
        self._view["logit"] = self._logits(logits)
        self._view["p"] = 0.0
        cur = self._array(self._data, self._n_vocab)
        if constrained:
            self._c.llama_sampler_apply(self._grammar, ctypes.byref(cur))
        if self._dry:
            self._c.llama_sampler_apply(self._dry, ctypes.byref(cur))
        self._c.llama_sampler_apply(self._chain.sampler, ctypes.byref(cur))
        return int(cur.data[cur.selected].id)

    def _allowed(self, token: int) -> bool:
        self._one[0].id, self._one[0].logit, self._one[0].p = token, 1.0, 0.0
        one = self._array(self._one, 1)
        self._c.llama_sampler_apply(self._grammar, ctypes.byref(one))
        return not math.isinf(one.data[0].logit)

    def sample(self, ctx: Any, idx: int = -1) -> int:
        token = self._draw(ctx, idx, constrained=False)
        if self._grammar and not self._allowed(token):
            token = self._draw(ctx, idx, constrained=True)
        for sampler in (self._grammar, self._dry, self._chain.sampler):
            if sampler:
                self._c.llama_sampler_accept(sampler, token)
        return token

    def close(self) -> None:
        for name in ("_grammar", "_dry"):
            if getattr(self, name):
                self._c.llama_sampler_free(getattr(self, name))
                setattr(self, name, None)
        self._chain.close()

    def __del__(self) -> None:
        self.close()


def shared_prefix(a: list[int], b: list[int]) -> int:
    return sum(1 for _ in takewhile(bool, (x == y for x, y in zip(a, b, strict=False))))


def dry_sampler(c: Any, vocab: Any, dry: Dry, history: list[int]) -> Any:
    breakers = (ctypes.c_char_p * len(dry.breakers))(*(b.encode("utf-8") for b in dry.breakers))
    sampler = c.llama_sampler_init_dry(
        vocab, dry.multiplier, dry.base, dry.allowed_length, dry.last_n, breakers, len(dry.breakers)
    )
    for token in history[-dry.last_n :]:
        c.llama_sampler_accept(sampler, token)
    return sampler


def cached_tokens(held: list[int], text: bytes, piece: Callable[[int], bytes]) -> tuple[int, int]:
    """How many of the `held` tokens spell the start of `text`, and how many bytes of it they spell;
    never ending inside a UTF-8 character, so the rest tokenizes on its own."""
    tokens, at, ends = 0, 0, [0]
    for token in held:
        bytes_ = piece(token)
        if not bytes_ or not text.startswith(bytes_, at):
            break
        tokens, at = tokens + 1, at + len(bytes_)
        ends.append(at)
    while tokens and at < len(text) and text[at] & 0xC0 == 0x80:
        tokens -= 1
        at = ends[tokens]
    return tokens, at


def controlled_llama(llama_cls: type) -> type:
    """A subclass of llama_cpp.Llama whose prompts keep the cached tokens they repeat, and whose calls
    honour `dry` (set per call) and vet grammars lazily."""
    import llama_cpp

    class ControlledLlama(llama_cls):
        dry: Dry | None = None
        _prompt: list[int] = []

        def _piece(self, token: int) -> bytes:
            pieces = self.__dict__.setdefault("_pieces", {})
            if token not in pieces:
                pieces[token] = self.detokenize([token], special=True)
            return pieces[token]

        def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
            canonical = super().tokenize(text, add_bos, special)
            # Only a chat or completion prompt (special tokens on); a count of prose stays canonical.
            if not special or not self.n_tokens:
                return canonical
            held = list(self._input_ids)
            head = [held[0]] if add_bos and canonical[:1] == held[:1] else []
            tokens, at = cached_tokens(held[len(head) :], text, self._piece)
            if len(head) + tokens <= shared_prefix(canonical, held):
                return canonical
            rest = super().tokenize(text[at:], False, special) if at < len(text) else []
            return head + held[len(head) : len(head) + tokens] + rest

        def generate(self, tokens: Any, *args: Any, **kwargs: Any) -> Any:
            self._prompt = list(tokens)
            return super().generate(tokens, *args, **kwargs)

        def _init_sampler(self, *args: Any, grammar: Any = None, **kwargs: Any) -> Any:
            chain = super()._init_sampler(*args, grammar=None, **kwargs)
            if grammar is None and self.dry is None:
                return chain
            vetter = None
            if grammar is not None:
                vetter = llama_cpp.llama_sampler_init_grammar(
                    self._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
                )
                if not vetter:
                    raise ValueError("llama.cpp could not parse the grammar")
            dry = dry_sampler(llama_cpp, self._model.vocab, self.dry, self._prompt) if self.dry else None
            return ControlledSampler(llama_cpp, chain, self._n_vocab, grammar=vetter, dry=dry)

    return ControlledLlama
