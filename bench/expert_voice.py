"""Do the style experts carry their authors? Each expert and the base answer the same 10 scene prompts in
continuation mode (the engine's own continuation drafting, the same prompt for every system, no style
line, so only the adapter differs); each system's answers are placed among the authors' books with
Burrows' and cosine Delta over the most frequent words.

    .venv/bin/python bench/expert_voice.py [--registry stories/experts/registry.yaml] [--words 250] [--features 150]
        [--author holmes=conan_doyle --author eyre=bronte] [--ref BOOK ...] [--out DIR] [--json]

Global model settings come from the environment and config as for every command (NOVELCRAFT_BACKEND,
default llamacpp on the default GGUF; NOVELCRAFT_LLAMACPP_N_THREADS=2). An expert passes when its
output is nearer its own author than the other expert's output is; the base passes when it is nearer no
author than that author's expert. Prints the distance table and PASS/FAIL per claim.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "gutenberg"
DEFAULT_REFS = [
    CORPUS / "conan_doyle_-_adventures_of_sherlock_holmes.txt",
    CORPUS / "bronte_-_jane_eyre.txt",
    CORPUS / "bronte_-_shirley.txt",
]
DEFAULT_AUTHORS = {"holmes": "conan_doyle", "eyre": "bronte"}
# A plain world, the same for every prompt and system, so the voice comes from the adapter.
WORLD = "England in the 1880s: gaslit towns, country houses, railways and letters, servants and masters."
# Ten scene goals neither author owns: a detective or a governess could tell each of them.
PROMPTS = [
    (
        "A stranger arrives at the house late at night with a letter that must be answered at once.",
        "the hall",
    ),
    ("Two people who distrust each other share a long journey in a railway carriage.", "a train"),
    ("A servant confesses that something valuable has gone missing from the house.", "the kitchen"),
    ("A quarrel at dinner ends when one guest leaves the table without a word.", "the dining room"),
    ("Someone walks alone in the rain, thinking over a decision that cannot wait.", "a country road"),
    ("An old friend visits after many years and brings unwelcome news.", "a sitting room"),
    ("A locked drawer is opened and its contents change what everyone believed.", "a study"),
    ("A child asks a question that nobody in the room wants to answer.", "the nursery"),
    ("A fire breaks out in the night and the household gathers in the cold.", "the garden"),
    ("A promise made long ago is finally kept, at a cost.", "a churchyard"),
]


def drafts(settings, registry, systems: list[str | None], words: int, seed: int) -> dict[str, list[str]]:
    from novelcraft.core.schema import RunningSummary, SceneGoal
    from novelcraft.drafting.continuation import draft_scene_continuation
    from novelcraft.drafting.scene import SceneRequest, scene_prompt
    from novelcraft.runtime.calls import ModelClient
    from novelcraft.settings.backend import open_backend

    backend = open_backend(settings)
    client = ModelClient.from_policy(backend, settings.call_policy())
    out: dict[str, list[str]] = {}
    try:
        for system in systems:
            label = system or "base"
            out[label] = []
            for i, (goal, setting) in enumerate(PROMPTS):
                prompt = scene_prompt(
                    RunningSummary(),
                    "One",
                    SceneGoal(goal=goal, setting=setting),
                    progress=0,
                    target_words=words,
                    opening=True,
                )
                started = time.perf_counter()
                request = SceneRequest(
                    prompt=prompt,
                    scene_index=i,
                    sampling_for=settings.sampling,
                    base_seed=seed,
                    max_continuations=2,
                    min_fraction=0.8,
                    adapter=system,
                )
                draft = draft_scene_continuation(client, WORLD, request)
                out[label].append(draft.text)
                print(f"{label} prompt {i + 1}: {draft.words} words, {time.perf_counter() - started:.1f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
    finally:
        backend.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry", type=Path, default=REPO / "stories" / "experts" / "registry.yaml")
    parser.add_argument("--words", type=int, default=250, help="target words per answer")
    parser.add_argument("--features", type=int, default=150, help="most frequent words Delta reads")
    parser.add_argument("--author", action="append", help="EXPERT=AUTHOR (author as in the book file names)")
    parser.add_argument("--ref", type=Path, nargs="+", default=DEFAULT_REFS, help="the authors' books")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, help="also write every answer and the report here")
    parser.add_argument("--answers", type=Path, help="score answers saved by an earlier --out, no model")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from novelcraft.core.text import strip_gutenberg
    from novelcraft.experts.voice import compare_voices, report_lines
    from novelcraft.metrics.reference import load_reference
    from novelcraft.settings.config import resolve_settings
    from novelcraft.settings.experts import load_registry

    authors = dict(DEFAULT_AUTHORS)
    for item in args.author or []:
        expert, _, author = item.partition("=")
        authors[expert] = author
    settings = resolve_settings(flags={"experts": str(args.registry)})
    registry = load_registry(settings.experts)
    systems: list[str | None] = [*[e.name for e in registry.experts if e.name in authors], None]
    started = time.perf_counter()
    if args.answers:
        outputs = json.loads((args.answers / "answers.json").read_text(encoding="utf-8"))
    else:
        outputs = drafts(settings, registry, systems, args.words, args.seed)
    drafting_s = time.perf_counter() - started
    # Chunks near the answers' joined length (~2,500 words), so the z-scores measure texts of that size.
    reference = load_reference(args.ref, prepare=lambda text, title: strip_gutenberg(text), chunk_words=2_000)
    model = reference.delta_model(args.features)
    report = compare_voices(outputs, {s: authors[s] for s in outputs if s in authors}, model, base="base")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "answers.json").write_text(json.dumps(outputs, indent=2), encoding="utf-8")
        (args.out / "report.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    if args.json:
        print(
            json.dumps({**report.model_dump(), "passed": report.passed, "drafting_s": round(drafting_s, 1)})
        )
    else:
        print(f"{settings.backend} {settings.model or '(default model)'}; {len(PROMPTS)} prompts x "
              f"{len(outputs)} systems in {drafting_s:.0f} s\n")  # fmt: skip
        print("\n".join(report_lines(report)))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
