"""The client path's own overhead per call: ModelClient + `openai` backend vs a raw HTTP request.

A local server on 127.0.0.1 answers every chat completion at once with the same canned body, so what
differs between the lines is only client-side work. Target: full path minus raw request < 5 ms.

    .venv/bin/python bench/client_overhead.py [--calls 500]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from openai_sim import SimServer  # noqa: E402  (the simulated server the tests use)

from novelcraft.backends.openai_compat import OpenAICompatBackend, chat_body  # noqa: E402
from novelcraft.core.schema import CallRecord, Message, Sampling  # noqa: E402
from novelcraft.runtime.calls import ModelClient  # noqa: E402
from novelcraft.runtime.store import Store  # noqa: E402

MODEL = "bench-model"


class Title(BaseModel):
    title: str


ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": '{"title": "The Last Ferry"}'},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 310, "completion_tokens": 9, "total_tokens": 319},
    }
).encode()  # fmt: skip

# A prompt of realistic size: system + world context + running summary + instruction (~2 KB).
MESSAGES = [
    Message(
        role="system", content="You are a novelist. " + "World: a cold island, a ferry, two brothers. " * 20
    ),
    Message(role="user", content="Summary: " + "Ewan waits on the pier while Callum mends nets. " * 15),
]
SAMPLING = Sampling(max_tokens=800, seed=3)


def timed(fn, calls: int) -> list[float]:
    for _ in range(min(50, calls)):  # warm the connection pool and caches
        fn()
    out = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()

    with SimServer(MODEL, fixed_answer=ANSWER) as sim, tempfile.TemporaryDirectory() as tmp:
        url = f"{sim.base_url}/chat/completions"
        body = chat_body(MODEL, MESSAGES, SAMPLING, Title.model_json_schema(), "vllm")
        raw_client = httpx.Client()

        def raw() -> None:
            raw_client.post(url, json=body).json()

        backend = OpenAICompatBackend(sim.base_url, MODEL, server_kind="vllm")
        records: list[CallRecord] = []
        client = ModelClient(backend, records.append, story_id="bench")
        store = Store(Path(tmp) / "bench.db")
        recorded = ModelClient(backend, store.record_call, story_id="bench")

        rows = [("raw httpx POST + json()", timed(raw, args.calls))]
        rows.append(("ModelClient.text  (openai backend)", timed(
            lambda: client.text("scene.j2", MESSAGES, SAMPLING, scene_index=0), args.calls)))  # fmt: skip
        rows.append(("ModelClient.json  (schema, validated)", timed(
            lambda: client.json("outline_acts.j2", MESSAGES, Title, SAMPLING), args.calls)))  # fmt: skip
        rows.append(("ModelClient.json  + SQLite call record", timed(
            lambda: recorded.json("outline_acts.j2", MESSAGES, Title, SAMPLING), args.calls)))  # fmt: skip
        try:
            import openai

            oa = openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0)
            extra = {k: body[k] for k in ("min_p", "repetition_penalty")}
            rows.append(("openai client (for comparison)", timed(
                lambda: oa.chat.completions.create(
                    model=MODEL, messages=body["messages"], max_tokens=800, seed=3,
                    response_format=body["response_format"], extra_body=extra),
                args.calls)))  # fmt: skip
        except ImportError:
            pass

        base = statistics.median(rows[0][1])
        print(
            f"{args.calls} calls each against a local server that answers at once ({len(json.dumps(body))} B request)"
        )
        print(f"{'path':42} {'median ms':>10} {'p90 ms':>8} {'overhead ms':>12}")
        for name, ms in rows:
            med, p90 = statistics.median(ms), statistics.quantiles(ms, n=10)[-1]
            print(f"{name:42} {med:10.3f} {p90:8.3f} {med - base:12.3f}")
        overhead = statistics.median(rows[2][1]) - base
        verdict = "PASS" if overhead < 5 else "FAIL"
        print(
            f"client path overhead (ModelClient.json - raw): {overhead:.3f} ms/call, target < 5 ms: {verdict}"
        )
        store.close()


if __name__ == "__main__":
    main()
