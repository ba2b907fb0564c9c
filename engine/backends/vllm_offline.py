"""`vllm` backend: offline vLLM in-process on a GPU host, one LoRARequest per call.

vllm is an optional extra (`novelcraft[vllm]`), imported only when this backend is built. The request
mapping is pure functions, tested on CPU; only `VLLMBackend` itself needs vllm and a GPU.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from novelcraft.backends.base import Backend, BackendError, Completion, Watch
from novelcraft.backends.registry import BackendCommon, BackendOptions, register
from novelcraft.core.lora import VLLM_LORA_RANKS, vllm_rank_for
from novelcraft.core.schema import Message, Sampling

DEFAULT_MAX_LORA_RANK = 64


def structured_outputs_api(sampling_params_module: Any) -> str:
    """`structured_outputs` (StructuredOutputsParams, vLLM >= 0.11) or `guided_decoding` (older)."""
    return (
        "structured_outputs"
        if hasattr(sampling_params_module, "StructuredOutputsParams")
        else "guided_decoding"
    )


def sampling_kwargs(sampling: Sampling, json_schema: dict | None, api: str = "structured_outputs") -> dict:
    """Sampling -> SamplingParams(**kwargs); the structured entry is a dict the shell wraps in its class."""
    kwargs: dict[str, Any] = {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "min_p": sampling.min_p,
        # vLLM's repetition_penalty is the same multiplicative penalty as llama.cpp's repeat_penalty.
        "repetition_penalty": sampling.repeat_penalty,
        "frequency_penalty": sampling.frequency_penalty,
        "max_tokens": sampling.max_tokens,
        "seed": sampling.seed,
    }
    if sampling.stop:
        kwargs["stop"] = list(sampling.stop)
    if json_schema is not None:
        kwargs[api] = {"json": json_schema}
    return kwargs


def build_sampling_params(sampling_params_module: Any, kwargs: dict) -> Any:
    kwargs = dict(kwargs)
    if "structured_outputs" in kwargs:
        kwargs["structured_outputs"] = sampling_params_module.StructuredOutputsParams(
            **kwargs["structured_outputs"]
        )
    if "guided_decoding" in kwargs:
        kwargs["guided_decoding"] = sampling_params_module.GuidedDecodingParams(**kwargs["guided_decoding"])
    return sampling_params_module.SamplingParams(**kwargs)


def lora_requests(adapters: dict[str, str]) -> dict[str, tuple[str, int, str]]:
    """name -> LoRARequest(lora_name, lora_int_id, lora_path) args; ids from sorted names, so stable."""
    return {name: (name, i, adapters[name]) for i, name in enumerate(sorted(adapters), start=1)}


def adapter_rank(path: str) -> int | None:
    """The LoRA rank `r` from a local PEFT adapter's adapter_config.json, if readable."""
    config = Path(path) / "adapter_config.json"
    try:
        return int(json.loads(config.read_text(encoding="utf-8"))["r"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def max_lora_rank(adapters: dict[str, str]) -> int:
    """The smallest rank vLLM supports that covers every adapter (64 when none can be read)."""
    ranks = [r for r in (adapter_rank(p) for p in adapters.values()) if r is not None]
    need = max(ranks, default=DEFAULT_MAX_LORA_RANK)
    fit = vllm_rank_for(need)
    if fit is None:
        raise BackendError(f"adapter rank {need} is above vLLM's largest LoRA rank {VLLM_LORA_RANKS[-1]}")
    return fit


def llm_kwargs(model: str, adapters: dict[str, str], n_ctx: int, seed: int = 0) -> dict:
    kwargs: dict[str, Any] = {"model": model, "max_model_len": n_ctx, "seed": seed}
    if adapters:
        kwargs.update(enable_lora=True, max_lora_rank=max_lora_rank(adapters), max_loras=len(adapters))
    return kwargs


def completion_from_output(request_output: Any) -> Completion:
    out = request_output.outputs[0]
    return Completion(
        text=out.text,
        finish_reason="length" if out.finish_reason == "length" else "stop",
        tokens_in=len(request_output.prompt_token_ids or []),
        tokens_out=len(out.token_ids or []),
    )


def token_length(ids: Any) -> int:
    """apply_chat_template(tokenize=True) gives a list of ids, or (transformers 5) a BatchEncoding."""
    return len(ids["input_ids"] if hasattr(ids, "keys") else ids)


@register
class VLLMBackend(Backend):
    name = "vllm"
    summary = "offline vLLM on a GPU host (pip install 'novelcraft[vllm]'), a LoRARequest per call"
    Options = BackendOptions

    @classmethod
    def from_options(cls, common: BackendCommon, options: BackendOptions) -> VLLMBackend:
        return cls(common.model, adapters=common.adapters, n_ctx=common.n_ctx)

    def __init__(
        self, model: str | None, *, adapters: dict[str, str] | None = None, n_ctx: int = 4096
    ) -> None:
        if not model:
            raise BackendError("the vllm backend needs --model (an HF model id or directory)")
        try:
            import vllm
            import vllm.sampling_params as sp
            from vllm.lora.request import LoRARequest
        except ImportError:
            raise BackendError(
                "the vllm backend needs a GPU host and: pip install 'novelcraft[vllm]'"
            ) from None
        self.model = model
        self.adapters = dict(adapters or {})
        self._sp = sp
        self._api = structured_outputs_api(sp)
        self._loras = {name: LoRARequest(*args) for name, args in lora_requests(self.adapters).items()}
        try:
            self.llm = vllm.LLM(**llm_kwargs(model, self.adapters, n_ctx))
        except (OSError, ValueError, RuntimeError) as exc:
            raise BackendError(f"{model}: vLLM could not load the model: {exc}") from None
        self.tokenizer = self.llm.get_tokenizer()
        self._lock = threading.Lock()

    def check(self, adapters: list[str] | None = None) -> None:
        self.require_adapters(*(adapters or []))

    def complete(
        self,
        messages: list[Message],
        sampling: Sampling,
        *,
        json_schema: dict | None = None,
        adapter: str | None = None,
        watch: Watch | None = None,
    ) -> Completion:
        self.require_adapters(adapter)
        params = build_sampling_params(self._sp, sampling_kwargs(sampling, json_schema, self._api))
        try:
            with self._lock:
                outputs = self.llm.chat(
                    [m.model_dump() for m in messages],
                    sampling_params=params,
                    lora_request=self._loras.get(adapter) if adapter else None,
                    use_tqdm=False,
                )
        except ValueError as exc:  # e.g. the prompt is longer than max_model_len
            raise BackendError(f"vllm: {exc}") from None
        return completion_from_output(outputs[0])

    def complete_text(self, prompt: str, sampling: Sampling, *, adapter: str | None = None) -> Completion:
        """`LLM.generate` on the prompt as it is (continuation experts), with the expert's LoRARequest."""
        self.require_adapters(adapter)
        params = build_sampling_params(self._sp, sampling_kwargs(sampling, None, self._api))
        try:
            with self._lock:
                outputs = self.llm.generate(
                    [prompt],
                    sampling_params=params,
                    lora_request=self._loras.get(adapter) if adapter else None,
                    use_tqdm=False,
                )
        except ValueError as exc:
            raise BackendError(f"vllm: {exc}") from None
        return completion_from_output(outputs[0])

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        ids = self.tokenizer.apply_chat_template(
            [m.model_dump() for m in messages], add_generation_prompt=True, tokenize=True
        )
        return token_length(ids)

    def close(self) -> None:
        self.llm = None
