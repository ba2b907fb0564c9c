"""Training data: the loss mask covers exactly the scene and its end-of-turn token; filtering and splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from train_fixtures import SCENES, default_base, record, write_dataprep_dir

from novelcraft.settings.config import ConfigError
from novelcraft.train.config import TrainConfig
from novelcraft.train.data import IGNORE, ChatRecord, prepare_data, stop_token_ids, tokenize_chat
from novelcraft.train.model import generation_eos, load_tokenizer


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(str(default_base()))


@pytest.fixture(scope="module")
def stops(tok):
    return stop_token_ids(tok, generation_eos(str(default_base())))


def test_mask_is_exactly_the_scene_and_im_end(tok, stops) -> None:
    rec = ChatRecord(record(0, "She smiled. He did not.")["messages"], "t:1")
    ex = tokenize_chat(tok, rec, stops)
    text = tok.decode(ex.input_ids)
    # SmolLM2's ChatML, rendered by its own template.
    assert text == (
        "<|im_start|>system\nYou write scenes in the style of Jane Austen.<|im_end|>\n"
        "<|im_start|>user\nWorld: Hertfordshire, 1811.\nSummary: scene 0.\nWrite scene 0.<|im_end|>\n"
        "<|im_start|>assistant\nShe smiled. He did not.<|im_end|>\n"
    )
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    scene_ids = tok("She smiled. He did not.", add_special_tokens=False)["input_ids"]
    n = len(ex.input_ids)
    # Expected labels built independently: everything masked except the scene tokens and the final
    # <|im_end|>; the trailing newline after it stays out of the loss.
    start = n - 1 - 1 - len(scene_ids)
    expected = [IGNORE] * start + scene_ids + [im_end] + [IGNORE]
    assert ex.labels == expected
    assert ex.input_ids[start:-1] == scene_ids + [im_end]
    assert ex.prompt_tokens == start
    assert tok.decode([t for t in ex.labels if t != IGNORE]) == "She smiled. He did not.<|im_end|>"


def test_the_end_of_turn_token_is_a_stop_token(tok, stops) -> None:
    assert tok.convert_tokens_to_ids("<|im_end|>") in stops


def test_a_template_without_end_of_turn_is_refused(tok, stops) -> None:
    tpl = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    rec = ChatRecord(record(0, "x")["messages"], "data.jsonl:3")
    with pytest.raises(ConfigError, match=r"data.jsonl:3: .*no end-of-turn token"):
        tokenize_chat(tok, rec, stops, chat_template=tpl)


def test_a_llama3_style_template_masks_through_eot(tok) -> None:
    # A template whose end-of-turn is a different token (stands in for Llama 3's <|eot_id|>): the mask must
    # follow the template, ending at the first stop token after the scene.
    tpl = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n\n{{ m['content'] | trim }}<|endoftext|>"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n\n{% endif %}"
    )
    stops = {tok.convert_tokens_to_ids("<|endoftext|>")}
    ex = tokenize_chat(
        tok, ChatRecord(record(1, "  Rain fell.  ")["messages"], "t:1"), stops, chat_template=tpl
    )
    assert tok.decode([t for t in ex.labels if t != IGNORE]) == "Rain fell.<|endoftext|>"
    assert ex.labels[-1] != IGNORE  # nothing after the turn in this template


def test_over_long_records_are_filtered_and_reported(tmp_path: Path, tok, stops) -> None:
    d = write_dataprep_dir(tmp_path / "d", n_train=4, n_val=1)
    long = record(99, " ".join(["word"] * 400))
    with (d / "train.jsonl").open("a") as fh:
        fh.write(json.dumps(long) + "\n")
    cfg = TrainConfig(datasets=[{"path": d}], sequence_len=200)
    prep = prepare_data(cfg, tok, stops)
    assert prep.report["filtered_too_long"] == 1
    assert prep.report["filtered"][0]["source"] == f"{d / 'train.jsonl'}:5"
    assert prep.report["filtered"][0]["tokens"] > 200
    assert (len(prep.train), len(prep.val)) == (4, 1)  # val.jsonl is the validation split as given
    assert all(len(e.input_ids) <= 200 for e in prep.train + prep.val)


def test_single_file_is_split_by_val_set_size(tmp_path: Path, tok, stops) -> None:
    f = tmp_path / "all.jsonl"
    f.write_text("".join(json.dumps(record(i, SCENES[i % 6])) + "\n" for i in range(20)))
    cfg = TrainConfig(datasets=[{"path": f}], sequence_len=256, val_set_size=0.1, seed=3)
    a, b = prepare_data(cfg, tok, stops), prepare_data(cfg, tok, stops)
    assert (len(a.train), len(a.val)) == (18, 2)
    assert [e.source for e in a.val] == [e.source for e in b.val]  # seeded, reproducible
    assert not {e.source for e in a.val} & {e.source for e in a.train}


def test_continuation_blocks_put_every_token_in_the_loss(tmp_path: Path, tok, stops) -> None:
    f = tmp_path / "scenes.jsonl"
    f.write_text("".join(json.dumps({"text": s * 3}) + "\n" for s in SCENES * 2))
    cfg = TrainConfig(datasets=[{"path": f, "type": "completion"}], sequence_len=64, val_set_size=0.2)
    prep = prepare_data(cfg, tok, stops)
    assert prep.train and prep.val
    for e in prep.train + prep.val:
        assert e.labels == e.input_ids and 16 <= len(e.input_ids) <= 64
    assert tok.eos_token_id in [t for e in prep.train for t in e.input_ids]  # documents end with EOS


def test_data_hash_follows_the_bytes(tmp_path: Path, tok, stops) -> None:
    d = write_dataprep_dir(tmp_path / "d")
    cfg = TrainConfig(datasets=[{"path": d}], sequence_len=256)
    h1 = prepare_data(cfg, tok, stops).data_hash
    with (d / "val.jsonl").open("a") as fh:
        fh.write(json.dumps(record(7, "Another.")) + "\n")
    assert prepare_data(cfg, tok, stops).data_hash != h1


def test_a_record_not_ending_with_the_scene_is_refused(tmp_path: Path, tok, stops) -> None:
    f = tmp_path / "bad.jsonl"
    rec = record(0, "x")
    rec["messages"] = rec["messages"][:2]
    f.write_text(json.dumps(rec) + "\n")
    with pytest.raises(
        ConfigError, match=rf"{f}:1: field 'messages': the last message must be the assistant"
    ):
        prepare_data(TrainConfig(datasets=[{"path": f}]), tok, stops)
