"""`openai` backend: any OpenAI-compatible server over HTTP (vLLM, llama.cpp server, llama-cpp-python, hosted).

httpx directly rather than the `openai` client: the body carries server-specific keys (min_p,
repetition_penalty / repeat_penalty) that the client would need `extra_body` for, the tokenize endpoints
are outside the OpenAI API anyway, errors are classified from the status code in one place, and the
client's own retry loop and response models add per-call overhead (see bench/client_overhead.py).

Servers differ in three ways, captured by a *kind* (detected from /v1/models or by probing, or set):
- the structured-output request: vLLM / llama.cpp take `json_schema`; llama-cpp-python only
  `{"type": "json_object", "schema": ...}` (its request model rejects `json_schema`);
- the extra sampling keys: vLLM `repetition_penalty`, llama.cpp `repeat_penalty`, hosted APIs neither;
- the tokenizer endpoint: vLLM `POST /tokenize` (text or chat messages), llama.cpp `POST /tokenize` +
  `POST /apply-template`, llama-cpp-python `POST /extras/tokenize/count` (text only, so the chat
  template is rendered here), hosted APIs none (offline cl100k estimate).
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from novelcraft.backends.base import (
    Backend,
    BackendError,
    Completion,
    TransientBackendError,
    Watch,
    at_sentence_end,
)
from novelcraft.backends.registry import BackendCommon, BackendOptions, register
from novelcraft.core.schema import Message, Sampling
from novelcraft.core.tokens import fallback_count

if TYPE_CHECKING:
    import httpx

SERVER_KINDS = ("auto", "vllm", "llamacpp", "llama-cpp-python", "openai")
DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
# Retry-After is honoured, but a server asking for minutes must not park the run silently.
MAX_RETRY_AFTER_S = 60.0
_TOKEN_CACHE_SIZE = 4096

# The ChatML template (SmolLM2, Qwen) without SmolLM2's default system line: the engine always sends one.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] "
    "+ '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}"
)


# ---------------------------------------------------------------------------------------------------------
# Pure mapping: settings and messages -> request bodies; responses -> Completion or errors.


def normalize_base_url(base_url: str | None) -> str:
    """`http://host:8000` and `http://host:8000/v1/` both mean the /v1 API root."""
    url = (base_url or DEFAULT_BASE_URL).rstrip("/")
    return url if re.search(r"/v\d+$", url) else url + "/v1"


def server_root(base_url: str) -> str:
    """Tokenize endpoints live beside /v1, at the server root."""
    return re.sub(r"/v\d+$", "", base_url)


def schema_name(schema: dict) -> str:
    # OpenAI requires ^[a-zA-Z0-9_-]{1,64}$ for the schema name.
    return (re.sub(r"[^a-zA-Z0-9_-]", "_", str(schema.get("title") or "answer")) or "answer")[:64]


def response_format(schema: dict, kind: str) -> dict:
    if kind == "llama-cpp-python":
        return {"type": "json_object", "schema": schema}
    # Hosted OpenAI rejects strict mode unless every object sets additionalProperties: false and requires
    # every property, which pydantic schemas do not; there the schema guides and ModelClient validates.
    strict = kind != "openai"
    return {
        "type": "json_schema",
        "json_schema": {"name": schema_name(schema), "schema": schema, "strict": strict},
    }


def chat_body(
    model: str, messages: list[Message], sampling: Sampling, json_schema: dict | None, kind: str
) -> dict:
    body = _sampled_body(model, sampling, kind)
    body["messages"] = [{"role": m.role, "content": m.content} for m in messages]
    if json_schema is not None:
        body["response_format"] = response_format(json_schema, kind)
    return body


def completion_body(model: str, prompt: str, sampling: Sampling, kind: str) -> dict:
    """`POST /v1/completions`: raw text in, text out (continuation experts ignore chat templates)."""
    return {**_sampled_body(model, sampling, kind), "prompt": prompt}


def _sampled_body(model: str, sampling: Sampling, kind: str) -> dict:
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "frequency_penalty": sampling.frequency_penalty,
        "stream": False,
    }
    if sampling.seed is not None:
        body["seed"] = sampling.seed
    if sampling.stop:
        body["stop"] = list(sampling.stop)
    # Non-OpenAI keys go at the top level of the body, where vLLM and llama.cpp read them; a hosted
    # API would reject them with a 400, so they are sent only to servers known to take them.
    if kind == "vllm":
        body["min_p"] = sampling.min_p
        body["repetition_penalty"] = sampling.repeat_penalty
    elif kind in ("llamacpp", "llama-cpp-python"):
        body["min_p"] = sampling.min_p
        body["repeat_penalty"] = sampling.repeat_penalty
    return body


def parse_completion(payload: Any) -> Completion:
    """A 200 whose body is not a chat completion is a broken answer, worth another try."""
    try:
        choice = payload["choices"][0]
        text = choice["message"].get("content") or ""
        finish = choice.get("finish_reason")
        usage = payload.get("usage") or {}
        return Completion(
            text=text,
            finish_reason=finish if finish in ("length", "halted") else "stop",
            tokens_in=int(usage.get("prompt_tokens") or 0),
            tokens_out=int(usage.get("completion_tokens") or 0),
            # vLLM (--enable-prompt-tokens-details) and hosted APIs report what their prefix cache served.
            tokens_cached=int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0),
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise TransientBackendError(
            f"server answered 200 without a chat completion: {str(payload)[:120]!r}"
        ) from None


def parse_text_completion(payload: Any) -> Completion:
    """A /v1/completions answer; a 200 without one is a broken answer, worth another try."""
    try:
        choice = payload["choices"][0]
        text = choice.get("text")
        if not isinstance(text, str):
            raise TypeError("no text")
        usage = payload.get("usage") or {}
        return Completion(
            text=text,
            finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            tokens_in=int(usage.get("prompt_tokens") or 0),
            tokens_out=int(usage.get("completion_tokens") or 0),
            tokens_cached=int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0),
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValueError):
        raise TransientBackendError(
            f"server answered 200 without a text completion: {str(payload)[:120]!r}"
        ) from None


def error_message(response: httpx.Response) -> str:
    """The server's own words: OpenAI/vLLM `error.message`, FastAPI `detail`, or the raw text."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    msg: Any = None
    if isinstance(payload, dict):
        err = payload.get("error")
        msg = err.get("message") if isinstance(err, dict) else err
        msg = msg or payload.get("detail") or payload.get("message")
    if msg is None:
        msg = response.text
    text = msg if isinstance(msg, str) else json.dumps(msg)
    return " ".join(text.split())[:300]


def retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S) if value is not None else None
    except ValueError:  # an HTTP date: rare from model servers, fall back to our own backoff
        return None


def classify_status(response: httpx.Response, what: str) -> BackendError:
    """429 and 5xx (and 408) are worth retrying; any other 4xx is our mistake or the server's config."""
    status = response.status_code
    message = f"{what}: HTTP {status}: {error_message(response)}"
    if status in (408, 429) or status >= 500:
        exc = TransientBackendError(message)
        # ModelClient reads this to wait at least as long as the server asked.
        exc.retry_after = retry_after_s(response)  # type: ignore[attr-defined]
        return exc
    return BackendError(message)


def kind_from_models(payload: Any) -> str | None:
    """vLLM and llama.cpp sign their /v1/models entries; llama-cpp-python and proxies do not."""
    owners = {str(m.get("owned_by", "")) for m in _model_entries(payload)}
    if "vllm" in owners:
        return "vllm"
    if "llamacpp" in owners:
        return "llamacpp"
    return None


def _model_entries(payload: Any) -> list[dict]:
    data = payload.get("data") if isinstance(payload, dict) else None
    return [m for m in data if isinstance(m, dict) and "id" in m] if isinstance(data, list) else []


def template_from_gguf(path: Path) -> tuple[str, str, str]:
    """The chat template and BOS/EOS strings a llama.cpp server reads from its GGUF."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise BackendError("reading a chat template from a GGUF needs the `gguf` package") from None
    reader = GGUFReader(str(path))

    def field(name: str):
        f = reader.fields.get(name)
        return None if f is None else f.contents()

    template = field("tokenizer.chat_template")
    if not template:
        raise BackendError(f"{path}: the GGUF has no tokenizer.chat_template")
    tokens = field("tokenizer.ggml.tokens") or []

    def token(name: str) -> str:
        idx = field(name)
        return tokens[idx] if isinstance(idx, int) and 0 <= idx < len(tokens) else ""

    return template, token("tokenizer.ggml.bos_token_id"), token("tokenizer.ggml.eos_token_id")


def load_chat_template(spec: str | None) -> tuple[str, str, str]:
    """None -> ChatML; a .gguf path -> its template; any other path -> a jinja2 template file."""
    if not spec:
        return CHATML_TEMPLATE, "", ""
    path = Path(spec)
    if not path.exists():
        raise BackendError(f"chat_template: {path}: file not found")
    if path.suffix == ".gguf":
        return template_from_gguf(path)
    return path.read_text(encoding="utf-8"), "", ""


def render_chat(template: str, messages: list[Message], bos: str = "", eos: str = "") -> str:
    """Render the way llama-cpp-python's Jinja2ChatFormatter does (trim_blocks, lstrip_blocks)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str) -> None:
        raise BackendError(f"chat template: {message}")

    return env.from_string(template).render(
        messages=[{"role": m.role, "content": m.content} for m in messages],
        add_generation_prompt=True,
        bos_token=bos,
        eos_token=eos,
        raise_exception=raise_exception,
    )


