"""A scene's conversation: a looping chunk is stopped where it starts looping, each continuation request
shows the scene so far as one turn, and the review and summary follow-ups extend exactly the last request
and its answer (what a prefix cache needs), also after a restart."""

from __future__ import annotations

import json

from novelcraft.backends.fake import FakeBackend, streamed
from novelcraft.core.schema import Message, RunningSummary, Sampling, SceneGoal, Seed
from novelcraft.drafting.scene import (
    SceneRequest,
    as_written,
    draft_scene,
    joined,
    loop_watch,
    scene_conversation,
    scene_prompt,
    turns_of,
)
from novelcraft.drafting.summary import field_specs
from novelcraft.prompts import SummaryFollowupPrompt
from novelcraft.runtime.calls import ModelClient
from novelcraft.settings.config import resolve_settings
from novelcraft.story.novel import Story

SYSTEM = Message(role="system", content="You are a novelist.")
FRESH = (
    "Isla climbed the stair with the oil can. The glass was cold and wet with spray. "
    "Below her the boat from the mainland rounded the reef at last."
)
LOOP = "The gulls cried over the grey rock and the wind came down from the north again. "


def test_the_watch_stops_a_chunk_whose_end_loops_and_lets_fresh_text_run():
    watch = loop_watch([FRESH], frozenset())
    assert not watch("Tobias rowed out past the skerry. " + LOOP)
    assert not watch("Tobias rowed out past the skerry. " + LOOP * 4)  # a short loop may end: let it run
    assert watch("Tobias rowed out past the skerry. " + LOOP * 10)
    assert watch("Tobias rowed out past the skerry.\n\n" + (FRESH + " ") * 5)  # paragraphs written already
    # A repeat at the start that the text then leaves behind is cut afterwards, not stopped.
    assert not watch(FRESH.split(". ")[0] + ". The keeper's log lay open on the desk, its last page blank.")


def test_a_streaming_backend_returns_the_text_up_to_where_the_watch_stopped_it():
    text, finish = streamed("One. Two. Three. Four.", "stop", lambda so_far: so_far.endswith("Two."))
    assert (text, finish) == ("One. Two.", "halted")
    assert streamed("One. Two.", "length", lambda so_far: False) == ("One. Two.", "length")


def _two_call_scene(fake: FakeBackend, target_words: int):
    """A scene of at most two calls (the first and one continuation) on the fake backend's script."""
    prompt = scene_prompt(
        RunningSummary(),
        "One",
        SceneGoal(goal="Isla waits."),
        progress=0,
        target_words=target_words,
        opening=True,
    )
    return prompt, draft_scene(
        ModelClient(fake),
        SYSTEM,
        SceneRequest(
            prompt=prompt,
            scene_index=0,
            sampling_for=lambda mt, s: Sampling(max_tokens=mt, seed=s),
            base_seed=1,
            max_continuations=1,
            min_fraction=0.8,
        ),
    )


def test_a_halted_chunk_keeps_its_fresh_part_and_the_scene_goes_on_in_its_own_turns():
    fake = FakeBackend()
    second = "Tobias rowed out past the skerry with the mail. He did not look up at the tower."
    fake.enqueue(FRESH + " " + LOOP * 30, second)
    prompt, draft = _two_call_scene(fake, target_words=60)
    # The loop was stopped once 120 words of it would be cut: the rest of it was never generated.
    assert draft.turns[0].startswith(FRESH) and draft.turns[0].count("The gulls cried") == 1
    assert draft.turns[1] == second and draft.text == joined(draft.turns)
    assert 0 < sum(c.kind == "loop" for c in draft.cuts) < 29  # 29 repeats were scripted
    continuation = fake.history[1]["messages"]
    assert [m.role for m in continuation] == ["system", "user", "assistant", "user"]
    assert continuation[2].content == draft.turns[0]
    assert continuation[:3] == scene_conversation(SYSTEM, prompt, draft.turns[:1])


