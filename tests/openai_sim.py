"""A simulated vLLM-style OpenAI-compatible server on 127.0.0.1, for tests and bench/client_overhead.py.

Answers come from the engine's FakeBackend (valid JSON for a schema, prose otherwise), so a whole novel
can be drafted through the real `openai` backend over real HTTP. Faults are injected on a share of the
requests, on an even schedule with a seeded phase, so a run is repeatable:
  500 / 503+Retry-After / 429, a stall past the client's timeout, a connection dropped without an answer,
  a 200 whose body is cut mid-JSON, and (for schema calls) model content that is malformed or truncated.
"""

from __future__ import annotations

import json
import random
import re
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from novelcraft.backends.fake import FakeBackend
from novelcraft.backends.openai_compat import CHATML_TEMPLATE, render_chat
from novelcraft.core.schema import Message, Sampling

HTTP_FAULTS = ("500", "503", "429", "timeout", "drop", "cut_body")
CONTENT_FAULTS = ("malformed_content", "truncated_content")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sim_tokens(text: str) -> int:
    return len(re.findall(r"\w+|[^\w\s]", text))


def sim_prompt_tokens(messages: list[dict]) -> int:
    return sum(sim_tokens(m["content"]) + 4 for m in messages) + 2


class SimServer:
    def __init__(
        self,
        model: str = "sim-model",
        loras: tuple[str, ...] = (),
        *,
        port: int = 0,
        fault_rate: float = 0.0,
        faults: tuple[str, ...] = HTTP_FAULTS + CONTENT_FAULTS,
        stall_s: float = 1.5,
        seed: int = 0,
        owned_by: str = "vllm",
        fixed_answer: bytes | None = None,
        die_after: int | None = None,
        rotation: dict[bool, int] | None = None,
        max_model_len: int = 8192,
    ) -> None:
        self.model, self.loras, self.owned_by = model, loras, owned_by
        # Streamed answers: (chunks in the answer, chunks written before the client hung up or the end).
        self.streamed: list[tuple[int, int]] = []
        self.stream_delay_s = 0.002
        self.max_model_len = max_model_len
        self.fault_rate, self.faults, self.stall_s = fault_rate, faults, stall_s
        self.fake = FakeBackend(model)
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        # (path, body, Authorization header) of every request, faults included.
        self.requests: list[tuple[str, dict | None, str | None]] = []
        self.injected: Counter[str] = Counter()
        self.fixed_answer = fixed_answer
        # After this many answered chat completions the server goes away (connections refused).
        self.die_after, self.answered, self.dead = die_after, 0, False
        # Where each fault rotation stands; pass one server's to the next to carry it on.
        self.rotation = rotation if rotation is not None else {False: 0, True: 0}
        self._n, self._phase = 0, self.rng.random()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._stopped = False
        self._stop_lock = threading.Lock()

    def __enter__(self) -> SimServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
            if self._thread.is_alive():
                self.httpd.shutdown()
            self.httpd.server_close()

    def draw_fault(self, json_call: bool) -> str | None:
        with self.lock:
            # An even schedule (every 1/rate-th request, from a seeded phase) rather than coin flips:
            # exactly `fault_rate` of the requests fail however few a short run makes.
            n, self._n = self._n, self._n + 1
            if int((n + 1) * self.fault_rate + self._phase) == int(n * self.fault_rate + self._phase):
                return None
            # Kinds rotate rather than being drawn, so every kind shows up in a short run; structured
            # calls are few, so they get the content faults that only they can have.
            content = [f for f in self.faults if f in CONTENT_FAULTS]
            kinds = content if json_call and content else [f for f in self.faults if f not in CONTENT_FAULTS]
            if not kinds:
                return None
            fault = kinds[self.rotation[json_call] % len(kinds)]
            self.rotation[json_call] += 1
            self.injected[fault] += 1
            return fault

    def _maybe_die(self) -> None:
        with self.lock:
            self.answered += 1
            if self.die_after is None or self.answered < self.die_after:
                return
            self.dead = True
        threading.Thread(target=self.stop, daemon=True).start()

    # answers -------------------------------------------------------------------------------------------
    def models(self) -> dict:
        data = [{"id": self.model, "object": "model", "owned_by": self.owned_by, "root": self.model}]
        if self.owned_by == "vllm":
            data[0]["max_model_len"] = self.max_model_len
        data += [
            {"id": n, "object": "model", "owned_by": self.owned_by, "parent": self.model} for n in self.loras
        ]
        return {"object": "list", "data": data}

    def tokenize_llamacpp(self, body: dict) -> dict:
        """llama.cpp server's dialect: `content` in, `tokens` out, specials only when asked."""
        text = body.get("content", "")
        specials = text.count("<|im_start|>") + text.count("<|im_end|>") if body.get("parse_special") else 0
        bare = text.replace("<|im_start|>", " ").replace("<|im_end|>", " ") if specials else text
        return {"tokens": list(range(sim_tokens(bare) + specials))}

    def tokenize(self, body: dict) -> dict:
        count = (
            sim_prompt_tokens(body["messages"]) if "messages" in body else sim_tokens(body.get("prompt", ""))
        )
        return {"count": count, "tokens": list(range(count)), "max_model_len": self.max_model_len}

    def chat(self, body: dict, content_fault: str | None) -> dict:
        if body["model"] not in (self.model, *self.loras):
            raise LookupError(body["model"])
        messages = [Message(**m) for m in body["messages"]]
        sampling = Sampling(max_tokens=body.get("max_tokens") or 512, seed=body.get("seed"))
        prompt_tokens = sim_prompt_tokens(body["messages"])
        if self.owned_by == "vllm" and prompt_tokens + sampling.max_tokens > self.max_model_len:
            # vLLM refuses such a request outright (400); it does not shorten the completion.
            raise OverflowError(
                f"This model's maximum context length is {self.max_model_len} tokens. However, you "
                f"requested {prompt_tokens + sampling.max_tokens} tokens ({prompt_tokens} in the "
                f"messages, {sampling.max_tokens} in the completion)."
            )
        rf = body.get("response_format") or {}
        schema = rf.get("json_schema", {}).get("schema") if rf.get("type") == "json_schema" else None
        adapter = None if body["model"] == self.model else body["model"]
        out = self.fake.complete(messages, sampling, json_schema=schema, adapter=adapter)
        text, finish = out.text, out.finish_reason
        if content_fault == "malformed_content":
            text = "Sure! Here it is: " + text.replace('"', "'")
        elif content_fault == "truncated_content":
            text, finish = text[: len(text) // 2], "length"
        return {
            "id": "chatcmpl-sim",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
            ],
            "usage": {
                "prompt_tokens": sim_prompt_tokens(body["messages"]),
                "completion_tokens": sim_tokens(text),
                "total_tokens": 0,
            },
        }

    def _handler(self):
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body go out in two writes; without this, Nagle + delayed ACK add ~40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: object) -> None:
                pass

            def _send(
                self, status: int, payload: object, headers: dict | None = None, cut: bool = False
            ) -> None:
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                if cut:
                    raw = raw[: max(1, len(raw) // 2)]
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            def _stream(self, payload: dict, include_usage: bool) -> None:
                """The answer as server-sent events, a word a chunk; a client that hangs up stops it."""
                choice = payload["choices"][0]
                pieces = re.findall(r"\s*\S+", choice["message"]["content"])
                chunks = [
                    {"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
                    for p in pieces
                ]
                chunks.append(
                    {"choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]}
                )
                if include_usage:
                    chunks.append({"choices": [], "usage": payload["usage"]})
                self.close_connection = True
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                sent = 0
                try:
                    for chunk in chunks:
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        sent += 1
                        time.sleep(sim.stream_delay_s)
                    self.wfile.write(b"data: [DONE]\n\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                with sim.lock:
                    sim.streamed.append((len(chunks), sent))

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                if sim.fixed_answer is not None:  # the benchmark's answer-at-once mode
                    self._send(200, sim.fixed_answer)
                    return
                if sim.dead:  # kept-alive connections outlive the listening socket
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                with sim.lock:
                    sim.requests.append((self.path, body, self.headers.get("Authorization")))
                json_call = bool(body and body.get("response_format"))
                fault = sim.draw_fault(json_call)
                if fault == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault == "timeout":
                    time.sleep(sim.stall_s)
                    self.close_connection = True
                    return
                if fault in ("500", "503", "429"):
                    headers = {"Retry-After": "0"} if fault != "500" else None
                    self._send(int(fault), {"error": {"message": f"simulated {fault}"}}, headers)
                    return
                try:
                    if method == "GET" and self.path == "/v1/models":
                        payload = sim.models()
                    elif method == "POST" and self.path == "/tokenize" and sim.owned_by == "llamacpp":
                        payload = sim.tokenize_llamacpp(body)
                    elif method == "POST" and self.path == "/apply-template" and sim.owned_by == "llamacpp":
                        payload = {
                            "prompt": render_chat(CHATML_TEMPLATE, [Message(**m) for m in body["messages"]])
                        }
                    elif method == "GET" and self.path == "/props" and sim.owned_by == "llamacpp":
                        payload = {"default_generation_settings": {"n_ctx": sim.max_model_len}}
                    elif method == "POST" and self.path == "/tokenize":
                        payload = sim.tokenize(body)
                    elif method == "POST" and self.path == "/v1/chat/completions":
                        payload = sim.chat(body, fault if fault in CONTENT_FAULTS else None)
                    else:
                        self._send(404, {"detail": "Not Found"})
                        return
                except OverflowError as exc:
                    self._send(400, {"object": "error", "message": str(exc), "code": 400})
                    return
                except LookupError as exc:
                    self._send(404, {"error": {"message": f"The model `{exc.args[0]}` does not exist."}})
                    return
                if self.path == "/v1/chat/completions" and body.get("stream"):
                    self._stream(payload, bool((body.get("stream_options") or {}).get("include_usage")))
                    return
                self._send(200, payload, cut=fault == "cut_body")
                if self.path == "/v1/chat/completions" and fault != "cut_body":
                    sim._maybe_die()

            def do_GET(self) -> None:  # noqa: N802
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

        return Handler
