"""`novelcraft continue` and `novelcraft experts list|route|story`: parse, call novelcraft.experts, render.

Mounted by novelcraft.cli.main (`commands`) when one of them is asked for. The global options (--backend, --model,
--config, -o ...) choose the model as for every command; `--registry` names the expert registry when the
settings do not.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from novelcraft.cli.shell import JsonOpt, out, print_json, print_plain, settings_for, typer_app
from novelcraft.core.errors import InputError

if TYPE_CHECKING:
    from novelcraft.settings.config import Settings
    from novelcraft.settings.experts import ExpertRegistry

experts_app = typer_app(
    no_args_is_help=True, help="Style experts: the registry, routing decisions, who wrote which scene."
)

RegistryOpt = Annotated[
    Path | None,
    typer.Option("--registry", help="Expert registry file (default: setting 'experts', NOVELCRAFT_EXPERTS)."),
]
ExpertOpt = Annotated[
    str, typer.Option("--expert", help="auto (the router chooses) or an expert's name (forced).")
]
TextArg = Annotated[
    str, typer.Argument(help="The text (a scene goal, or a story to continue); - reads stdin.")
]


def _settings(ctx: typer.Context, registry: Path | None) -> Settings:
    settings = settings_for(ctx)
    return settings.model_copy(update={"experts": str(registry)}) if registry else settings


def _registry(settings: Settings) -> ExpertRegistry:
    from novelcraft.settings.experts import load_registry

    registry = load_registry(settings.experts)
    if registry is None:
        raise InputError(
            "no expert registry: give --registry FILE, or set 'experts' in the config or NOVELCRAFT_EXPERTS"
        )
    return registry


def _text(text: str) -> str:
    text = sys.stdin.read() if text == "-" else text
    if not text.strip():
        raise InputError("the text is empty")
    return text.strip()


def _routing(registry: ExpertRegistry):
    from novelcraft.experts.setup import Directive, ExpertRouting

    return ExpertRouting(registry, Directive(mode="auto", source="--expert"))


def list_command(ctx: typer.Context, registry: RegistryOpt = None, as_json: JsonOpt = False) -> None:
    """The experts of the registry, with the adapter each loads on the chosen backend."""
    settings = _settings(ctx, registry)
    reg = _registry(settings)
    rows = [
        {
            "name": e.name,
            "mode": e.mode,
            "base": e.base,
            "adapter": e.adapter_for(settings.backend),
            "keywords": e.keywords,
            "description": e.description,
            "exemplars": [str(p) for p in e.exemplar_paths()],
        }
        for e in reg.experts
    ]
    if as_json:
        print_json({"registry": reg.source, "router": reg.router.model_dump(), "experts": rows})
        return
    table = Table("name", "mode", "base", f"adapter ({settings.backend})", "keywords")
    for row in rows:
        words = [f"{k}:{w:g}" if w != 1 else k for k, w in row["keywords"].items()]
        keywords = ", ".join(words[:6]) + (f" (+{len(words) - 6})" if len(words) > 6 else "")
        table.add_row(row["name"], row["mode"], ", ".join(row["base"]), _shown(row["adapter"]), keywords)
    out.print(table)
    print_plain(f"router: threshold {reg.router.threshold}, embedder {reg.router.embedder} ({reg.source})")


def _shown(path: str | None) -> str:
    """A path as short as it reads: relative to the working directory when inside it."""
    if not path:
        return "-"
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def route_command(
    ctx: typer.Context,
    text: TextArg,
    expert: ExpertOpt = "auto",
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Which expert would write TEXT, how it was chosen, and the scores."""
    settings = _settings(ctx, registry)
    decision = _routing(_registry(settings)).route_text(_text(text), forced=expert)
    if as_json:
        print_json(decision.model_dump())
        return
    print_plain(decision.summary())
    if decision.reason:
        print_plain(decision.reason)


def story_command(ctx: typer.Context, story_id: str, as_json: JsonOpt = False) -> None:
    """Which expert wrote each scene of a story, and how it was chosen."""
    from novelcraft.story.novel import Story

    with Story.open(story_id, settings_for(ctx).db) as story:
        rows = story.scene_experts()
    if as_json:
        print_json(rows)
        return
    table = Table("scene", "expert", "method", "scores")
    for row in rows:
        scores = ", ".join(f"{k} {v:g}" for k, v in row["scores"].items())
        table.add_row(str(row["scene"]), row["expert"], row["method"] or "-", scores)
    out.print(table)


