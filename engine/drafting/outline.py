"""Hierarchical outline: acts -> chapters -> scene goals, with exact coverage in bounded batches."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import RootModel, ValidationError

from novelcraft.core.outline_checks import distinct_titles, goal_problem, plan_problem
from novelcraft.core.schema import Act, Chapter, Message, Sampling, SceneGoal, Seed, Strict
from novelcraft.core.seeds import call_seed
from novelcraft.prompts import ActsPrompt, ChaptersPrompt, PromptInput, ScenesPrompt
from novelcraft.runtime.calls import ModelClient, ModelOutputError

N_ACTS = 3
SCENES_PER_CHAPTER = 3
# Each batch asks for the items still missing; a model that keeps failing gets a clear error, not a loop.
# Two: the default model's third batches were 16 of the 48 outline calls of a novel (5.6 min) and
# rejected items fill the gaps anyway (titles are repaired, goals taken as given).
MAX_ROUNDS = 2


class _Plan(Strict):
    title: str
    summary: str = ""


class _Answer(RootModel[dict[str, list[dict]]]):
    """Loose on purpose: items are validated one by one so one broken item does not void a batch."""


def act_layout(n_scenes: int, n_acts: int = N_ACTS, per_chapter: int = SCENES_PER_CHAPTER) -> list[list[int]]:
    """Scenes per chapter for each act: a 1:2:1 three-act split, chapters of ~per_chapter scenes."""
    n_acts = max(1, min(n_acts, n_scenes))
    weights = [1, 2, 1] if n_acts == 3 else [1] * n_acts
    shares = [max(1, n_scenes * w // sum(weights)) for w in weights]
    middle = n_acts // 2
    shares[middle] += n_scenes - sum(shares)  # rounding goes to the middle act
    layout = []
    for share in shares:
        n_chapters = max(1, round(share / per_chapter))
        layout.append([share // n_chapters + (1 if i < share % n_chapters else 0) for i in range(n_chapters)])
    return layout


def _item_schema(key: str, item: dict, n: int) -> dict:
    return {
        "type": "object",
        "properties": {key: {"type": "array", "items": item, "minItems": n, "maxItems": n}},
        "required": [key],
    }


PLAN_ITEM = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 2, "maxLength": 60},
        "summary": {"type": "string", "minLength": 10, "maxLength": 300},
    },
    "required": ["title", "summary"],
}
SCENE_ITEM = {
    "type": "object",
    "properties": {
        "goal": {"type": "string", "minLength": 10, "maxLength": 300},
        "characters": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 4},
        "setting": {"type": "string", "maxLength": 120},
    },
    "required": ["goal", "characters", "setting"],
}


def collect_items(
    client: ModelClient,
    system: Message,
    template: str,
    make_prompt: Callable[[int, list, list[str]], PromptInput],
    key: str,
    item_schema: dict,
    item_cls: type[Strict],
    n: int,
    sampling: Sampling,
    what: str,
    check: Callable[[Strict, list], str | None] | None = None,
) -> list:
    """Ask until exactly n valid items are collected, at most MAX_ROUNDS batches for the missing part.

    `check(item, accepted)` names what makes an item unusable (a repeated title, a copied premise);
    such items are asked for again, with the rejected texts shown to avoid. When the rounds run out
    with enough parsed items, the rejected ones fill the gaps (the caller repairs titles): a model
    that keeps repeating itself gets a book, not an error."""
    got: list = []
    rejected: list = []
    avoid: list[str] = []
    for round_no in range(MAX_ROUNDS):
        missing = n - len(got)
        answer = client.json(
            template,
            [system, Message(role="user", content=make_prompt(missing, got, avoid[-6:]).render())],
            _Answer,
            sampling.model_copy(update={"seed": (sampling.seed or 0) + round_no}),
            json_schema=_item_schema(key, item_schema, missing),
        )
        for raw in answer.root.get(key, []):
            try:
                item = item_cls.model_validate(raw)
            except ValidationError:
                continue  # a broken item is simply asked for again
            problem = check(item, got) if check else None
            if problem:
                rejected.append(item)
                avoid.append(problem)
                continue
            got.append(item)
            if len(got) == n:
                return got
    if len(got) + len(rejected) >= n:
        return got + rejected[: n - len(got)]
    raise ModelOutputError(f"outline: {what}: only {len(got)} of {n} valid items after {MAX_ROUNDS} batches")


def plan_outline(
    client: ModelClient,
    system: Message,
    seed: Seed,
    sampling_for: Callable[[int, int], Sampling],
) -> list[Act]:
    """sampling_for(max_tokens, seed) gives the sampling of one call."""
    n_scenes = seed.scene_count
    layout = act_layout(n_scenes)
    names = [c.name for c in seed.characters]

    acts_plans: list[_Plan] = collect_items(
        client,
        system,
        "outline_acts.j2",
        lambda missing, got, avoid: ActsPrompt(
            title=seed.title,
            premise=seed.premise,
            characters=names,
            n_acts=len(layout),
            n_scenes=n_scenes,
            avoid=avoid,
        ),
        "acts",
        PLAN_ITEM,
        _Plan,
        len(layout),
        sampling_for(200 * len(layout), call_seed(seed.sampling_seed, "acts")),
        "acts",
        lambda item, got: plan_problem(
            item.title, item.summary, book_title=seed.title, premise=seed.premise, used=[p.title for p in got]
        ),
    )
    acts: list[Act] = []
    earlier_chapters: list[str] = []
    earlier_goals: list[str] = []
    for a, (plan, chapter_sizes) in enumerate(zip(acts_plans, layout, strict=True)):
        chapter_plans: list[_Plan] = collect_items(
            client,
            system,
            "outline_chapters.j2",
            lambda missing, got, avoid, plan=plan, a=a: ChaptersPrompt(
                premise=seed.premise,
                act_number=a + 1,
                n_acts=len(layout),
                act_title=plan.title,
                act_summary=plan.summary,
                n_chapters=missing,
                earlier_chapters=(earlier_chapters + [c.title for c in got])[-6:],
                avoid=avoid,
            ),
            "chapters",
            PLAN_ITEM,
            _Plan,
            len(chapter_sizes),
            sampling_for(120 * len(chapter_sizes) + 50, call_seed(seed.sampling_seed, "chapters", a)),
            f"act {a + 1} chapters",
            lambda item, got: plan_problem(
                item.title,
                item.summary,
                book_title=seed.title,
                premise=seed.premise,
                used=earlier_chapters + [c.title for c in got],
            ),
        )
        chapters: list[Chapter] = []
        for c, (cplan, size) in enumerate(zip(chapter_plans, chapter_sizes, strict=True)):
            goals: list[SceneGoal] = collect_items(
                client,
                system,
                "outline_scenes.j2",
                lambda missing, got, avoid, cplan=cplan, plan=plan: ScenesPrompt(
                    premise=seed.premise,
                    act_title=plan.title,
                    chapter_title=cplan.title,
                    chapter_summary=cplan.summary,
                    characters=names,
                    n_scenes=missing,
                    earlier_goals=(earlier_goals + [g.goal for g in got])[-3:],
                    avoid=avoid,
                ),
                "scenes",
                SCENE_ITEM,
                SceneGoal,
                size,
                sampling_for(160 * size + 50, call_seed(seed.sampling_seed, "scenes", a, c)),
                f"act {a + 1} chapter {c + 1} scenes",
                lambda item, got, cplan=cplan: goal_problem(
                    item.goal,
                    book_title=seed.title,
                    chapter_title=cplan.title,
                    premise=seed.premise,
                    used=earlier_goals + [g.goal for g in got],
                ),
            )
            earlier_goals.extend(g.goal for g in goals)
            earlier_chapters.append(cplan.title)
            chapters.append(Chapter(title=cplan.title, summary=cplan.summary, scenes=goals))
        acts.append(Act(title=plan.title, summary=plan.summary, chapters=chapters))
    return with_distinct_titles(acts, seed.title)


def with_distinct_titles(acts: list[Act], book_title: str) -> list[Act]:
    """Acts and chapters whose titles still repeat after the re-asks get titles from their summaries."""
    act_titles = distinct_titles([a.title for a in acts], [a.summary for a in acts], book_title)
    chapters = [c for a in acts for c in a.chapters]
    chapter_titles = iter(
        distinct_titles([c.title for c in chapters], [c.summary for c in chapters], book_title)
    )
    return [
        act.model_copy(
            update={
                "title": title,
                "chapters": [c.model_copy(update={"title": next(chapter_titles)}) for c in act.chapters],
            }
        )
        for act, title in zip(acts, act_titles, strict=True)
    ]