# ---------------------------------------------------------------------------------------------------------
# The I/O shell.


class OpenAIOptions(BackendOptions):
    base_url: str | None = None
    # The environment variable that holds the API key: the key itself is never stored or logged.
    api_key_env: str = "OPENAI_API_KEY"
    # auto (detected from /v1/models and the tokenize endpoints), vllm, llamacpp, llama-cpp-python or
    # openai (hosted: no vendor sampling keys, offline token estimate).
    server_kind: Literal["auto", "vllm", "llamacpp", "llama-cpp-python", "openai"] = "auto"
    # On a llama-cpp-python server, which tokenizes text but cannot apply its chat template: a .gguf
    # (its template is read) or a jinja2 file, for exact prompt counts; None = ChatML.
    chat_template: str | None = None
    timeout_s: float = Field(default=300.0, gt=0)


@register
class OpenAICompatBackend(Backend):
    name = "openai"
    summary = "any OpenAI-compatible server: vLLM, a llama.cpp server, hosted APIs"
    Options = OpenAIOptions
    local_adapters = False

    @classmethod
    def from_options(cls, common: BackendCommon, options: OpenAIOptions) -> OpenAICompatBackend:
        return cls(
            options.base_url,
            common.model,
            api_key=os.environ.get(options.api_key_env) or None,
            adapters=common.adapters,
            timeout_s=options.timeout_s,
            server_kind=options.server_kind,
            chat_template=options.chat_template,
            aux_attempts=common.max_attempts,
            aux_backoff_s=common.backoff_s,
        )

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        *,
        api_key: str | None = None,
        adapters: dict[str, str] | None = None,
        timeout_s: float = 300.0,
        server_kind: str = "auto",
        chat_template: str | None = None,
        aux_attempts: int = 4,
        aux_backoff_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if server_kind not in SERVER_KINDS:
            raise BackendError(f"server_kind '{server_kind}' is not one of: {', '.join(SERVER_KINDS)}")
        self.base_url = normalize_base_url(base_url)
        self.root = server_root(self.base_url)
        self.model = model or ""
        self.adapters = dict(adapters or {})
        self.kind = None if server_kind == "auto" else server_kind
        self.chat_template_spec = chat_template
        self.aux_attempts = max(1, aux_attempts)
        self.aux_backoff_s = aux_backoff_s
        import httpx  # here, not at the top: `novelcraft list` and `--help` import every backend module

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            transport=transport,
        )
        self._models_payload: Any = None
        self._template: tuple[str, str, str] | None = None
        self._text_overhead: int | None = None
        self._token_cache: dict[str, int] = {}
        self._window: int | None | bool = False  # False: not asked yet
        self._lock = threading.Lock()

    # HTTP -------------------------------------------------------------------------------------------------
    @contextmanager
    def _transport(self, what: str) -> Iterator[None]:
        """httpx failures as the engine's errors: all of them transient (the next try may connect)."""
        import httpx

        try:
            yield
        except httpx.TimeoutException as exc:
            raise TransientBackendError(f"{what}: timed out ({type(exc).__name__})") from None
        except httpx.ConnectError as exc:
            raise TransientBackendError(
                f"{what}: cannot connect ({exc}); is the server running at {self.base_url}?"
            ) from None
        except httpx.TransportError as exc:  # dropped connection, protocol error mid-answer
            raise TransientBackendError(f"{what}: connection failed ({type(exc).__name__}: {exc})") from None

    def _request(self, method: str, url: str, body: dict | None = None, what: str | None = None) -> Any:
        what = what or f"{method} {url}"
        with self._transport(what):
            response = self._http.request(method, url, json=body)
        if response.status_code >= 400:
            raise classify_status(response, what)
        return self._json_of(response, what)

    @staticmethod
    def _json_of(response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            # A 200 with a cut or garbled body (a proxy, a crashed worker): the next try may be whole.
            raise TransientBackendError(f"{what}: malformed JSON body ({response.text[:80]!r})") from None

    def _streamed_chat(self, body: dict, messages: list[Message], watch: Watch) -> Completion:
        """A streamed chat completion that `watch` may stop at a sentence end: closing the stream makes
        vLLM and llama.cpp abort the request, so the tokens after it are never generated. Usage comes in
        the last chunk where the server sends it (stream_options); a halted stream has none, and its
        tokens are counted here."""
        what = "chat completion"
        body = {**body, "stream": True}
        if self.server_kind() in ("vllm", "llamacpp", "openai"):
            body["stream_options"] = {"include_usage": True}
        text, finish, usage = "", "stop", {}
        with (
            self._transport(what),
            self._http.stream("POST", f"{self.base_url}/chat/completions", json=body) as response,
        ):
            if response.status_code >= 400:
                response.read()
                raise classify_status(response, what)
            if response.headers.get("content-type", "").startswith("application/json"):
                # A server that ignores `stream` answers one JSON body: read as such, not as a stream
                # with no events in it (an empty scene).
                response.read()
                return parse_completion(self._json_of(response, what))
            for line in response.iter_lines():
                data = line.removeprefix("data:").strip()
                if not line.startswith("data:") or not data:
                    continue
                if data == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                    usage = chunk.get("usage") or usage
                    choice = (chunk.get("choices") or [{}])[0]
                    delta = (choice.get("delta") or {}).get("content") or ""
                except (ValueError, AttributeError, TypeError):
                    raise TransientBackendError(f"{what}: malformed stream chunk ({data[:80]!r})") from None
                if delta:
                    if at_sentence_end(text, delta) and watch(text):
                        finish = "halted"
                        break
                    text += delta
                if choice.get("finish_reason"):
                    finish = "length" if choice["finish_reason"] == "length" else "stop"
        if finish == "halted" or not usage:
            usage = {
                "prompt_tokens": self.count_prompt_tokens(messages),
                "completion_tokens": self.count_tokens(text),
            }
        return parse_completion(
            {"choices": [{"message": {"content": text}, "finish_reason": finish}], "usage": usage}
        )

    def _aux(self, fn: Callable[[], Any]) -> Any:
        """Bounded retries for idempotent side requests (models, tokenize).

        Model calls are retried (and recorded) by ModelClient only; these requests are not model calls
        and the engine calls count_tokens outside ModelClient, so a blip must not end the run.
        """
        for attempt in range(1, self.aux_attempts + 1):
            try:
                return fn()
            except TransientBackendError as exc:
                if attempt == self.aux_attempts:
                    raise
                wait = self.aux_backoff_s * 2 ** (attempt - 1) * (0.5 + random.random())
                time.sleep(max(wait, getattr(exc, "retry_after", None) or 0.0))
        raise AssertionError("unreachable")

    # discovery --------------------------------------------------------------------------------------------
    def served_models(self, refresh: bool = False) -> list[str]:
        if self._models_payload is None or refresh:
            self._models_payload = self._aux(
                lambda: self._request("GET", f"{self.base_url}/models", what="GET /v1/models")
            )
        return [str(m["id"]) for m in _model_entries(self._models_payload)]

    def _ensure_model(self) -> str:
        if not self.model:
            served = self.served_models()
            if not served:
                raise BackendError(f"{self.base_url}: the server lists no models at /v1/models")
            # A llama.cpp server serves one model; taking it spares the user its file path as a name.
            self.model = served[0]
        return self.model

    def server_kind(self) -> str:
        if self.kind is None:
            with self._lock:
                if self.kind is None:
                    self.served_models()
                    self.kind = kind_from_models(self._models_payload) or self._probe_kind()
        return self.kind

    def _probe_kind(self) -> str:
        def probe(path: str, body: dict) -> Any:
            try:
                return self._request("POST", f"{self.root}{path}", body, what=f"POST {path}")
            except TransientBackendError:
                raise
            except BackendError:  # 404/405/422: not this kind of server
                return None

        if isinstance(self._aux(lambda: probe("/extras/tokenize/count", {"input": "a"})), dict):
            return "llama-cpp-python"
        both = {"model": self._ensure_model(), "prompt": "a", "content": "a", "add_special_tokens": False}
        answer = self._aux(lambda: probe("/tokenize", both))
        if isinstance(answer, dict) and "count" in answer:
            return "vllm"
        if isinstance(answer, dict) and "tokens" in answer:
            return "llamacpp"
        return "openai"

    def context_window(self) -> int | None:
        """vLLM's --max-model-len from /v1/models; llama.cpp's per-slot n_ctx from /props."""
        if self._window is False:
            self._window = self._ask_window()
        return self._window

    def _ask_window(self) -> int | None:
        kind = self.server_kind()
        if kind == "vllm":
            model = self._ensure_model()
            for entry in _model_entries(self._models_payload):
                if entry["id"] == model and isinstance(entry.get("max_model_len"), int):
                    return entry["max_model_len"]
        elif kind == "llamacpp":
            props = self._aux(lambda: self._request("GET", f"{self.root}/props", what="GET /props"))
            settings = props.get("default_generation_settings") if isinstance(props, dict) else None
            n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
            return n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None
        return None

    def served_name(self, adapter: str | None) -> str:
        return self._ensure_model() if adapter is None else self.adapters.get(adapter, adapter)

    def check(self, adapters: list[str] | None = None) -> None:
        try:
            served = self.served_models(refresh=True)
        except BackendError as exc:
            raise BackendError(f"openai backend: {exc}") from None
        model = self._ensure_model()
        if model not in served:
            raise BackendError(
                f"{self.base_url}: model '{model}' is not served (served: {', '.join(served) or 'none'})"
            )
        for name in adapters if adapters is not None else sorted(self.adapters):
            lora = self.adapters.get(name, name)
            if lora not in served:
                raise BackendError(
                    f"{self.base_url}: adapter '{name}' (served name '{lora}') is not served "
                    f"(served: {', '.join(served)}); start vLLM with --enable-lora --lora-modules {lora}=PATH"
                )
        self.server_kind()

    # generation -------------------------------------------------------------------------------------------
    def complete(
        self,
        messages: list[Message],
        sampling: Sampling,
        *,
        json_schema: dict | None = None,
        adapter: str | None = None,
        watch: Watch | None = None,
    ) -> Completion:
        body = chat_body(self.served_name(adapter), messages, sampling, json_schema, self.server_kind())
        if watch is not None and json_schema is None:
            return self._streamed_chat(body, messages, watch)
        payload = self._request("POST", f"{self.base_url}/chat/completions", body, what="chat completion")
        return parse_completion(payload)

    def complete_text(self, prompt: str, sampling: Sampling, *, adapter: str | None = None) -> Completion:
        body = completion_body(self.served_name(adapter), prompt, sampling, self.server_kind())
        payload = self._request("POST", f"{self.base_url}/completions", body, what="text completion")
        return parse_text_completion(payload)

    # token counts -----------------------------------------------------------------------------------------
    def _tokenize_count(self, path: str, body: dict) -> int:
        payload = self._aux(lambda: self._request("POST", f"{self.root}{path}", body, what=f"POST {path}"))
        if isinstance(payload, dict) and isinstance(payload.get("count"), int):
            return payload["count"]
        if isinstance(payload, dict) and isinstance(payload.get("tokens"), list):
            return len(payload["tokens"])
        raise BackendError(f"POST {path}: unexpected answer {str(payload)[:120]!r}")

    def _llama_cpp_python_count(self, text: str) -> int:
        # Its endpoint always adds the model's BOS (when the model has one): measure that once, subtract.
        body = {"model": self._ensure_model(), "input": text}
        if self._text_overhead is None:
            self._text_overhead = self._tokenize_count("/extras/tokenize/count", {**body, "input": ""})
        return self._tokenize_count("/extras/tokenize/count", body) - self._text_overhead

    def _count_uncached(self, text: str) -> int:
        kind = self.server_kind()
        if kind == "vllm":
            body = {"model": self._ensure_model(), "prompt": text, "add_special_tokens": False}
            return self._tokenize_count("/tokenize", body)
        if kind == "llamacpp":
            return self._tokenize_count("/tokenize", {"content": text, "add_special": False})
        if kind == "llama-cpp-python":
            return self._llama_cpp_python_count(text)
        return fallback_count(text)

    def count_tokens(self, text: str) -> int:
        # The engine counts the same summary and world text several times while fitting it.
        cached = self._token_cache.get(text)
        if cached is None:
            cached = self._count_uncached(text)
            if len(self._token_cache) >= _TOKEN_CACHE_SIZE:
                self._token_cache.clear()
            self._token_cache[text] = cached
        return cached

    def count_prompt_tokens(self, messages: list[Message]) -> int:
        kind = self.server_kind()
        plain = [{"role": m.role, "content": m.content} for m in messages]
        if kind == "vllm":
            body = {"model": self._ensure_model(), "messages": plain, "add_generation_prompt": True}
            return self._tokenize_count("/tokenize", body)
        if kind == "llamacpp":
            rendered = self._aux(
                lambda: self._request(
                    "POST", f"{self.root}/apply-template", {"messages": plain}, what="POST /apply-template"
                )
            )
            prompt = rendered.get("prompt", "") if isinstance(rendered, dict) else ""
            body = {"content": prompt, "add_special": True, "parse_special": True}
            return self._tokenize_count("/tokenize", body)
        if kind == "llama-cpp-python":
            if self._template is None:
                self._template = load_chat_template(self.chat_template_spec)
            template, bos, eos = self._template
            # The server tokenizes the rendered prompt with specials parsed and no extra BOS.
            return self._llama_cpp_python_count(render_chat(template, messages, bos, eos))
        return super().count_prompt_tokens(messages)

    def close(self) -> None:
        self._http.close()
