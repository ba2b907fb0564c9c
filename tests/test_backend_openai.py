"""The `openai` backend: request mapping, error classification, /v1/models check, tokenize endpoints.

Pure functions are tested directly; the HTTP shell against tests/openai_sim.py on 127.0.0.1.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from openai_sim import SimServer, free_port, sim_prompt_tokens, sim_tokens
from typer.testing import CliRunner

from novelcraft.backends.base import Backend, BackendError, Completion, TransientBackendError
from novelcraft.backends.openai_compat import (
    CHATML_TEMPLATE,
    OpenAICompatBackend,
    chat_body,
    classify_status,
    kind_from_models,
    normalize_base_url,
    parse_completion,
    render_chat,
    response_format,
    server_root,
)
from novelcraft.cli.main import app
from novelcraft.core.schema import Message, Sampling
from novelcraft.core.tokens import fallback_count
from novelcraft.runtime.calls import ModelClient
from novelcraft.settings.backend import create_backend
from novelcraft.settings.config import resolve_settings

SHORT_SEED = Path(__file__).resolve().parents[1] / "stories" / "short.yaml"

MSGS = [Message(role="system", content="You write."), Message(role="user", content="Begin, please.")]
SCHEMA = {"title": "Scene Goal!", "type": "object", "properties": {"goal": {"type": "string"}}}
SAMPLING = Sampling(
    temperature=0.7, top_p=0.9, min_p=0.05, repeat_penalty=1.1, frequency_penalty=0.2, max_tokens=99, seed=5
)


def backend_for(sim: SimServer, **kw) -> OpenAICompatBackend:
    kw.setdefault("timeout_s", 2.0)
    kw.setdefault("aux_backoff_s", 0.0)
    return OpenAICompatBackend(sim.base_url, kw.pop("model", sim.model), **kw)


# pure mapping ------------------------------------------------------------------------------------------


def test_chat_body_for_vllm_has_vendor_keys_and_json_schema():
    body = chat_body("christie", MSGS, SAMPLING.model_copy(update={"stop": ["###"]}), SCHEMA, "vllm")
    assert body["model"] == "christie"
    assert body["messages"] == [m.model_dump() for m in MSGS]
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"]) == (99, 0.7, 0.9, 5)
    assert body["frequency_penalty"] == 0.2
    assert body["min_p"] == 0.05 and body["repetition_penalty"] == 1.1 and "repeat_penalty" not in body
    assert body["stop"] == ["###"]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Scene_Goal_", "schema": SCHEMA, "strict": True},
    }
    assert "guided_json" not in body


def test_chat_body_per_server_kind():
    lcp = chat_body("m", MSGS, SAMPLING, SCHEMA, "llama-cpp-python")
    # llama-cpp-python's request model only accepts json_object (+ schema, turned into a grammar).
    assert lcp["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert lcp["repeat_penalty"] == 1.1 and "repetition_penalty" not in lcp
    llamacpp = chat_body("m", MSGS, SAMPLING, SCHEMA, "llamacpp")
    assert llamacpp["response_format"]["type"] == "json_schema" and llamacpp["repeat_penalty"] == 1.1
    hosted = chat_body("m", MSGS, SAMPLING.model_copy(update={"seed": None}), None, "openai")
    assert not {"min_p", "repetition_penalty", "repeat_penalty", "seed", "stop", "response_format"} & set(
        hosted
    )


def test_urls_and_schema_name():
    assert normalize_base_url("http://h:8000") == "http://h:8000/v1"
    assert normalize_base_url("http://h:8000/v1/") == "http://h:8000/v1"
    assert normalize_base_url(None) == "http://127.0.0.1:8000/v1"
    assert server_root("http://h:8000/v1") == "http://h:8000"
    assert response_format({"type": "object"}, "vllm")["json_schema"]["name"] == "answer"
    assert response_format(SCHEMA, "openai")["json_schema"]["strict"] is False


def _response(status: int, payload: object, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(status, json=payload, headers=headers)


def test_classify_status():
    busy = classify_status(_response(429, {"error": {"message": "slow down"}}, {"Retry-After": "2"}), "chat")
    assert isinstance(busy, TransientBackendError) and busy.retry_after == 2.0
    assert "HTTP 429: slow down" in str(busy)
    capped = classify_status(_response(503, {}, {"Retry-After": "9999"}), "chat")
    assert isinstance(capped, TransientBackendError) and capped.retry_after == 60.0
    assert isinstance(classify_status(_response(500, {}), "chat"), TransientBackendError)
    assert isinstance(classify_status(_response(408, {}), "chat"), TransientBackendError)
    bad = classify_status(_response(400, {"error": {"message": "bad schema"}}), "chat")
    assert type(bad) is BackendError and "bad schema" in str(bad)
    unprocessable = classify_status(_response(422, {"detail": [{"msg": "field required"}]}), "chat")
    assert type(unprocessable) is BackendError and "field required" in str(unprocessable)
    auth = classify_status(httpx.Response(401, text="Invalid API key"), "chat")
    assert type(auth) is BackendError and "Invalid API key" in str(auth)


def test_parse_completion():
    ok = parse_completion(
        {
            "choices": [{"message": {"content": "hi"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3},
        }
    )
    assert ok == Completion(text="hi", finish_reason="length", tokens_in=7, tokens_out=3)
    with pytest.raises(TransientBackendError):
        parse_completion({"object": "error"})


def test_kind_from_models():
    assert kind_from_models({"data": [{"id": "m", "owned_by": "vllm"}]}) == "vllm"
    assert kind_from_models({"data": [{"id": "m", "owned_by": "llamacpp"}]}) == "llamacpp"
    assert kind_from_models({"data": [{"id": "m", "owned_by": "me"}]}) is None


def test_render_chatml():
    text = render_chat(CHATML_TEMPLATE, MSGS)
    assert text == (
        "<|im_start|>system\nYou write.<|im_end|>\n<|im_start|>user\nBegin, please.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_model_client_waits_at_least_retry_after():
    class Busy(Backend):
        name = "busy"
        calls = 0

        def complete(self, messages, sampling, *, json_schema=None, adapter=None):
            self.calls += 1
            if self.calls == 1:
                exc = TransientBackendError("HTTP 429")
                exc.retry_after = 3.0
                raise exc
            return Completion(text="ok")

    waits: list[float] = []
    client = ModelClient(Busy(), backoff_s=0.01, sleep=waits.append)
    assert client.text("t", MSGS, SAMPLING).text == "ok"
    assert waits == [3.0]


# over HTTP ---------------------------------------------------------------------------------------------


def test_complete_sends_mapped_request_and_adapter_as_model():
    with SimServer(loras=("christie-lora",)) as sim:
        backend = backend_for(sim, adapters={"christie": "christie-lora"}, api_key="sk-test")
        backend.check(["christie"])
        assert backend.server_kind() == "vllm"
        out = backend.complete(MSGS, SAMPLING, json_schema=SCHEMA, adapter="christie")
        path, body, auth = sim.requests[-1]
        assert path == "/v1/chat/completions" and auth == "Bearer sk-test"
        assert body["model"] == "christie-lora" and body["response_format"]["type"] == "json_schema"
        assert body["seed"] == 5 and body["repetition_penalty"] == 1.1 and body["min_p"] == 0.05
        assert set(__import__("json").loads(out.text)) == {"goal"}
        assert out.tokens_in == sim_prompt_tokens([m.model_dump() for m in MSGS]) and out.tokens_out > 0
        plain = backend.complete(MSGS, SAMPLING)
        assert sim.requests[-1][1]["model"] == sim.model and "response_format" not in sim.requests[-1][1]
        assert plain.text and plain.finish_reason in ("stop", "length")
        backend.close()


def test_check_names_missing_model_and_adapter():
    with SimServer(model="qwen", loras=("christie",)) as sim:
        with pytest.raises(BackendError, match=r"model 'llama' is not served \(served: qwen, christie\)"):
            backend_for(sim, model="llama").check()
        missing = backend_for(sim, model="qwen", adapters={"lovecraft": "lovecraft-v2"})
        with pytest.raises(
            BackendError, match="adapter 'lovecraft' \\(served name 'lovecraft-v2'\\) is not served"
        ):
            missing.check()
        with pytest.raises(BackendError, match="adapter 'poe'"):
            backend_for(sim, model="qwen").check(["poe"])
        backend_for(sim, model="qwen").check(["christie"])


def test_model_defaults_to_the_first_served():
    with SimServer(model="only-one") as sim:
        backend = OpenAICompatBackend(sim.base_url, None, timeout_s=2)
        backend.check()
        assert backend.model == "only-one"


def test_dead_server_is_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = OpenAICompatBackend(url, "m", timeout_s=1, aux_attempts=2, aux_backoff_s=0)
    with pytest.raises(BackendError, match=r"cannot connect .*is the server running at http://127\.0\.0\.1"):
        backend.check()
    with pytest.raises(TransientBackendError, match="cannot connect"):
        OpenAICompatBackend(url, "m", server_kind="vllm", timeout_s=1).complete(MSGS, SAMPLING)


@pytest.mark.parametrize("fault", ["500", "503", "429", "timeout", "drop", "cut_body"])
def test_http_faults_are_transient(fault):
    with SimServer(fault_rate=1.0, faults=(fault,), stall_s=0.6) as sim:
        backend = backend_for(sim, server_kind="vllm", timeout_s=0.3)
        with pytest.raises(TransientBackendError):
            backend.complete(MSGS, SAMPLING)
        assert sim.injected[fault] == 1


def test_unknown_model_on_call_is_fatal():
    with SimServer() as sim:
        backend = backend_for(sim, server_kind="vllm", adapters={"x": "not-served"})
        with pytest.raises(BackendError, match="HTTP 404.*does not exist") as info:
            backend.complete(MSGS, SAMPLING, adapter="x")
        assert not isinstance(info.value, TransientBackendError)


def test_token_counts_come_from_tokenize_endpoint_and_are_cached():
    with SimServer() as sim:
        backend = backend_for(sim)
        text = "The keeper, tired, climbed the stair."
        assert backend.count_tokens(text) == sim_tokens(text) == 9
        before = len(sim.requests)
        assert backend.count_tokens(text) == 9 and len(sim.requests) == before
        _, body, _ = sim.requests[-1]
        assert body == {"model": sim.model, "prompt": text, "add_special_tokens": False}
        assert backend.count_prompt_tokens(MSGS) == sim_prompt_tokens([m.model_dump() for m in MSGS])
        assert sim.requests[-1][1]["add_generation_prompt"] is True


def test_llamacpp_server_counts_with_apply_template_and_tokenize():
    with SimServer(owned_by="llamacpp") as sim:
        backend = backend_for(sim)
        assert backend.server_kind() == "llamacpp"
        assert backend.count_tokens("Ewan waits.") == 3
        assert sim.requests[-1][1] == {"content": "Ewan waits.", "add_special": False}
        # <|im_start|>system\nYou write.<|im_end|>\n ... <|im_start|>assistant\n: 5 specials + 10 words/marks.
        assert backend.count_prompt_tokens(MSGS) == 15
        assert [p for p, _, _ in sim.requests[-2:]] == ["/apply-template", "/tokenize"]
        assert sim.requests[-1][1]["parse_special"] is True and sim.requests[-1][1]["add_special"] is True


def test_kind_probe_when_models_are_unsigned():
    with SimServer(owned_by="proxy") as sim:
        backend = backend_for(sim)
        # No llama-cpp-python /extras/tokenize here; /tokenize answers with a count, as vLLM does.
        assert backend.server_kind() == "vllm"
        assert [p for p, _, _ in sim.requests] == ["/v1/models", "/extras/tokenize/count", "/tokenize"]


def test_hosted_kind_falls_back_to_offline_counts():
    with SimServer(owned_by="openai") as sim:
        backend = backend_for(sim, server_kind="openai")
        assert backend.count_tokens("a quiet harbor") == fallback_count("a quiet harbor")
        assert sim.requests == []


def test_aux_requests_retry_transient_faults():
    with SimServer(fault_rate=1.0, faults=("500",)) as sim:
        backend = backend_for(sim, server_kind="vllm", aux_attempts=3)
        with pytest.raises(TransientBackendError, match="HTTP 500"):
            backend.count_tokens("x")
        assert len(sim.requests) == 3


def test_create_backend_from_settings(monkeypatch):
    with SimServer(loras=("christie",)) as sim:
        monkeypatch.setenv("MY_KEY", "sk-env")
        settings = resolve_settings(
            env={"NOVELCRAFT_OPENAI_API_KEY_ENV": "MY_KEY", "NOVELCRAFT_OPENAI_TIMEOUT_S": "3"},
            flags={"backend": "openai", "model": sim.model},
            backend_flags={"base_url": f"http://127.0.0.1:{sim.port}"},
        )
        backend = create_backend(settings)
        assert isinstance(backend, OpenAICompatBackend) and backend.base_url == sim.base_url
        backend.check(["christie"])
        assert sim.requests[0][2] == "Bearer sk-env"


def test_context_window_is_read_from_the_server():
    with SimServer(max_model_len=2048) as sim:
        assert backend_for(sim).context_window() == 2048
    with SimServer(owned_by="llamacpp", max_model_len=3072) as sim:
        assert backend_for(sim).context_window() == 3072
        assert [p for p, _, _ in sim.requests].count("/props") == 1
    with SimServer(owned_by="openai") as sim:
        assert backend_for(sim).context_window() is None


def test_novel_fits_a_server_window_smaller_than_n_ctx(tmp_path):
    """n_ctx says 32k but vLLM serves 2400: every request must fit 2400, or vLLM answers 400."""
    seed = tmp_path / "long-scenes.yaml"
    seed.write_text(SHORT_SEED.read_text().replace("scene_words: 500", "scene_words: 2000"))
    with SimServer(max_model_len=2400) as sim:
        env = {"NOVELCRAFT_CONFIG": "", "NOVELCRAFT_N_CTX": "32768"}
        base = ["--db", str(tmp_path / "n.db"), "--backend", "openai", "--base-url", sim.base_url]
        result = CliRunner().invoke(app, [*base, "write", str(seed), "--json"], env=env)
        assert result.exit_code == 0, result.output
        chats = [body for path, body, _ in sim.requests if path == "/v1/chat/completions"]
    totals = [sim_prompt_tokens(b["messages"]) + b["max_tokens"] for b in chats]
    assert max(totals) <= 2400 - 16
    # Scene calls asked for 2,600 tokens (1.3 a word) after a ~760-token prompt and were cut to what the
    # window leaves.
    assert sum(total == 2400 - 16 for total in totals) >= 3


def test_a_watched_chat_streams_and_hangs_up_once_the_watch_says_stop():
    with SimServer() as sim:
        backend = backend_for(sim, server_kind="vllm")
        sim.fake.enqueue("The lamp was lit. " + "The gulls cried over the rock again and again. " * 300)
        seen: list[str] = []
        out = backend.complete(MSGS, SAMPLING, watch=lambda text: seen.append(text) or len(seen) == 3)
        assert out.finish_reason == "halted" and out.text == seen[-1] and out.text.count(".") == 3
        assert out.tokens_out == sim_tokens(out.text)
        assert out.tokens_in == sim_prompt_tokens([m.model_dump() for m in MSGS])
        deadline = time.monotonic() + 30
        while not sim.streamed and time.monotonic() < deadline:
            time.sleep(0.05)  # the server's thread notes the hang-up on its next write
        chunks, sent = sim.streamed[-1]
        assert sent < chunks, "the server went on generating after the client stopped reading"
        chats = [body for path, body, _ in sim.requests if path == "/v1/chat/completions"]
        assert chats[-1]["stream"] is True
        # A stream the watch lets run is the whole answer, with the server's own usage.
        sim.fake.enqueue("One line. Two lines.")
        whole = backend.complete(MSGS, SAMPLING, watch=lambda text: False)
        assert (whole.text, whole.finish_reason) == ("One line. Two lines.", "stop")
        assert whole.tokens_out == sim_tokens("One line. Two lines.")
        chats = [body for path, body, _ in sim.requests if path == "/v1/chat/completions"]
        assert chats[-1]["stream_options"] == {"include_usage": True}
