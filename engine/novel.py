"""The library API behind the CLI: start a story, run or resume its graph, redraft a scene."""

from __future__ import annotations

from collections.abc import Callable

from engine.backends import Backend
from engine.calls import ModelClient
from engine.config import Settings
from engine.graph import Drafter, build_graph, open_checkpointer, run_config
from engine.schema import RunningSummary, Seed
from engine.store import Store

OnUpdate = Callable[[str, dict], None]


def new_story(store: Store, seed: Seed, settings: Settings) -> str:
    return store.create_story(seed, settings.public_dict())


def make_drafter(store: Store, story_id: str, settings: Settings, backend: Backend) -> Drafter:
    client = ModelClient.from_settings(backend, settings, store.record_call, story_id=story_id)
    return Drafter(store=store, client=client, backend=backend, settings=settings)


def run_story(
    store: Store,
    story_id: str,
    settings: Settings,
    backend: Backend,
    on_update: OnUpdate | None = None,
) -> dict:
    """Draft from wherever the story's checkpoint stands; a finished story returns at once."""
    seed = store.seed(story_id)
    graph = build_graph(make_drafter(store, story_id, settings, backend), open_checkpointer(store.path))
    config = run_config(story_id, seed.scene_count)
    snapshot = graph.get_state(config)
    if snapshot.values and not snapshot.next:
        return store.stats(story_id)
    start = None if snapshot.values else {"story_id": story_id}
    store.update_story(story_id, status="drafting")
    # durability="sync": a checkpoint is on disk before the next node starts, so a kill loses at most
    # the node in flight, and that node finds its finished work in the store when it runs again.
    for chunk in graph.stream(start, config, stream_mode="updates", durability="sync"):
        for node, update in chunk.items():
            if on_update:
                on_update(node, update or {})
    return store.stats(story_id)


def redraft_scene(store: Store, story_id: str, idx: int, settings: Settings, backend: Backend) -> dict:
    """Write scene idx again from the summary before it, then refresh the summary after it."""
    if store.scene(story_id, idx) is None:
        raise KeyError(f"story {story_id} has no drafted scene {idx + 1}")
    drafter = make_drafter(store, story_id, settings, backend)
    previous = store.summary_after(story_id, idx - 1) if idx > 0 else RunningSummary()
    drafter.write_scene(story_id, idx, previous or RunningSummary())
    drafter.write_summary(story_id, idx, previous or RunningSummary())
    return store.scene(story_id, idx)
