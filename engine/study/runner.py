"""Batch studies: seeds x variants x repeats, drafted concurrently, resumable, then evaluated.

A study file names the seeds, the settings every story shares, the variants (settings that differ)
and how many repeats; the runner drafts every cell into one story database in the output directory,
N stories at once (so a served model's continuous batching is used), and a rerun skips finished
stories and resumes interrupted ones. Evaluation and the report are separate steps over that database.
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from novelcraft.backends import Backend
from novelcraft.core.errors import InputError, StoreError, prefixed, validation_lines
from novelcraft.core.files import load_yaml
from novelcraft.core.schema import Seed
from novelcraft.core.seedfile import load_seed
from novelcraft.evaluation.stories import evaluate, evaluate_chunks
from novelcraft.runtime.calls import CallGate
from novelcraft.settings.backend import open_backend
from novelcraft.settings.config import ConfigError, Settings, settings_from_layers, with_backend_flags
from novelcraft.story.novel import DraftFailed, Story, create_database, stories_in, study_cells


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Variant(Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    # Settings that differ from the study's: backend, model, adapter, sampling, engine settings.
    settings: dict[str, Any] = Field(default_factory=dict)


class JudgeSpec(Strict):
    # The judge model's settings (a backend section and model); default: the study's own settings.
    settings: dict[str, Any] = Field(default_factory=dict)
    rubric: bool = True
    # Pairs of variant names compared scene by scene (same seed and repeat), both orders.
    pairwise: list[tuple[str, str]] = Field(default_factory=list)


class StudySpec(Strict):
    name: str = "study"
    seeds: list[Path] = Field(min_length=1)
    repeats: int = Field(default=1, ge=1, le=100)
    settings: dict[str, Any] = Field(default_factory=dict)
    # Applied to every seed, e.g. {scenes: 3, target_words: 900} for a quick study.
    seed_overrides: dict[str, Any] = Field(default_factory=dict)
    variants: list[Variant] = Field(min_length=1)
    judge: JudgeSpec | None = None
    # Reference books for voice metrics and attribution (author_-_title.txt names the author).
    reference: list[Path] = Field(default_factory=list)
    # Human prose (Gutenberg .txt or plain text) cut into excerpts as long as the drafted stories.
    baseline: list[Path] = Field(default_factory=list)

    @field_validator("variants")
    @classmethod
    def _distinct_names(cls, v: list[Variant]) -> list[Variant]:
        names = [x.name for x in v]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names repeat: {', '.join(names)}")
        return v

    @model_validator(mode="after")
    def _pairs_name_variants(self) -> StudySpec:
        names = {v.name for v in self.variants}
        for a, b in self.judge.pairwise if self.judge else []:
            if a not in names or b not in names:
                raise ValueError(f"judge.pairwise: [{a}, {b}] names a variant the study does not have")
        return self


class Cell(BaseModel):
    """One story of the study: which seed, which variant, which repeat."""

    seed_path: str
    variant: str
    repeat: int

    @property
    def key(self) -> str:
        return f"{Path(self.seed_path).stem}/{self.variant}/{self.repeat}"


class CellResult(BaseModel):
    cell: Cell
    story_id: str
    status: str
    error: str | None = None
    skipped: bool = False


def load_study(path: Path) -> StudySpec:
    """The study file, validated; seed, reference and baseline paths are relative to the file."""
    try:
        data = load_yaml(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: YAML syntax error: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of study fields")
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as exc:
        raise InputError(*prefixed(str(path), validation_lines(exc))) from None
    base = Path(path).parent
    spec.seeds = [p if p.is_absolute() else base / p for p in spec.seeds]
    spec.reference = [p if p.is_absolute() else base / p for p in spec.reference]
    spec.baseline = [p if p.is_absolute() else base / p for p in spec.baseline]
    # A missing book is found now, not at report time after hours of drafting.
    missing = [
        f"{path}: {field}: no file {p}"
        for field in ("seeds", "reference", "baseline")
        for p in getattr(spec, field)
        if not p.is_file()
    ]
    if missing:
        raise InputError(*missing)
    return spec


class Study:
    """A study's output directory: `stories.db` holds every story and the cell each one drafts."""

    def __init__(
        self,
        spec: StudySpec,
        out: Path,
        source: Path | str = "study",
        command_line: Mapping[str, Any] | None = None,
        backend_flags: Mapping[str, str] | None = None,
    ) -> None:
        """`command_line`: settings given as flags (`--backend fake`), and `backend_flags` (`-o k=v`) for
        the backend chosen: they outrank the study file and its variants, for every story and the judge."""
        self.spec = spec
        self.out = Path(out)
        self.db = self.out / "stories.db"
        self.source = source
        self.command_line = {k: v for k, v in (command_line or {}).items() if v is not None}
        self.backend_flags = dict(backend_flags or {})
        self._backends: dict[str, Backend] = {}
        self._lock = threading.Lock()
        # One per story drafting now (each with its story's call budget): stopped all at once on Ctrl-C.
        self._gates: list[CallGate] = []

    # what the study is ----------------------------------------------------------------------
    def cells(self) -> list[Cell]:
        return [
            Cell(seed_path=str(seed), variant=variant.name, repeat=r)
            for seed in self.spec.seeds
            for variant in self.spec.variants
            for r in range(self.spec.repeats)
        ]

    def seed_for(self, cell: Cell) -> Seed:
        """The seed of a cell: the file with the study's overrides; each repeat draws other samples."""
        seed = load_seed(Path(cell.seed_path))
        data = {**seed.model_dump(), **self.spec.seed_overrides}
        data["seed"] = data["seed"] + cell.repeat
        try:
            return Seed.model_validate(data)
        except ValidationError as exc:
            raise InputError(
                *prefixed(f"{cell.seed_path} with seed_overrides", validation_lines(exc))
            ) from None

    def settings_for(self, cell: Cell) -> Settings:
        """The study's settings, the variant's on top: the study file is the whole config of a study,
        so a rerun on another machine or shell drafts the same stories."""
        variant = next(v for v in self.spec.variants if v.name == cell.variant)
        return self.resolve([(f"variant {variant.name}", variant.settings)])

    def resolve(self, layers: list[tuple[str, Mapping[str, Any]]]) -> Settings:
        """The study's settings with `layers` on top, then the command line's; the story database is
        always the study's own."""
        try:
            settings = settings_from_layers(
                [
                    ("study settings", self.spec.settings),
                    *layers,
                    ("command line", self.command_line),
                    ("study", {"db": self.db}),
                ]
            )
            return with_backend_flags(settings, self.backend_flags)
        except ConfigError as exc:
            raise InputError(*prefixed(str(self.source), exc.lines)) from None

    def check(self) -> None:
        """Every cell's seed and settings, before any story is made (one error lists all problems)."""
        problems: list[str] = []
        for cell in self.cells():
            try:
                self.seed_for(cell)
                self.settings_for(cell)
            except InputError as exc:
                problems += [line for line in exc.lines if line not in problems]
        if problems:
            raise InputError(*problems)

    # the stories ------------------------------------------------------------------------------
    def story_ids(self) -> dict[str, str]:
        """cell key -> story id of the cells already started."""
        return study_cells(self.db)

    def backend_for(self, settings: Settings) -> Backend:
        """One backend per distinct model setup, shared by every story that drafts with it."""
        key = repr(
            [settings.backend, settings.model, settings.adapters, settings.n_ctx, settings.backend_options]
        )
        with self._lock:
            if key not in self._backends:
                self._backends[key] = open_backend(settings)
            return self._backends[key]

    def run_cell(self, cell: Cell, on_done: Callable[[CellResult], None] | None = None) -> CellResult:
        settings = self.settings_for(cell)
        backend = self.backend_for(settings)
        existing = self.story_ids().get(cell.key)
        if existing:
            story = Story.open(existing, self.db)
        else:
            story = Story.start(self.seed_for(cell), settings, backend=backend, source=cell.seed_path)
            story.record_study_cell(cell.key)
        try:
            skipped = story.status == "done"
            if not skipped:
                gate = CallGate(settings.max_calls)
                with self._lock:
                    self._gates.append(gate)
                story.draft(settings, backend=backend, gate=gate)
            result = CellResult(cell=cell, story_id=story.id, status=story.status, skipped=skipped)
        except DraftFailed as exc:
            result = CellResult(cell=cell, story_id=story.id, status="failed", error=str(exc))
        finally:
            story.close()
        if on_done:
            on_done(result)
        return result

    def draft(
        self, concurrency: int = 1, on_done: Callable[[CellResult], None] | None = None
    ) -> list[CellResult]:
        """Draft every cell, `concurrency` stories at once; finished ones are skipped."""
        self.check()
        self.out.mkdir(parents=True, exist_ok=True)
        create_database(self.db)  # created and migrated once, before the workers start
        cells = self.cells()
        pool = ThreadPoolExecutor(max(1, concurrency))
        try:
            futures = [pool.submit(self.run_cell, cell, on_done) for cell in cells]
            pending = set(futures)
            # Short waits keep Ctrl-C prompt; a wait without timeout only sees it when a story ends.
            while pending:
                pending = wait(pending, timeout=0.5).not_done
            return [f.result() for f in futures]
        except BaseException:
            # Ctrl-C: no new story starts, and the ones drafting stop at their next call (the call in
            # flight ends first); each is left resumable, and the same command goes on from there.
            pool.shutdown(wait=False, cancel_futures=True)
            with self._lock:
                for gate in self._gates:
                    gate.stop()
            raise
        finally:
            pool.shutdown(wait=True)
            self.close()

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()


