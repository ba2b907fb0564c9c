"""Stages 4-7, with the model: world context, scenes, running summaries, instructions.

Each skips the work its key says is done, records every call in the run's call log (through
StageContext.client) and saves book.json as results land, so an interrupted run loses at most the calls
in flight.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from novelcraft.core.tokens import count_words
from novelcraft.dataprep.context import StageContext
from novelcraft.dataprep.instructions import instruct, instruction_key
from novelcraft.dataprep.keys import scenes_key, world_key
from novelcraft.dataprep.models import Book, SceneRecord, Section
from novelcraft.dataprep.scenes import (
    Block,
    blocks,
    fit,
    group,
    heuristic_starts,
    llm_starts,
    merge,
    scene_text,
    tidy_starts,
)
from novelcraft.dataprep.split import for_training
from novelcraft.dataprep.summaries import summarize
from novelcraft.dataprep.world import world_context

# Seconds between book.json saves while a summary chain runs: often enough to lose little to a crash,
# seldom enough that rewriting a long book does not cost more than the calls.
SAVE_EVERY_S = 5


def world_stage(ctx: StageContext, book: Book, sections: list[Section]) -> None:
    """4. The book's world context (<= 400 tokens)."""
    key = world_key(book.meta.keys.sections, ctx.backend.model, ctx.options.world_passage_words)
    if book.meta.keys.world == key and book.meta.world_context:
        return
    task = ctx.hooks.start(f"{book.meta.book_id}: world", 1)
    book.meta.world_context = world_context(
        ctx.client(book.meta.book_id),
        book.meta.title,
        book.meta.author,
        [s for s in sections if s.kind == "chapter"],
        ctx.count_tokens,
        ctx.sampling(ctx.options.world_max_tokens, book.meta.book_id, "world"),
        ctx.options.world_passage_words,
    )
    book.meta.keys.world = key
    ctx.workdir.save_book(book)
    ctx.hooks.advance(task)
    ctx.hooks.done(task)


def scene_records(
    trained: list[Section],
    chapter_blocks: list[list[Block]],
    starts: list[list[int]],
    old: list[SceneRecord],
    count_tokens: Callable[[str], int],
    max_scene_tokens: int,
    max_scenes: int | None,
) -> list[SceneRecord]:
    """Scene starts -> merged scenes -> records. A scene whose id and text are unchanged keeps its old
    record (summary, instruction), so a rerun redoes only the scenes that moved."""
    kept = {(s.scene_id, s.text): s for s in old}
    scenes: list[SceneRecord] = []
    chapter_index = 0
    for section, bl, section_starts in zip(trained, chapter_blocks, starts, strict=True):
        merged = fit(merge(group(bl, section_starts), max_scene_tokens), count_tokens, max_scene_tokens)
        prefix = f"c{chapter_index:03d}" if section.kind == "chapter" else f"ref{len(scenes):03d}"
        for n, scene in enumerate(merged):
            text = scene_text(scene)
            scene_id = f"{prefix}-s{n:02d}"
            record = kept.get((scene_id, text)) or SceneRecord(
                scene_id=scene_id,
                chapter_index=chapter_index if section.kind == "chapter" else -1,
                chapter_title=section.title,
                kind=section.kind,
                text=text,
            )
            record.tokens = count_tokens(text)
            scenes.append(record)
        if section.kind == "chapter":
            chapter_index += 1
    if max_scenes is not None:
        story = [s for s in scenes if s.kind == "chapter"][:max_scenes]
        scenes = [s for s in scenes if s.kind == "reference"][:1] + story
    return scenes


