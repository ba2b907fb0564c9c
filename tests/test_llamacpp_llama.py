"""Integration: the in-process llama.cpp sampler on the real default model (grammar vetted lazily, DRY)."""

import json
import re

import pytest

pytest.importorskip("llama_cpp")

from novelcraft.backends.llamacpp import LlamaCppBackend
from novelcraft.backends.llamacpp_llama import ControlledSampler, cached_tokens
from novelcraft.core.schema import Message, Sampling

pytestmark = pytest.mark.integration

PASSAGE = (
    "The lamp turned all night over the grey water, and the keeper counted the ships that passed the "
    "rock. At dawn she climbed down the iron stair, opened the door to the gallery, and found the "
    "letter tucked under the stone where her father had always left his notes."
)


@pytest.fixture(scope="module")
def backends():
    plain, dry = (
        LlamaCppBackend(n_ctx=1024, dry_multiplier=0),
        LlamaCppBackend(n_ctx=1024, dry_multiplier=2.0),
    )
    yield plain, dry
    plain.close()
    dry.close()


def four_grams(text: str) -> list[tuple[str, ...]]:
    words = re.findall(r"[a-z']+", text.lower())
    return [tuple(words[i : i + 4]) for i in range(len(words) - 3)]


def test_a_lazily_vetted_grammar_still_shapes_every_answer(backends):
    plain, _ = backends
    schema = {
        "type": "object",
        "properties": {
            "place": {"type": "string", "enum": ["lighthouse", "harbour", "chapel"]},
            "hour": {"type": "integer"},
        },
        "required": ["place", "hour"],
        "additionalProperties": False,
    }
    messages = [
        Message(role="user", content="Where and when does the keeper find the letter? Answer in JSON.")
    ]
    for seed in range(1, 6):
        answer = plain.complete(
            messages, Sampling(temperature=1.2, max_tokens=60, seed=seed), json_schema=schema
        )
        data = json.loads(answer.text)
        assert set(data) == {"place", "hour"} and data["place"] in schema["properties"]["place"]["enum"]
        assert isinstance(data["hour"], int)
    # It went through the lazy sampler, not llama-cpp-python's whole-vocabulary grammar chain.
    assert isinstance(plain._llama(None)._sampler, ControlledSampler)


def test_dry_keeps_the_model_from_copying_what_it_has_seen(backends):
    plain, dry = backends
    messages = [Message(role="user", content=f"Copy this text exactly, twice:\n\n{PASSAGE}")]
    seen = set(four_grams(PASSAGE))
    copied = {}
    for name, backend in (("plain", plain), ("dry", dry)):
        grams = []
        for seed in (1, 2, 3):
            grams += four_grams(backend.complete(messages, Sampling(max_tokens=120, seed=seed)).text)
        copied[name] = sum(g in seen for g in grams) / max(len(grams), 1)
    assert copied["plain"] > 0.15, copied  # the model copies when let (0.26 measured)
    assert copied["dry"] < copied["plain"] / 2, copied


def test_json_answers_are_not_dry(backends):
    plain, dry = backends
    messages = [Message(role="user", content=f"Summarise as JSON with a field 'summary':\n\n{PASSAGE}")]
    schema = {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]}
    sampling = Sampling(temperature=0.3, max_tokens=80, seed=4)
    assert plain.complete(messages, sampling, json_schema=schema).text == (
        dry.complete(messages, sampling, json_schema=schema).text
    )


def test_a_follow_up_finds_the_whole_answer_cached_though_its_tokens_were_not_canonical(backends):
    plain, _ = backends
    llama = plain._llama(None)
    messages = [
        Message(role="system", content="You are a novelist."),
        Message(
            role="user",
            content="Write a long scene about a lighthouse keeper finding a letter, with paragraphs.",
        ),
    ]
    non_canonical = 0
    for seed in (1, 2, 3, 4):
        answer = plain.complete(messages, Sampling(max_tokens=300, seed=seed))
        written = list(llama._input_ids)[answer.tokens_in :]
        non_canonical += (
            written[: len(written) - 1]
            != llama.tokenize(answer.text.encode(), add_bos=False)[: len(written) - 1]
        )
        follow_up = [
            *messages,
            Message(role="assistant", content=answer.text),
            Message(role="user", content="Go on."),
        ]
        again = plain.complete(follow_up, Sampling(max_tokens=1, seed=1))
        assert again.tokens_cached >= answer.tokens_in + answer.tokens_out - 1, seed
    assert non_canonical  # the model did sample a split its tokenizer would not make


def test_cached_tokens_match_bytes_and_stop_at_a_character_boundary():
    pieces = {1: b"<s>", 2: b" w", 3: b"afted", 4: b" \xe2\x80", 5: b"\x9c"}
    assert cached_tokens([1, 2, 3], b"<s> wafted on", pieces.get) == (3, 10)
    assert cached_tokens([1, 2, 3], b"<s> waft", pieces.get) == (2, 5)
    # A token that ends inside a character (the first bytes of a curly quote) is given back.
    assert cached_tokens([1, 4, 5], b"<s> \xe2\x80\x9dX", pieces.get) == (1, 3)
    assert cached_tokens([1, 4, 5], b"<s> \xe2\x80\x9cX", pieces.get) == (3, 7)