# evaluation ---------------------------------------------------------------------------------------
def evaluate_study(study: Study, *, log: Callable[[str], None] = lambda line: None) -> dict[str, str]:
    """Metrics (and judges, when the study names them) for every finished story, then the report."""
    from novelcraft.evaluation.judging import pairwise, rubric, saved_rubric
    from novelcraft.evaluation.table import values
    from novelcraft.judges.judge import win_rate
    from novelcraft.study.report import PairRow, StoryRow, write_report

    spec = study.spec
    reference = _reference(spec.reference)
    author = _reference_author(spec.reference)
    ids = study.story_ids()
    if not study.db.exists():
        raise StoreError(f"{study.db}: no story database here (run the study first)")
    # Every story of the study, open on one connection until the report is written.
    stories = ExitStack()
    by_id = {story.id: story for story in stories.enter_context(stories_in(study.db))}
    judge_backend = judge_settings = None
    try:
        if spec.judge:
            judge_settings = study.resolve([("judge settings", spec.judge.settings)])
            judge_backend = open_backend(judge_settings)
        rows: list[StoryRow] = []
        for cell in study.cells():
            story_id = ids.get(cell.key)
            story = by_id.get(story_id) if story_id else None
            if story is None or story.status != "done":
                log(f"{cell.key}: not drafted, left out of the report")
                continue
            rubric_summary = None
            if judge_backend and spec.judge.rubric:
                log(f"{cell.key}: judging scenes")
                rubric_summary = rubric(story, judge_backend, judge_settings).summary
            evaluated = evaluate(story, reference=reference, author=author)
            judged = saved_rubric(story)
            tokens = evaluated.engine.tokens_per_scene if evaluated.engine else []
            adherence = evaluated.cohesion.adherence if evaluated.cohesion else None
            lifts = adherence.basis_lifts if adherence else []
            scenes = [
                {
                    "scene": f.scene,
                    "words": f.words,
                    "length_score": f.length_score,
                    "rep_4": f.rep_4,
                    "judge_score": judged.get(f.scene),
                    "tokens": tokens[f.scene - 1] if f.scene - 1 < len(tokens) else None,
                    "goal_lift": lifts[f.scene - 1] if f.scene - 1 < len(lifts) else None,
                }
                for f in evaluated.metrics.scenes.scenes
            ]
            rows.append(
                StoryRow(
                    story_id=story_id,
                    seed=Path(cell.seed_path).stem,
                    variant=cell.variant,
                    repeat=cell.repeat,
                    values=values(evaluated),
                    scenes=scenes,
                    rubric=rubric_summary,
                )
            )
        pairs = []
        for a, b in spec.judge.pairwise if judge_backend else []:
            outcomes = []
            for seed in spec.seeds:
                for r in range(spec.repeats):
                    ka, kb = (Cell(seed_path=str(seed), variant=v, repeat=r).key for v in (a, b))
                    if ka in ids and kb in ids:
                        log(f"pairwise {ka} vs {kb}")
                        verdicts = pairwise(by_id[ids[ka]], by_id[ids[kb]], judge_backend, judge_settings)
                        outcomes += [v.outcome for v in verdicts.verdicts.values()]
            pairs.append(PairRow(variant_a=a, variant_b=b, win_rate=win_rate(outcomes)))
    finally:
        stories.close()
        if judge_backend:
            judge_backend.close()
    human_rows = _human_rows(spec, rows, reference, author)
    about = (
        f"Seeds: {', '.join(p.name for p in spec.seeds)}; variants: {', '.join(v.name for v in spec.variants)}; "
        f"{spec.repeats} repeat(s); {len(rows)} stories evaluated. Stories: `{study.db}`."
    )
    return write_report(study.out, spec.name, rows, human_rows, pairs, about)


