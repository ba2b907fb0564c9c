"""The generate API every front end uses: a spec in, a messages corpus out, resumably.

    gen = Generator(Path("data/verse"), load_spec(Path("verse.yaml")), teacher, judge)
    result = gen.run()          # all stages; rerun to resume (only new requests are sent)
    gen.close()

The stages are functions in synth.stages; this module only wires them, keeps the stage files and
writes the run record (config.json, manifest.json, stages.json).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from novelcraft.core.schema import Message
from novelcraft.core.tokens import fallback_count
from novelcraft.dataprep.context import Hooks
from novelcraft.dataprep.manifest import build_manifest
from novelcraft.dataprep.options import GENERATE_STAGES, GenerateStage
from novelcraft.dataprep.synth import stages
from novelcraft.dataprep.synth.conversations import Exchange, read_conversations
from novelcraft.dataprep.synth.corpus import CountMessages
from novelcraft.dataprep.synth.formats import needs_judge
from novelcraft.dataprep.synth.layout import Layout
from novelcraft.dataprep.synth.mixing import MixReport
from novelcraft.dataprep.synth.records import StageStats
from novelcraft.dataprep.synth.spec import Spec, spec_json
from novelcraft.dataprep.synth.teacher import BackendFactory, Models
from novelcraft.settings.config import Settings, resolve_settings, save_config, settings_from_layers


class GenerateResult(BaseModel):
    out: str
    stages: list[StageStats] = Field(default_factory=list)
    rejected: dict[str, int] = Field(default_factory=dict)  # category of the first reason -> pairs
    mix: MixReport | None = None
    report: dict | None = None
    calls: int = 0  # model call attempts this run made (teacher and judge)
    calls_total: int = 0  # ... and all runs in this directory
    seconds: float = 0.0


def settings_over(spec_layers: list[tuple[str, dict]], invocation: Mapping[str, Any]) -> Settings:
    """Settings from a spec's layers (teacher, judge) under the invocation's config file, environment
    and flags (`invocation` as novelcraft.cli.shell.invocation_layers gives it), as a story's saved settings sit."""
    base = settings_from_layers(spec_layers).model_dump()
    return resolve_settings(
        invocation.get("config_file"),
        flags=invocation.get("flags"),
        base=base,
        backend_flags=invocation.get("backend_flags"),
    )


def model_settings(loaded: Spec, invocation: Mapping[str, Any]) -> tuple[Settings, Settings]:
    """(teacher, judge) of a spec: the judge layer sits over the teacher's."""
    teacher = (f"{loaded.path}: teacher", loaded.spec.teacher)
    judge = (f"{loaded.path}: filter.judge", loaded.spec.filter.judge)
    return settings_over([teacher], invocation), settings_over([teacher, judge], invocation)


def estimate_count(messages: list[Message]) -> int:
    """Tokens without the target's tokenizer: the offline cl100k count and a few framing tokens a message."""
    return sum(fallback_count(m.content) + 4 for m in messages)