def scenes_stage(ctx: StageContext, book: Book, sections: list[Section]) -> None:
    """5. Blocks >= 75 tokens -> atomic scenes (the model's boundaries or the heuristic) -> merged scenes."""
    o, book_id = ctx.options, book.meta.book_id
    world = book.meta.world_context if ctx.splitter == "llm" else ""
    key = scenes_key(
        book.meta.keys.sections,
        splitter=ctx.splitter,
        world_context=world,
        max_scene_tokens=o.max_scene_tokens,
        max_scenes=o.max_scenes,
        model=ctx.backend.model,
    )
    if book.meta.keys.scenes == key and book.scenes:
        return
    trained = [s for s in sections if for_training(s)]
    chapter_blocks = [blocks(s.text, ctx.count_tokens) for s in trained]
    task = ctx.hooks.start(f"{book_id}: scenes ({ctx.splitter})", len(trained))
    client = ctx.client(book_id) if ctx.splitter == "llm" else None
    system = ctx.system(book)

    def starts_for(i: int) -> list[int]:
        section, bl = trained[i], chapter_blocks[i]
        if client is None or section.kind == "reference" or len(bl) < 2:
            found = heuristic_starts(bl)
        else:
            sampling = ctx.sampling(200, book_id, "boundaries", i)
            found = tidy_starts(
                bl, llm_starts(client, system, world, section.title, bl, sampling, scene_index=i)
            )
        ctx.hooks.advance(task)
        return found

    with ThreadPoolExecutor(o.workers) as pool:
        starts = list(pool.map(starts_for, range(len(trained))))
    book.scenes = scene_records(
        trained, chapter_blocks, starts, book.scenes, ctx.count_tokens, o.max_scene_tokens, o.max_scenes
    )
    book.meta.total_scenes = len(book.scenes)
    book.meta.keys.scenes = key
    ctx.workdir.save_book(book)
    ctx.hooks.done(task)


def summaries_stage(ctx: StageContext, book: Book, then_instruct: bool = False) -> None:
    """6. Running summaries; the chain is sequential. With then_instruct each scene's instruction call
    (stage 7) is queued as soon as its summary lands, so a long run has compilable records long before
    it ends."""
    task = ctx.hooks.start(f"{book.meta.book_id}: summaries", len(book.scenes))
    pending: list[Future] = []
    pool = ThreadPoolExecutor(ctx.options.workers) if then_instruct else None
    instruct_one = instruction_job(ctx, book) if then_instruct else None
    index = {id(s): i for i, s in enumerate(book.scenes)}
    last_save = time.monotonic()

    def on_scene(scene: SceneRecord) -> None:
        nonlocal last_save
        ctx.hooks.advance(task)
        if pool is not None:
            pending.append(pool.submit(instruct_one, (index[id(scene)], scene)))
        if time.monotonic() - last_save > SAVE_EVERY_S:
            ctx.workdir.save_book(book)
            last_save = time.monotonic()

    try:
        summarize(
            ctx.client(book.meta.book_id),
            ctx.system(book),
            book,
            ctx.count_tokens,
            lambda i: ctx.sampling(400, book.meta.book_id, "summary", i),
            scene_words=ctx.options.summary_scene_words,
            compress_calls=ctx.compress_calls,
            on_scene=on_scene,
        )
        ctx.workdir.save_book(book)
        ctx.hooks.done(task)
        for future in pending:
            future.result()  # re-raises the first failed instruction call
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        ctx.workdir.save_book(book)


def instruction_job(ctx: StageContext, book: Book) -> Callable[[tuple[int, SceneRecord]], None]:
    """7. Back-translation of one (index, scene): the instruction that would have produced it here."""
    o, book_id = ctx.options, book.meta.book_id
    words = o.instruction_scene_words
    task = ctx.hooks.start(f"{book_id}: instructions", len(book.scenes))
    client = ctx.client(book_id)
    system = ctx.system(book)

    def one(item: tuple[int, SceneRecord]) -> None:
        i, scene = item
        if scene.instruction and scene.instruction_key == instruction_key(book, scene, words):
            ctx.hooks.advance(task)
            return
        text = ""
        for attempt in range(2):
            sampling = ctx.sampling(o.instruction_max_tokens, book_id, "instruction", i, attempt)
            sampling = sampling.model_copy(update={"stop": ["\n\n"]})  # only the first paragraph is kept
            text = instruct(client, system, book, scene, sampling, scene_words=words, scene_index=i)
            if count_words(text) >= 3:
                break
        if count_words(text) < 3:
            # The model gave nothing usable twice: a plain instruction keeps the record trainable.
            text = f"Write the next scene of {scene.chapter_title}."
        scene.instruction = text
        scene.instruction_key = instruction_key(book, scene, words)
        ctx.hooks.advance(task)
        ctx.workdir.save_book(book)

    return one
