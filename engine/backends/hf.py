"""`transformers` backend: a Hugging Face model in-process, with several PEFT adapters switched per call.

The model is an HF checkpoint directory (or hub id in the local cache) or a GGUF file, which
transformers dequantizes at load (`gguf_file=`); None means the default SmolLM2 GGUF. Every adapter is
loaded once at start and selected per call with `set_adapter`; a call without adapter runs the base
weights inside `disable_adapter()`. There is no grammar here: JSON answers are generated freely and
ModelClient validates and retries them.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

from pydantic import Field

from novelcraft.backends.base import Backend, BackendError, Completion, Watch, at_sentence_end
from novelcraft.backends.registry import BackendCommon, BackendOptions, register
from novelcraft.core.schema import Message, Sampling


def resolve_device(device: str, cuda_available: bool) -> str:
    if device == "auto":
        return "cuda" if cuda_available else "cpu"
    if device.startswith("cuda") and not cuda_available:
        raise BackendError(f"device '{device}' was asked for but CUDA is not available")
    return device


def model_source(model: str | None) -> tuple[str, dict]:
    """(path or id for from_pretrained, extra kwargs): a GGUF file loads from its folder with gguf_file=."""
    if model is None:
        from novelcraft.backends.llamacpp import default_gguf

        gguf = default_gguf()
        return str(gguf.parent), {"gguf_file": gguf.name}
    path = Path(model)
    if path.suffix == ".gguf":
        if not path.exists():
            raise BackendError(f"{path}: GGUF model file not found")
        return str(path.parent), {"gguf_file": path.name}
    return model, {}


def generate_kwargs(sampling: Sampling, eos_token_id: Any) -> dict:
    """Sampling -> model.generate() kwargs. frequency_penalty has no transformers equivalent."""
    kwargs: dict[str, Any] = {"max_new_tokens": sampling.max_tokens, "eos_token_id": eos_token_id}
    if sampling.temperature > 0:
        kwargs.update(
            do_sample=True,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            min_p=sampling.min_p or None,
        )
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None)
    if sampling.repeat_penalty != 1.0:
        kwargs["repetition_penalty"] = sampling.repeat_penalty
    if sampling.stop:
        kwargs["stop_strings"] = list(sampling.stop)
    return kwargs


def cut_at_stop(text: str, stop: list[str]) -> str:
    """generate() stops *after* a stop string; the OpenAI convention leaves it out of the answer."""
    cut = min((i for s in stop if (i := text.find(s)) >= 0), default=-1)
    return text if cut < 0 else text[:cut]


class WatchCriterion:
    """A `generate` stopping criterion that asks `watch` at each sentence end (a new token that starts
    with whitespace after one that ended a sentence) and remembers where it said stop."""

    def __init__(self, tokenizer: Any, prompt_tokens: int, watch: Watch) -> None:
        self.tokenizer, self.prompt_tokens, self.watch = tokenizer, prompt_tokens, watch
        self.at: int | None = None

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
        new = input_ids[0, self.prompt_tokens :].tolist()
        if len(new) < 2 or not self.tokenizer.decode(new[-1:], skip_special_tokens=True)[:1].isspace():
            return False
        # Only the last few tokens decide whether a sentence just ended; decode the whole head only then.
        tail = self.tokenizer.decode(new[-4:-1], skip_special_tokens=True)
        if not at_sentence_end(tail, " "):
            return False
        head = self.tokenizer.decode(new[:-1], skip_special_tokens=True)
        if at_sentence_end(head, " ") and self.watch(head):
            self.at = len(new) - 1
            return True
        return False


class HFOptions(BackendOptions):
    # auto: CUDA when available, else CPU; or an explicit torch device such as cuda:1.
    device: str = "auto"
    n_threads: int | None = Field(default=None, ge=1)
    # Each adapter merged into its own copy of the weights: generation at the base model's speed (an
    # unmerged DoRA adapter recomputes its weight norm on every forward, ~6x slower on CPU), for the
    # memory of one model per adapter. For small models; off, adapters are switched on one copy.
    merge_adapters: bool = False


@register
class HFBackend(Backend):
    name = "transformers"
    summary = "a Hugging Face model in process (CPU or one GPU), PEFT adapters switched per call"
    Options = HFOptions

    @classmethod
    def from_options(cls, common: BackendCommon, options: HFOptions) -> HFBackend:
        return cls(
            common.model,
            adapters=common.adapters,
            device=options.device,
            n_threads=options.n_threads,
            merge_adapters=options.merge_adapters,
        )

    def __init__(
        self,
        model: str | None = None,
        *,
        adapters: dict[str, str] | None = None,
        device: str = "auto",
        n_threads: int | None = None,
        merge_adapters: bool = False,
    ) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise BackendError("the transformers backend needs: pip install 'novelcraft[hf]'") from None
        if n_threads:
            torch.set_num_threads(n_threads)
        self._torch = torch
        self.device = resolve_device(device, torch.cuda.is_available())
        source, extra = model_source(model)
        self.model = Path(extra["gguf_file"]).name if extra else source
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, **extra)
            base = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **extra)
        except (OSError, ValueError) as exc:
            raise BackendError(f"{model or source}: transformers could not load the model: {exc}") from None
        if self.tokenizer.chat_template is None:
            raise BackendError(f"{model or source}: the tokenizer has no chat template")
        self.adapters = dict(adapters or {})
        # adapter name -> a model with that adapter merged in (merge_adapters), else adapters switch on net.
        self._merged: dict[str, Any] = {}
        if merge_adapters:
            self._merged = {
                name: self._attach_adapters(copy.deepcopy(base), {name: path})
                .merge_and_unload()
                .to(self.device)
                .eval()
                for name, path in self.adapters.items()
            }
            self.net = base.to(self.device).eval()
        else:
            self.net = self._attach_adapters(base, self.adapters).to(self.device).eval()
        # generate() and set_adapter() mutate shared state; concurrent callers take turns.
        self._lock = threading.RLock()

    @staticmethod
    def _attach_adapters(base: Any, adapters: dict[str, str]) -> Any:
        if not adapters:
            return base
        try:
            from peft import PeftModel
        except ImportError:
            raise BackendError("adapters on the transformers backend need: pip install peft") from None
        net = None
        for name, path in adapters.items():
            try:
                if net is None:
                    net = PeftModel.from_pretrained(base, path, adapter_name=name)
                else:
                    net.load_adapter(path, adapter_name=name)
            except (OSError, ValueError) as exc:
                raise BackendError(f"adapter '{name}': cannot load PEFT adapter from {path}: {exc}") from None
        return net

    def check(self, adapters: list[str] | None = None) -> None:
        self.require_adapters(*(adapters or []))

    def _prompt_ids(self, messages: list[Message]):
        encoded = self.tokenizer.apply_chat_template(
            [m.model_dump() for m in messages],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        return encoded["input_ids"], encoded["attention_mask"]

    def complete(
        self,
        messages: list[Message],
        sampling: Sampling,
        *,
        json_schema: dict | None = None,
        adapter: str | None = None,
        watch: Watch | None = None,
    ) -> Completion:
        input_ids, attention = self._prompt_ids(messages)
        return self._generate(input_ids, attention, sampling, adapter, watch if json_schema is None else None)

    def complete_text(self, prompt: str, sampling: Sampling, *, adapter: str | None = None) -> Completion:
        """`generate` on the prompt as it is (the tokenizer's own BOS, no chat template)."""
        encoded = self.tokenizer(prompt, return_tensors="pt")
        return self._generate(encoded["input_ids"], encoded["attention_mask"], sampling, adapter)

    def _generate(
        self,
        input_ids: Any,
        attention: Any,
        sampling: Sampling,
        adapter: str | None,
        watch: Watch | None = None,
    ) -> Completion:
        self.require_adapters(adapter)
        kwargs = generate_kwargs(sampling, self.tokenizer.eos_token_id)
        if "stop_strings" in kwargs:
            kwargs["tokenizer"] = self.tokenizer
        halt = WatchCriterion(self.tokenizer, int(input_ids.shape[1]), watch) if watch else None
        if halt:
            kwargs["stopping_criteria"] = [halt]
        with self._lock, self._torch.inference_mode(), self._adapter(adapter):
            if sampling.seed is not None:
                # Seeded per call, so a call's answer depends on its own seed, not on the calls before it.
                self._torch.manual_seed(sampling.seed)
            net = self._merged.get(adapter, self.net) if adapter else self.net
            out = net.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                **kwargs,
            )
        new = out[0, input_ids.shape[1] :].tolist()
        if halt and halt.at is not None:
            new = new[: halt.at]
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            return Completion(
                text=text, finish_reason="halted", tokens_in=int(input_ids.shape[1]), tokens_out=len(new)
            )
        eos = self.tokenizer.eos_token_id
        ended = bool(new) and (new[-1] in eos if isinstance(eos, list) else new[-1] == eos)
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        if sampling.stop:
            text = cut_at_stop(text, sampling.stop)
        hit_limit = len(new) >= sampling.max_tokens and not ended
        return Completion(
            text=text,
            finish_reason="length" if hit_limit else "stop",
            tokens_in=int(input_ids.shape[1]),
            tokens_out=len(new),
        )

    def _adapter(self, adapter: str | None):
        from contextlib import nullcontext

        if not self.adapters or self._merged:
            return nullcontext()
        if adapter is None:
            return self.net.disable_adapter()
        self.net.set_adapter(adapter)
        return nullcontext()

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        return int(self._prompt_ids(messages)[0].shape[1])

    def close(self) -> None:
        self.net = None
        self._merged.clear()
        if self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()
