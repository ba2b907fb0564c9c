"""World context and scene drafting: the calls the scene loop makes, as plain functions."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel

from novelcraft.backends.base import Completion, Watch
from novelcraft.core.schema import WORLD_MAX_TOKENS, Message, RunningSummary, Sampling, SceneGoal, Seed
from novelcraft.core.seeds import call_seed
from novelcraft.core.tokens import count_words, fit_tokens, last_words
from novelcraft.drafting.guard import Cut, clean_tail, drop_restart, guard_chunk
from novelcraft.prompts import (
    ContinueFreshPrompt,
    ContinuePrompt,
    ScenePrompt,
    WorldPrompt,
    summary_lines,
)
from novelcraft.runtime.calls import ModelClient

SamplingFor = Callable[[int, int], Sampling]
# Words of the scene so far shown to a continuation call: enough to keep the thread, bounded so the
# prompt stays flat however long the scene grows.
TAIL_WORDS = 220
# Tokens a call may spend per word still wanted: the default model's kept prose measures 1.18 tokens a
# word; 1.5 let a first call that ran to its limit write ~950 words for an 800-word scene.
TOKENS_PER_WORD = 1.3
# A chunk the guard would cut this many words from at its end is in a runaway loop (see loop_watch). Not
# fewer: with its repeat penalty the default model often escapes a short loop, and the guard keeps what
# comes after; stopped at 25 words, it looped again at the next call until the scene ran out of calls.
HALT_CUT_WORDS = 120
# A follow-up turn that leaves less room than this for the continuation starts a fresh prompt instead.
MIN_CONTINUATION_TOKENS = 256
# Calls in a row that add no word (an empty answer, a chunk the guard cuts whole) end the take: the next
# request would be the same one again, and the scene's floor (engine/core/floor.py) decides what follows.
BARREN_CALLS = 2


def generate_world(
    client: ModelClient, seed: Seed, count_tokens: Callable[[str], int], sampling_for: SamplingFor
) -> str:
    prompt = WorldPrompt(
        title=seed.title,
        genre=seed.genre,
        premise=seed.premise,
        characters=[f"{c.name}: {c.description}".rstrip(": ") for c in seed.characters],
        max_words=250,
    )
    bare_system = Message(role="system", content=f'You are a novelist planning the novel "{seed.title}".')
    answer = client.text(
        "world.j2",
        [bare_system, Message(role="user", content=prompt.render())],
        sampling_for(WORLD_MAX_TOKENS + 100, call_seed(seed.sampling_seed, "world")),
    )
    # A model that answers nothing still leaves the book a world: the seed's own words. An empty world
    # would read as "not made yet" and stop every later scene from finding its context.
    world = answer.text.strip() or "\n".join([seed.premise, *prompt.characters])
    return fit_tokens(world, WORLD_MAX_TOKENS, count_tokens)


class SceneDraft(BaseModel):
    text: str
    words: int
    continuations: int
    # What the repetition guard cut (leaked prompt text, repeated paragraphs, loops), for the record.
    cuts: list[Cut] = []
    # The text before the last chunk and that chunk, as the last request and its answer had them (see
    # scene_conversation).
    turns: list[str] = []


def scene_prompt(
    summary: RunningSummary,
    chapter_title: str,
    goal: SceneGoal,
    *,
    progress: int,
    target_words: int,
    opening: bool,
    bible: list[str] | None = None,
    pov: str = "",
) -> ScenePrompt:
    return ScenePrompt(
        summary=summary_lines(summary),
        progress=progress,
        chapter_title=chapter_title,
        goal=goal.goal,
        characters=goal.characters,
        setting=goal.setting,
        beat=goal.beat,
        change=goal.change,
        hook=goal.hook,
        target_words=target_words,
        opening=opening,
        bible=bible or [],
        pov=pov,
    )


def scene_conversation(system: Message, prompt: ScenePrompt, turns: list[str] | None = None) -> list[Message]:
    """The scene's own conversation: the scene prompt, then the scene as the model's turns, each turn
    after the first preceded by the continuation request that asked for it.

    A continuation request shows the scene so far as one turn (a 135M model answering after many short
    turns of its own writes short, restarting answers), so a scene's `turns` are at most two: the text
    before its last chunk, and that chunk. The review and summary follow-ups extend exactly the last
    request and its answer, which a server's prefix cache (and llama.cpp's in-process KV cache) then
    serves whole."""
    messages = [system, Message(role="user", content=prompt.render())]
    written = ""
    for k, turn in enumerate(turns or []):
        if k:
            left = prompt.target_words - count_words(written)
            messages.append(
                Message(
                    role="user",
                    content=ContinuePrompt(words_left=left, pov=prompt.pov, goal=prompt.goal).render(),
                )
            )
        messages.append(Message(role="assistant", content=turn))
        written = join_chunks(written, turn)
    return messages


def as_written(raw: str, cleaned: str) -> str:
    """`cleaned` (the guard's text of `raw`) in `raw`'s own bytes, line breaks and spaces, up to the
    first word where the two differ (a cut), and as cleaned from there: the same words either way."""
    i = j = kept_i = kept_j = 0
    while i < len(raw) and j < len(cleaned):
        if raw[i].isspace() and cleaned[j].isspace():
            kept_i, kept_j = i, j
            while i < len(raw) and raw[i].isspace():
                i += 1
            while j < len(cleaned) and cleaned[j].isspace():
                j += 1
        elif raw[i] == cleaned[j]:
            i, j = i + 1, j + 1
        else:
            break
    if i == len(raw) and j == len(cleaned):
        return raw
    return raw[:kept_i] + cleaned[kept_j:] if kept_i else cleaned


def same_words(a: str, b: str) -> bool:
    """Equal but for whitespace: a turn keeps the model's own line breaks, the scene's text the guard's."""
    return a.split() == b.split()


def turns_of(text: str, turns_json: str) -> list[str]:
    """A saved scene's turns; its text as one turn when it has none (an author's import, an old row)
    or they no longer make up the text."""
    turns = json.loads(turns_json or "[]")
    return turns if turns and same_words(joined(turns), text) else [text]


def join_chunks(head: str, tail: str) -> str:
    if not head:
        return tail
    sep = "\n\n" if head.rstrip().endswith((".", "!", "?", '"', "”")) else " "
    return head.rstrip() + sep + tail.lstrip()


def joined(turns: list[str]) -> str:
    text = ""
    for turn in turns:
        text = join_chunks(text, turn)
    return text


def loop_watch(earlier: list[str], book_paragraphs: frozenset[str]) -> Watch:
    """Stop a chunk once the guard would cut its end by HALT_CUT_WORDS or more: a model that has looped
    that long does not come back, and every token it loops is generated and then thrown away."""

    def watch(text: str) -> bool:
        guarded = guard_chunk(text, earlier, book_paragraphs=book_paragraphs)
        end = text.rstrip()
        return guarded.cut_words >= HALT_CUT_WORDS and any(
            c.text and end.endswith(c.text.strip()) for c in guarded.cuts
        )

    return watch


def finished_text(completion: Completion) -> str:
    """A chunk cut off by max_tokens ends at its last full sentence, so the next call starts cleanly
    (one the watch halted already ends at a sentence end)."""
    text = completion.text.strip()
    return clean_tail(text) if completion.finish_reason == "length" else text


def grow_text(
    complete: Callable[[object, int, int, Watch], Completion],
    ask: Callable[[list[str]], object],
    *,
    target_words: int,
    max_continuations: int,
    min_fraction: float,
    recent: list[str] | None = None,
    book_paragraphs: frozenset[str] = frozenset(),
) -> SceneDraft:
    """Ask for text until `target_words`, or a natural stop past `min_fraction` of it, at most
    `max_continuations` times after the first call, and no longer once BARREN_CALLS calls in a row added
    nothing: the one loop of chat and continuation scenes.

    `ask(turns)` is what to send given the scene so far as turns ([] before the first call; see
    scene_conversation);
    `complete(asked, max_tokens, call_number, watch)` makes one model call, which a streaming backend
    stops once `watch` sees it loop. A continuation that restates the end of the scene loses the
    restated words, and every chunk passes the repetition guard against the scene so far, the `recent`
    scenes and `book_paragraphs` (see guard.book_paragraphs_of) before it joins: the scene grows only
    with what is left."""
    recent = recent or []
    turns: list[str] = []
    # `text` is the scene as the guard gives it back (its paragraphs and spaces normalised); the turns
    # carry the same words as the model wrote them: a follow-up that shows the chunk byte for byte finds it
    # in the KV cache, where one normalised chunk sent the review back to its first line break (a scene's
    # whole text evaluated again after every first-call scene).
    text, cuts, finish, calls, barren = "", [], "stop", 0, 0
    while True:
        words_so_far = count_words(text)
        if calls and (
            words_so_far >= target_words
            or (finish == "stop" and words_so_far >= min_fraction * target_words)
            or calls > max_continuations
            or barren >= BARREN_CALLS
        ):
            break
        left = target_words - words_so_far
        max_tokens = int(target_words * TOKENS_PER_WORD) if not calls else int(left * TOKENS_PER_WORD) + 32
        earlier = [text, *recent] if text else recent
        completion = complete(ask(turns), max_tokens, calls, loop_watch(earlier, book_paragraphs))
        chunk, restart = (
            drop_restart(text, finished_text(completion)) if text else (finished_text(completion), None)
        )
        guarded = guard_chunk(chunk, earlier, book_paragraphs=book_paragraphs)
        barren = 0 if guarded.text else barren + 1
        if guarded.text:
            written = as_written(chunk, guarded.text)
            turns = [joined(turns), written] if turns else [written]
            text = join_chunks(text, guarded.text)
        cuts += ([restart] if restart else []) + guarded.cuts
        finish = completion.finish_reason
        calls += 1
    return SceneDraft(text=text, words=count_words(text), continuations=calls - 1, cuts=cuts, turns=turns)


@dataclass(frozen=True, kw_only=True)
class SceneRequest:
    """What one take of a scene needs, whichever way it is drafted; a retry is a `replace` of it (another
    `base_seed`, `adapter` None for the base). `variant` (the redraft number) changes the sampling seeds
    so a redraft is a new take, still reproducible; `recent` and `book_paragraphs` are what the
    repetition guard checks against (see grow_text)."""

    prompt: ScenePrompt
    scene_index: int
    sampling_for: SamplingFor
    base_seed: int
    max_continuations: int
    min_fraction: float
    variant: int = 0
    recent: list[str] = field(default_factory=list)
    book_paragraphs: frozenset[str] = frozenset()
    adapter: str | None = None

    def sampling(self, max_tokens: int, call: int) -> Sampling:
        return self.sampling_for(
            max_tokens, call_seed(self.base_seed, "scene", self.scene_index, call, self.variant)
        )

    def grow(
        self, complete: Callable[[object, int, int, Watch], Completion], ask: Callable[[list[str]], object]
    ) -> SceneDraft:
        return grow_text(
            complete,
            ask,
            target_words=self.prompt.target_words,
            max_continuations=self.max_continuations,
            min_fraction=self.min_fraction,
            recent=self.recent,
            book_paragraphs=self.book_paragraphs,
        )


def draft_scene(client: ModelClient, system: Message, request: SceneRequest) -> SceneDraft:
    """A scene through chat: the scene prompt, then continuations as follow-up turns of the scene's own
    conversation while that fits the window, else a fresh prompt with the scene's last words (see
    grow_text for the length rule and the repetition guard)."""
    prompt = request.prompt

    def ask(turns: list[str]) -> tuple[str, list[Message]]:
        if not turns:
            return "scene.j2", scene_conversation(system, prompt)
        written = joined(turns)
        left = prompt.target_words - count_words(written)
        follow_up = [
            *scene_conversation(system, prompt, [written]),
            Message(
                role="user",
                content=ContinuePrompt(words_left=left, pov=prompt.pov, goal=prompt.goal).render(),
            ),
        ]
        room = client.room(follow_up)
        if room is None or room >= MIN_CONTINUATION_TOKENS:
            return "continue.j2", follow_up
        fresh = ContinueFreshPrompt(
            summary=prompt.summary,
            progress=prompt.progress,
            goal=prompt.goal,
            so_far=last_words(written, TAIL_WORDS),
            words_left=left,
            pov=prompt.pov,
        )
        return "continue_fresh.j2", [system, Message(role="user", content=fresh.render())]

    def complete(asked: tuple[str, list[Message]], max_tokens: int, call: int, watch: Watch) -> Completion:
        template, messages = asked
        return client.text(
            template,
            messages,
            request.sampling(max_tokens, call),
            scene_index=request.scene_index,
            adapter=request.adapter,
            watch=watch,
        )

    return request.grow(complete, ask)