class Generator:
    def __init__(
        self,
        out: Path,
        loaded: Spec,
        teacher: Settings,
        judge: Settings | None = None,
        *,
        workers: int = 1,
        count: CountMessages | None = None,
        backend_factory: BackendFactory | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self.loaded = loaded
        self.layout = Layout(out)
        self.teacher_settings = teacher
        self.count = count or estimate_count
        exchanges: list[Exchange] = []
        self.conversations_skipped = 0
        rewrite = loaded.spec.refine.rewrite
        if rewrite is not None:  # bad input in the file stops the run here, before any call
            exchanges, self.conversations_skipped = read_conversations(rewrite.path, rewrite.limit)
        self.models = Models(
            self.layout.root,
            teacher,
            judge or teacher,
            seed=loaded.spec.seed,
            workers=workers,
            backend_factory=backend_factory,
        )
        self.ctx = stages.SynthContext(
            spec=loaded.spec,
            seed_prompts=loaded.seed_prompts,
            exchanges=exchanges,
            layout=self.layout,
            models=self.models,
            workers=workers,
            hooks=hooks or Hooks(),
        )

    def open_models(self) -> None:
        """Check the teacher (and the judge, when the spec uses one) before anything runs."""
        spec = self.loaded.spec
        self.models.open(judge=spec.filter.judge_min_score is not None or needs_judge(spec.format.check))

    def run(self, upto: GenerateStage = "compile") -> GenerateResult:
        started = time.monotonic()
        self.layout.root.mkdir(parents=True, exist_ok=True)
        calls_before = self.models.calls_logged()
        result = GenerateResult(out=str(self.layout.root))
        wanted = GENERATE_STAGES[: GENERATE_STAGES.index(upto) + 1]
        try:
            self._stages(wanted, result)
        finally:
            result.calls_total = self.models.calls_logged()
            result.calls = result.calls_total - calls_before
            result.seconds = round(time.monotonic() - started, 2)
            self._write_record(result)
        return result

    def _stages(self, wanted: tuple[GenerateStage, ...], result: GenerateResult) -> None:
        ctx, layout = self.ctx, self.layout
        prompts, stats = stages.prompts_stage(ctx)
        layout.write_models("prompts", prompts)
        result.stages.append(stats)
        if "answers" not in wanted:
            return
        pairs, stats = stages.answers_stage(ctx, prompts)
        layout.write_models("answers", pairs)
        result.stages.append(stats)
        if "refine" not in wanted:
            return
        pairs, stats = stages.refine_stage(ctx, pairs)
        if self.conversations_skipped:
            stats.notes.append(
                f"{self.conversations_skipped} conversation lines without a user/assistant exchange"
            )
        layout.write_models("refined", pairs)
        result.stages.append(stats)
        if "filter" not in wanted:
            return
        filtered, stats = stages.filter_stage(ctx, pairs)
        layout.write_models("filtered", filtered.kept)
        layout.write_models("rejected", filtered.rejected)
        result.stages.append(stats)
        for rejection in filtered.rejected:
            result.rejected[rejection.category] = result.rejected.get(rejection.category, 0) + 1
        if "mix" not in wanted:
            return
        mixed, result.mix, stats = stages.mix_stage(ctx, filtered.kept)
        layout.write_models("mixed", mixed)
        result.stages.append(stats)
        if "compile" not in wanted:
            return
        report, stats = stages.compile_stage(ctx, mixed, self.count)
        report["rejected"] = result.rejected
        report["mix"] = result.mix.model_dump()
        report["stages"] = [
            s.model_dump(exclude={"failures"}) | {"failures": len(s.failures)}
            for s in result.stages + [stats]
        ]
        layout.write_json(layout.report_json, report)
        result.stages.append(stats)
        result.report = report

    def _write_record(self, result: GenerateResult) -> None:
        layout = self.layout
        layout.write_json(layout.stages_json, [s.model_dump() for s in result.stages])
        spec = self.loaded.spec
        config = {"generate": spec_json(spec), "spec_path": str(self.loaded.path)}
        save_config(self.teacher_settings, layout.config_json, config)
        inputs = [self.loaded.path]
        if spec.prompts.seed_prompts_file:
            inputs.append(spec.prompts.seed_prompts_file)
        if spec.refine.rewrite:
            inputs.append(spec.refine.rewrite.path)
        outputs = [*layout.corpus_files, layout.report_json] + [
            layout.stage_file(n) for n in ("prompts", "answers", "refined", "filtered", "rejected", "mixed")
        ]
        stats = result.model_dump(exclude={"report", "stages"})
        manifest = build_manifest(
            {"settings": self.teacher_settings.public_dict(), **config}, inputs, outputs, stats
        )
        layout.write_json(layout.manifest_json, manifest)

    def close(self) -> None:
        self.models.close()
