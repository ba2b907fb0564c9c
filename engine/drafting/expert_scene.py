"""One scene with its expert: route it, then draft it in the expert's mode, every call carrying the decision.

What the graph calls (engine/drafting/graph.py, Drafter.draft_over_floor):

    decision = route_scene(plan, routing)            # or None when the story does not route
    draft = draft_with_expert(decision, routing, client, ctx, plan, request)  # request: a SceneRequest

Chat experts and the base draft through `draft_scene` (chat turns); continuation experts through
`draft_scene_continuation` (raw completion). Outline, world, review and summary calls stay on the base:
only the calls made here carry the expert's adapter.
"""

from __future__ import annotations

from dataclasses import replace

from novelcraft.drafting.context import BookContext, ScenePlan
from novelcraft.drafting.continuation import draft_scene_continuation
from novelcraft.drafting.scene import SceneDraft, SceneRequest, draft_scene
from novelcraft.experts.router import RouteDecision
from novelcraft.experts.setup import ExpertRouting, voice_notes
from novelcraft.runtime.calls import ModelClient, call_note


def route_scene(plan: ScenePlan, routing: ExpertRouting) -> RouteDecision:
    """The expert for one scene of the outline: its goal, setting, characters and mood hint decide."""
    return routing.route_goal(plan.goal)


def draft_with_expert(
    decision: RouteDecision,
    routing: ExpertRouting,
    client: ModelClient,
    context: BookContext,
    plan: ScenePlan,
    request: SceneRequest,
) -> SceneDraft:
    """The scene drafted by the routed expert (or the base), in its mode; the decision's adapter writes
    it, whatever `request.adapter` says."""
    request = replace(request, adapter=decision.adapter)
    with call_note(decision.note()):
        if decision.mode == "continuation":
            style = routing.style_for(decision, voice_notes(context.seed, routing.asked))
            return draft_scene_continuation(client, context.world, request, mood=plan.goal.mood, style=style)
        return draft_scene(client, context.system, request)