def continue_command(
    ctx: typer.Context,
    text: TextArg,
    expert: ExpertOpt = "auto",
    words: Annotated[int, typer.Option(min=10, max=5000, help="About this many new words.")] = 200,
    seed: Annotated[int, typer.Option(help="Sampling seed: the same seed gives the same words.")] = 0,
    registry: RegistryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Continue TEXT in the routed expert's voice (or the one --expert names) and print the new words."""
    from novelcraft.drafting.continuation import continue_story
    from novelcraft.experts.router import RouteDecision
    from novelcraft.experts.setup import DEFAULT_STYLE, expert_problems
    from novelcraft.runtime.calls import ModelClient
    from novelcraft.settings.backend import open_backend
    from novelcraft.settings.experts import load_registry

    settings = _settings(ctx, registry)
    passage = _text(text)
    reg = load_registry(settings.experts)
    if reg is None:
        if expert.lower() != "auto":
            raise InputError(f"--expert {expert}: no expert registry is configured (--registry FILE)")
        decision = RouteDecision(expert=None, method="base", reason="no expert registry is configured")
    else:
        # Decided before any model loads: an unknown name fails at once, with exit code 2.
        decision = _routing(reg).route_text(passage, forced=expert)
    backend = open_backend(settings)
    try:
        if reg is not None and decision.expert:
            problems = expert_problems(reg.require(decision.expert), reg, backend)
            if problems:
                raise InputError(*problems)
        chosen = reg.get(decision.expert) if reg is not None and decision.expert else None
        style = chosen.description if chosen and chosen.description else DEFAULT_STYLE
        client = ModelClient.from_policy(backend, settings.call_policy())
        draft = continue_story(
            client,
            passage,
            mode=decision.mode,
            sampling_for=settings.sampling,
            words=words,
            seed=seed,
            adapter=decision.adapter,
            style=style,
        )
    finally:
        backend.close()
    if as_json:
        print_json(
            {
                "text": draft.text,
                "expert": decision.expert,
                "method": decision.method,
                "mode": decision.mode,
                "scores": decision.scores,
                "reason": decision.reason,
                "words": draft.words,
            }
        )
        return
    print_plain(draft.text)


def serve_command(
    ctx: typer.Context,
    out_file: Annotated[
        Path, typer.Option("--out", help="Where to write the llama_cpp.server config (JSON).")
    ],
    registry: RegistryOpt = None,
    port: Annotated[int, typer.Option(help="The server's port (on 127.0.0.1).")] = 8080,
    alias: Annotated[str, typer.Option(help="The base model's served name.")] = "smollm2",
    n_threads: Annotated[int | None, typer.Option(help="llama.cpp threads per model.")] = None,
) -> None:
    """Write a llama-cpp-python server config that serves the base and every expert (GGUF LoRA) by name,
    and print the commands that start it and draft through it."""
    import json

    from novelcraft.backends.llamacpp import default_gguf
    from novelcraft.core.files import write_atomic
    from novelcraft.experts.serving import llama_server_config

    settings = _settings(ctx, registry)
    reg = _registry(settings)
    model = Path(settings.model) if settings.model else default_gguf()
    config = llama_server_config(
        reg, model, alias=alias, port=port, n_ctx=settings.n_ctx, n_threads=n_threads
    )
    write_atomic(out_file, json.dumps(config, indent=2) + "\n")
    print_plain(f"python -m llama_cpp.server --config_file {out_file}")
    print_plain(
        f"NOVELCRAFT_EXPERTS={reg.source} NOVELCRAFT_OPENAI_CHAT_TEMPLATE={model} novelcraft --backend openai "
        f"--base-url http://127.0.0.1:{port}/v1 --model {alias} write SEED"
    )


experts_app.command("list")(list_command)
experts_app.command("route")(route_command)
experts_app.command("story")(story_command)
experts_app.command("serve")(serve_command)

commands = typer_app()
commands.command("continue")(continue_command)
commands.add_typer(experts_app, name="experts")