def test_turns_keep_the_chunk_as_the_model_wrote_it_so_a_follow_up_finds_it_cached():
    fake = FakeBackend()
    first = "Isla climbed the stair.\nThe glass was cold  and wet with spray.\nBelow her the boat rounded the reef."
    second = "Tobias rowed out past the skerry with the mail.\nHe did not look up at the tower."
    fake.enqueue(first, second)
    _, draft = _two_call_scene(fake, target_words=40)
    # The scene's text has the guard's paragraphs; the turns are the model's own bytes, same words.
    assert "\n\n" in draft.text and "  " not in draft.text
    assert draft.turns == [first, second]
    assert fake.history[1]["messages"][2].content == first  # the continuation request showed it as written
    assert turns_of(draft.text, json.dumps(draft.turns)) == draft.turns
    assert turns_of(draft.text + " More.", json.dumps(draft.turns)) == [draft.text + " More."]


def _story(db_path, **flags):
    settings = resolve_settings(None, env={}, flags={"backend": "fake", "db": db_path, **flags})
    seed = Seed(premise="A keeper finds a letter.", scenes=3, target_words=900, scene_words=300, seed=3)
    return Story.start(seed, settings)


def test_review_and_summary_resend_the_scene_conversation_the_last_continuation_built(db_path):
    fake = FakeBackend(words_per_call=120)  # 300-word scenes: three turns each
    story = _story(db_path)
    story.draft(backend=fake)
    chats = [h["messages"] for h in fake.history if h["json_schema"] is None and len(h["messages"]) > 2]
    structured = [
        h["messages"] for h in fake.history if h["json_schema"] is not None and len(h["messages"]) > 3
    ]
    last_requests = {m[1].content: m for m in chats}  # per scene prompt, its last continuation request
    assert len(last_requests) == 3, "every scene takes continuations"
    for request in last_requests.values():
        assert [m.role for m in request] == ["system", "user", "assistant", "user"]  # the scene as one turn
        # The review and the summary start with this request, byte for byte, then its answer.
        later = [m for m in structured if m[: len(request)] == request]
        assert len(later) == 2 and all(m[len(request)].role == "assistant" for m in later)
    for row in story.store.scenes(story.id):
        saved = json.loads(row["turns_json"])
        assert len(saved) == 2 and joined(saved) == row["text"]


def test_a_summary_asked_after_a_restart_sends_what_an_uninterrupted_run_sends(db_path):
    fake = FakeBackend(words_per_call=120)  # 300-word scenes: three turns each
    story = _story(db_path)
    story.draft(backend=fake)
    question = SummaryFollowupPrompt(fields=field_specs()).render()
    sent = [h["messages"] for h in fake.history if h["messages"][-1].content == question]
    assert len(sent) == 3
    # What write_summary rebuilds from the database for scene 2 (as after a restart) is what it sent.
    row = story.store.scene(story.id, 1)
    drafter = story._drafter(story.settings(env={}), fake, None)
    prompt = drafter.scene_prompt_for(1, story.store.summary_after(story.id, 0), drafter.bible_before(1))
    rebuilt = scene_conversation(drafter.context.system, prompt, turns_of(row["text"], row["turns_json"]))
    assert len(rebuilt) > 3 and sent[1][:-1] == rebuilt


def test_a_cut_chunk_keeps_the_model_s_bytes_up_to_its_first_cut():
    raw = "Isla climbed.\nThe glass was cold.  SCENE GOAL: find the letter\nBelow her the boat came."
    cleaned = "Isla climbed. The glass was cold.\n\nBelow her the boat came."
    written = as_written(raw, cleaned)
    assert written.startswith("Isla climbed.\nThe glass was cold.") and written.endswith(
        "Below her the boat came."
    )
    assert written.split() == cleaned.split()
    assert as_written("a\nb", "a\n\nb") == "a\nb"  # nothing cut: the chunk as written
    assert as_written("x y", "z y") == "z y"  # differs from the first word: the cleaned text
