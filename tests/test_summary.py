import json

from novelcraft.backends.fake import FakeBackend
from novelcraft.core.schema import FIELD_CAPS, Message, RunningSummary, Sampling
from novelcraft.core.tokens import count_words, fallback_count
from novelcraft.drafting.summary import MAX_COMPRESS_CALLS, over_caps, trim, update_summary
from novelcraft.runtime.calls import ModelClient

SYSTEM = Message(role="system", content="You are a novelist.")


def words(n, w="tide"):
    return " ".join([w] * n)


def within_caps(summary):
    return all(count_words(getattr(summary, k)) <= cap for k, cap in FIELD_CAPS.items())


def test_over_caps_names_fields_and_groups():
    s = RunningSummary(scene_end_state=words(26), global_events=words(60))
    over = over_caps(s)
    assert "scene_end_state" in over and "global_events" not in over and "LOCAL total" not in over
    assert "GLOBAL total" in over_caps(
        RunningSummary(
            **{k: words(c) for k, c in FIELD_CAPS.items()},
        ).model_copy(update={"world_state": words(21)})
    )


def test_trim_is_deterministic_and_within_caps():
    s = RunningSummary(**{k: words(cap * 2, "storm,") for k, cap in FIELD_CAPS.items()})
    t = trim(s)
    assert within_caps(t) and trim(s) == t and not over_caps(t)


def test_compress_calls_then_trim_are_recorded():
    fake = FakeBackend()
    too_long = json.dumps({k: words(cap + 5) for k, cap in FIELD_CAPS.items()})
    fake.enqueue(*[too_long] * (1 + MAX_COMPRESS_CALLS))
    records = []
    result = update_summary(
        ModelClient(fake, records.append),
        SYSTEM,
        RunningSummary(),
        "A scene.",
        fallback_count,
        Sampling(seed=1),
    )
    assert result.compress_calls == MAX_COMPRESS_CALLS and result.trimmed
    assert within_caps(result.summary) and result.tokens <= 400
    assert [r.template for r in records] == ["summary.j2"] + ["compress.j2"] * MAX_COMPRESS_CALLS


def test_one_compress_call_fixes_it():
    fake = FakeBackend()
    fake.enqueue(
        json.dumps({k: words(cap * 2) for k, cap in FIELD_CAPS.items()}),
        json.dumps({k: words(cap - 3) for k, cap in FIELD_CAPS.items()}),
    )
    result = update_summary(ModelClient(fake), SYSTEM, RunningSummary(), "s", fallback_count, Sampling())
    assert result.compress_calls == 1 and not result.trimmed and within_caps(result.summary)


def test_a_little_over_is_trimmed_without_a_compress_call():
    fake = FakeBackend()
    fake.enqueue(json.dumps({k: words(cap + 3) for k, cap in FIELD_CAPS.items()}))
    result = update_summary(ModelClient(fake), SYSTEM, RunningSummary(), "s", fallback_count, Sampling())
    assert result.compress_calls == 0 and result.trimmed and within_caps(result.summary)
    assert fake.calls == 1


def test_list_answers_are_flattened():
    s = RunningSummary.model_validate({"active_characters": ["Isla", "Tobias"]})
    assert s.active_characters == "Isla; Tobias"
