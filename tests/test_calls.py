import json

import pytest

from novelcraft.backends.base import BackendError, Completion, TransientBackendError
from novelcraft.backends.fake import FakeBackend
from novelcraft.core.schema import CallPolicy, Message, RunningSummary, Sampling
from novelcraft.runtime.calls import (
    BudgetExceeded,
    CallGate,
    ModelClient,
    ModelOutputError,
    Stopped,
    parse_json_answer,
)

MSG = [Message(role="user", content="hi")]


def client(backend, records, **kw):
    return ModelClient(backend, records.append, sleep=lambda s: None, **kw)


def test_truncated_json_is_never_accepted():
    good = json.dumps(RunningSummary(scene_end_state="x").model_dump())
    with pytest.raises(ValueError, match="truncated"):
        parse_json_answer(Completion(text=good, finish_reason="length"), RunningSummary)


def test_malformed_answers_are_retried_and_each_attempt_recorded():
    fake = FakeBackend()
    fake.enqueue("not json", '{"scene_end_state": 1', json.dumps({"scene_end_state": "calm"}))
    records = []
    out = client(fake, records).json("summary.j2", MSG, RunningSummary, Sampling(seed=1))
    assert out.scene_end_state == "calm"
    assert [r.outcome for r in records] == ["malformed", "malformed", "ok"]
    assert [r.attempt for r in records] == [1, 2, 3]
    assert len({r.seed for r in records}) == 3  # a retry never repeats the same sample


def test_gives_up_after_bounded_attempts():
    fake = FakeBackend()
    fake.enqueue(*["{broken"] * 10)
    records = []
    with pytest.raises(ModelOutputError, match="3 attempts"):
        client(fake, records, max_attempts=3).json("t.j2", MSG, RunningSummary, Sampling())
    assert len(records) == 3 and fake.calls == 3


class Flaky(FakeBackend):
    def __init__(self, failures, exc):
        super().__init__()
        self.failures, self.exc = failures, exc

    def complete(self, *a, **kw):
        if self.failures:
            self.failures -= 1
            raise self.exc
        return super().complete(*a, **kw)


def test_a_client_from_a_policy_takes_its_retries_budget_and_window():
    policy = CallPolicy(max_attempts=2, backoff_s=0.0, max_calls=1, n_ctx=1024)
    c = ModelClient.from_policy(FakeBackend(), policy)
    assert (c.max_attempts, c.backoff_s, c.gate.max_calls, c.context_window) == (2, 0.0, 1, 1024)


def test_transient_errors_back_off_then_succeed():
    sleeps, records = [], []
    c = ModelClient(
        Flaky(2, TransientBackendError("503")), records.append, sleep=sleeps.append, backoff_s=1.0
    )
    c.text("scene.j2", MSG, Sampling(max_tokens=20, seed=3))
    assert [r.outcome for r in records] == ["transient_error", "transient_error", "ok"]
    assert len(sleeps) == 2 and 0.5 <= sleeps[0] <= 1.5 and 1.0 <= sleeps[1] <= 3.0


def test_fatal_backend_error_is_not_retried():
    records = []
    with pytest.raises(BackendError, match="no such model"):
        client(Flaky(5, BackendError("no such model")), records).text("t", MSG, Sampling())
    assert len(records) == 1 and records[0].outcome == "error"


def test_dead_backend_gives_up():
    records = []
    with pytest.raises(BackendError, match="gave up after 2"):
        client(Flaky(99, TransientBackendError("connection refused")), records, max_attempts=2).text(
            "t", MSG, Sampling()
        )


def test_budget_is_enforced():
    c = client(FakeBackend(), [], max_calls=2)
    c.text("t", MSG, Sampling(max_tokens=10))
    c.text("t", MSG, Sampling(max_tokens=10))
    with pytest.raises(BudgetExceeded):
        c.text("t", MSG, Sampling(max_tokens=10))


def test_clients_of_one_run_share_its_gate():
    gate, fake = CallGate(max_calls=3), FakeBackend()
    first, second = client(fake, [], gate=gate), client(fake, [], gate=gate)
    first.text("t", MSG, Sampling(max_tokens=10))
    second.text("t", MSG, Sampling(max_tokens=10))
    first.text("t", MSG, Sampling(max_tokens=10))
    with pytest.raises(BudgetExceeded, match="budget of 3"):
        second.text("t", MSG, Sampling(max_tokens=10))
    assert fake.calls == 3 and gate.spent == 3
    gate.stop()
    with pytest.raises(Stopped):
        first.text("t", MSG, Sampling(max_tokens=10))
    assert fake.calls == 3


def test_records_carry_the_call_details():
    records = []
    c = client(FakeBackend(model="m1"), records, story_id="s1")
    c.text("scene.j2", MSG, Sampling(max_tokens=40, seed=9, temperature=0.3), scene_index=4, adapter="noir")
    r = records[0]
    assert (r.story_id, r.scene_index, r.template, r.backend, r.model, r.adapter, r.seed) == (
        "s1",
        4,
        "scene.j2",
        "fake",
        "m1",
        "noir",
        9,
    )
    assert (
        r.sampling["temperature"] == 0.3 and r.tokens_in > 0 and r.tokens_out > 0 and len(r.prompt_hash) == 16
    )


def test_max_tokens_is_fitted_to_the_context_window():
    fake, records = FakeBackend(), []
    long_prompt = [Message(role="user", content="word " * 300)]
    prompt_tokens = fake.count_prompt_tokens(long_prompt)
    c = client(fake, records, context_window=prompt_tokens + 216)
    c.text("scene.j2", long_prompt, Sampling(max_tokens=1000, seed=1))
    c.text("scene.j2", MSG, Sampling(max_tokens=150, seed=1))
    # The long prompt leaves 200 tokens (16 kept as margin); a request that fits is sent as asked.
    assert [r.sampling["max_tokens"] for r in records] == [200, 150]
    assert [h["sampling"].max_tokens for h in fake.history] == [200, 150]


def test_a_prompt_that_fills_the_window_is_a_clear_error_before_any_call():
    fake, records = FakeBackend(), []
    prompt = [Message(role="user", content="word " * 300)]
    c = client(fake, records, context_window=fake.count_prompt_tokens(prompt) + 40)
    with pytest.raises(
        BackendError, match=r"scene\.j2: the prompt leaves 24 tokens of the model's \d+-token"
    ):
        c.text("scene.j2", prompt, Sampling(max_tokens=500))
    assert records == [] and fake.calls == 0


def test_no_window_means_no_fitting():
    fake, records = FakeBackend(), []
    client(fake, records).text("t", MSG, Sampling(max_tokens=100_000))
    assert records[0].sampling["max_tokens"] == 100_000
