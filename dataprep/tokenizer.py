"""Token counts of compiled records with the target model's own tokenizer (--tokenizer), not the backend's."""

from __future__ import annotations

from novelcraft.core.errors import InputError
from novelcraft.core.schema import Message
from novelcraft.dataprep.compile import CountMessages


def hf_message_counter(name: str) -> CountMessages:
    """Counts a record as the target model sees it: its chat template applied, then tokenized."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"--tokenizer {name}: cannot load it: {first}") from None

    def count(messages: list[Message]) -> int:
        # Render then tokenize: apply_chat_template(tokenize=True) returns a dict in transformers 5.
        text = tokenizer.apply_chat_template([m.model_dump() for m in messages], tokenize=False)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count