def _reference(paths: list[Path]):
    if not paths:
        return None
    from novelcraft.core.text import strip_gutenberg
    from novelcraft.metrics.reference import load_reference

    return load_reference(paths, prepare=lambda text, title: strip_gutenberg(text))


def _reference_author(paths: list[Path]) -> str | None:
    """With one reference author, voice is compared with that author; with several, only attribution."""
    from novelcraft.metrics.reference import book_label

    authors = {book_label(p)[0] for p in paths}
    return authors.pop() if len(authors) == 1 else None


def _human_rows(spec: StudySpec, rows, reference, author) -> list:
    """Excerpts of the baseline books as long as the drafted stories, cut into scenes of the same size."""
    from novelcraft.core.text import strip_gutenberg
    from novelcraft.evaluation.table import values
    from novelcraft.metrics.chunking import excerpt
    from novelcraft.metrics.suite import split_scenes
    from novelcraft.study.report import StoryRow

    if not spec.baseline or not rows:
        return []
    words = round(statistics.fmean(r.values.get("words", 0) for r in rows)) or 800
    scenes = round(statistics.fmean(r.values.get("scenes", 1) for r in rows)) or 1
    out = []
    for path in spec.baseline:
        text = excerpt(strip_gutenberg(path.read_text(encoding="utf-8", errors="replace")), words)
        chunks = split_scenes(text, "chunks", max(50, words // scenes))
        evaluated = evaluate_chunks(path.name, chunks, reference=reference, author=author)
        out.append(
            StoryRow(
                story_id=path.name, seed="-", variant="human", repeat=0, values=values(evaluated), scenes=[]
            )
        )
    return out
