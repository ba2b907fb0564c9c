"""Training data: dataprep's messages JSONL and plain-text continuation corpora -> input_ids/labels.

Why our own tokenization rather than TRL's `assistant_only_loss`: TRL 1.16 needs `{% generation %}` markers
in the chat template and only ships patched training templates for a fixed list of model families; SmolLM2's
ChatML template has no markers and is not on that list. So we render the prompt (everything before the last
assistant turn, with the generation prompt) and the full conversation with the base model's own template,
check the first is a prefix of the second, and put in the loss exactly the assistant tokens up to and
including the first end-of-turn token (<|im_end|> for ChatML, <|eot_id|> for Llama 3, <end_of_turn> for
Gemma, </s> for Mistral). Without that token in the loss the model never learns to stop (trl #1623, #5988).
SFTTrainer receives the tokenized rows with `labels` and uses them as they are."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from novelcraft.settings.config import ConfigError
from novelcraft.train.config import DatasetSpec, TrainConfig

IGNORE = -100
# End-of-turn tokens of common chat templates; only those in the tokenizer's vocabulary are used.
KNOWN_EOT = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "</s>")


@dataclass
class ChatRecord:
    messages: list[dict[str, str]]
    source: str  # "file:line", for error messages and reports
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]
    source: str
    prompt_tokens: int = 0

    def row(self) -> dict[str, list[int]]:
        return {
            "input_ids": self.input_ids,
            "labels": self.labels,
            "attention_mask": [1] * len(self.input_ids),
        }


@dataclass
class PreparedData:
    train: list[Example]
    val: list[Example]
    report: dict[str, Any]
    data_hash: str


# ---- reading -------------------------------------------------------------------------------------------


def _jsonl(path: Path) -> list[tuple[int, dict]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{n}: not valid JSON: {exc.msg}") from None
            if not isinstance(obj, dict):
                raise ConfigError(f"{path}:{n}: expected a JSON object")
            rows.append((n, obj))
    return rows


def read_chat_file(path: Path) -> list[ChatRecord]:
    out = []
    for n, obj in _jsonl(path):
        msgs = obj.get("messages")
        where = f"{path}:{n}"
        if not isinstance(msgs, list) or not msgs:
            raise ConfigError(f"{where}: field 'messages': expected a non-empty list")
        for i, m in enumerate(msgs):
            if (
                not isinstance(m, dict)
                or not isinstance(m.get("role"), str)
                or not isinstance(m.get("content"), str)
            ):
                raise ConfigError(f"{where}: field 'messages.{i}': expected {{role, content}} strings")
        if msgs[-1]["role"] != "assistant":
            raise ConfigError(
                f"{where}: field 'messages': the last message must be the assistant's (the scene)"
            )
        meta = {k: v for k, v in obj.items() if k != "messages"}
        out.append(ChatRecord([{"role": m["role"], "content": m["content"]} for m in msgs], where, meta))
    return out


def chat_files(spec: DatasetSpec) -> tuple[Path, Path | None]:
    """A dataprep directory gives train.jsonl (+ val.jsonl); a file is all training data."""
    if spec.path.is_dir():
        val = spec.path / "val.jsonl"
        return spec.path / "train.jsonl", (val if val.exists() and val.stat().st_size else None)
    return spec.path, None


def read_texts(spec: DatasetSpec) -> list[tuple[str, str]]:
    """(source, text) documents from a .txt file, a JSONL of {field: text}, or a directory of either."""
    paths = (
        sorted(p for p in spec.path.rglob("*") if p.suffix in {".txt", ".jsonl"})
        if spec.path.is_dir()
        else [spec.path]
    )
    docs = []
    for p in paths:
        if p.suffix == ".jsonl":
            for n, obj in _jsonl(p):
                text = obj.get(spec.field)
                if not isinstance(text, str):
                    raise ConfigError(f"{p}:{n}: field '{spec.field}': expected a string")
                docs.append((f"{p}:{n}", text))
        else:
            docs.append((str(p), p.read_text(encoding="utf-8")))
    return docs


def data_files(cfg: TrainConfig) -> list[Path]:
    files: list[Path] = []
    for spec in cfg.datasets:
        if spec.type == "chat_template":
            files.extend(p for p in chat_files(spec) if p is not None)
        elif spec.path.is_dir():
            files.extend(sorted(p for p in spec.path.rglob("*") if p.suffix in {".txt", ".jsonl"}))
        else:
            files.append(spec.path)
    return files


def data_hash(cfg: TrainConfig) -> str:
    """sha256 over the bytes of every input file (in config order), so a run names exactly what it saw."""
    h = hashlib.sha256()
    for p in data_files(cfg):
        h.update(p.name.encode() + b"\0")
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


# ---- tokenization --------------------------------------------------------------------------------------


def stop_token_ids(tokenizer: Any, generation_eos: int | list[int] | None = None) -> set[int]:
    """Tokens that end an assistant turn: the generation config's EOS ids, the tokenizer's EOS, known EOTs."""
    ids: set[int] = set()
    if isinstance(generation_eos, int):
        ids.add(generation_eos)
    elif generation_eos:
        ids.update(generation_eos)
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    vocab = tokenizer.get_vocab()
    ids.update(vocab[t] for t in KNOWN_EOT if t in vocab)
    return ids


def render(tokenizer: Any, messages: list[dict], chat_template: str | None, *, prompt: bool) -> str:
    if prompt:
        return tokenizer.apply_chat_template(
            messages[:-1], tokenize=False, add_generation_prompt=True, chat_template=chat_template
        )
    return tokenizer.apply_chat_template(messages, tokenize=False, chat_template=chat_template)


def tokenize_chat(
    tokenizer: Any, record: ChatRecord, stop_ids: set[int], chat_template: str | None = None
) -> Example:
    """input_ids of the full conversation; labels = the last assistant turn up to and including its
    end-of-turn token, -100 elsewhere (the prompt and whatever the template writes after the turn)."""
    prompt_text = render(tokenizer, record.messages, chat_template, prompt=True)
    full_text = render(tokenizer, record.messages, chat_template, prompt=False)
    if not full_text.startswith(prompt_text):
        raise ConfigError(
            f"{record.source}: the chat template renders the prompt differently inside the full conversation; "
            "set chat_template to a prefix-preserving template"
        )
    # The templates write their special tokens as text, so no extra BOS here.
    enc = tokenizer(full_text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    cut = len(prompt_text)
    # First token that starts at or after the prompt's end (a token straddling the boundary stays prompt).
    start = next((i for i, (s, _e) in enumerate(offsets) if s >= cut), len(ids))
    end = next((i for i in range(start, len(ids)) if ids[i] in stop_ids), None)
    if end is None:
        raise ConfigError(
            f"{record.source}: the chat template writes no end-of-turn token after the assistant turn, "
            "so the model would never learn to stop"
        )
    labels = [IGNORE] * len(ids)
    labels[start : end + 1] = ids[start : end + 1]
    return Example(ids, labels, record.source, prompt_tokens=start)


def tokenize_blocks(tokenizer: Any, docs: list[tuple[str, str]], block: int) -> list[Example]:
    """Causal-LM continuation: documents joined with EOS and cut into blocks of `block` tokens, all in the
    loss. A last short block is kept when it is at least a quarter block long."""
    eos = tokenizer.eos_token_id
    stream: list[int] = []
    for _src, text in docs:
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        if eos is not None:
            stream.append(eos)
    examples = []
    src = docs[0][0] if len(docs) == 1 else f"{len(docs)} documents"
    for k, i in enumerate(range(0, len(stream), block)):
        chunk = stream[i : i + block]
        if len(chunk) < max(2, block // 4):
            break
        examples.append(Example(chunk, list(chunk), f"{src}#block{k}"))
    return examples


# ---- the whole preparation -----------------------------------------------------------------------------


def _split(items: list, fraction: float, seed: int) -> tuple[list, list]:
    if fraction <= 0 or len(items) < 2:
        return items, []
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(items) * fraction))
    val_idx = set(order[:n_val])
    return [x for i, x in enumerate(items) if i not in val_idx], [
        x for i, x in enumerate(items) if i in val_idx
    ]


def prepare_data(
    cfg: TrainConfig, tokenizer: Any, stop_ids: set[int], chat_template: str | None = None
) -> PreparedData:
    """Tokenize every dataset, check the prompt fits, filter over-long records, split, report."""
    train: list[Example] = []
    val: list[Example] = []
    needs_split: list[Example] = []
    too_long: list[dict] = []
    longest_prompt = (0, "")
    n_read = 0
    for spec in cfg.datasets:
        if spec.type == "chat_template":
            train_file, val_file = chat_files(spec)
            groups = [(read_chat_file(train_file), "train" if val_file else "split")]
            if val_file:
                groups.append((read_chat_file(val_file), "val"))
            for records, where in groups:
                n_read += len(records)
                for rec in records:
                    ex = tokenize_chat(tokenizer, rec, stop_ids, chat_template)
                    if ex.prompt_tokens > longest_prompt[0]:
                        longest_prompt = (ex.prompt_tokens, rec.source)
                    if len(ex.input_ids) > cfg.sequence_len:
                        too_long.append({"source": rec.source, "tokens": len(ex.input_ids)})
                        continue
                    {"train": train, "val": val, "split": needs_split}[where].append(ex)
        else:
            docs = read_texts(spec)
            n_read += len(docs)
            if len(docs) >= 2 and cfg.val_set_size > 0:
                # Split whole documents (scenes) before cutting blocks, so no block straddles the split.
                doc_train, doc_val = _split(docs, cfg.val_set_size, cfg.seed)
                train.extend(tokenize_blocks(tokenizer, doc_train, cfg.sequence_len))
                val.extend(tokenize_blocks(tokenizer, doc_val, cfg.sequence_len))
            else:
                needs_split.extend(tokenize_blocks(tokenizer, docs, cfg.sequence_len))
    if longest_prompt[0] >= cfg.sequence_len:
        raise ConfigError(
            f"config: field 'sequence_len': {cfg.sequence_len} is shorter than the longest prompt part "
            f"({longest_prompt[0]} tokens at {longest_prompt[1]}); no scene token would fit"
        )
    split_train, split_val = _split(needs_split, cfg.val_set_size, cfg.seed)
    train += split_train
    val += split_val
    if cfg.max_samples is not None and len(train) > cfg.max_samples:
        random.Random(cfg.seed).shuffle(train)
        train = train[: cfg.max_samples]
    if not train:
        raise ConfigError(
            f"config: field 'datasets': no training record left ({len(too_long)} longer than sequence_len "
            f"{cfg.sequence_len})"
        )
    report = {
        "records_read": n_read,
        "train_examples": len(train),
        "val_examples": len(val),
        "filtered_too_long": len(too_long),
        "filtered": too_long[:50],
        "train_tokens": sum(len(e.input_ids) for e in train),
        "train_loss_tokens": sum(sum(1 for t in e.labels if t != IGNORE) for e in train),
        "longest_prompt_tokens": longest_prompt[0],
        "sequence_len": cfg.sequence_len,
    }
    return PreparedData(train, val, report, data_hash(cfg))
