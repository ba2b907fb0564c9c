"""`train arena`: base + adapters answer held-out prompts with the same seeds, judged, format-checked and
measured for repetition; the best by the config's rule; resumable; and `train sweep` ranks by it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from novelcraft import train
from novelcraft.backends.base import Completion
from novelcraft.backends.fake import FakeBackend, _rng, _sentence
from novelcraft.cli.main import app
from novelcraft.core.errors import InputError
from novelcraft.settings.config import resolve_settings
from novelcraft.train.arena.best import pick_best
from novelcraft.train.arena.config import (
    ArenaSpec,
    BestRule,
    load_arena_file,
    parse_arena,
    plan,
    read_prompts,
)
from novelcraft.train.arena.contenders import discover, label, varying_keys
from novelcraft.train.arena.run import Arena, answer_seed
from novelcraft.train.arena.scoring import ConfigSummary, answer_row

REPO = Path(__file__).resolve().parent.parent
PROMPTS = ["Why does the sea have tides?", "How do I bake bread?", "Tell me about owls.", "What is rain?"]
PNG = b"\x89PNG\r\n\x1a\n"


def write_adapter(run_dir: Path, base: Path, weights: bytes, eval_loss: float) -> None:
    adapter = run_dir / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(base), "r": 8}))
    (adapter / "adapter_model.safetensors").write_bytes(weights)
    (adapter / "novelcraft_adapter.json").write_text(
        json.dumps({"base_model": str(base), "base_model_path": str(base)})
    )
    curve = [{"step": 0, "eval_loss": 2.0}, {"step": 10, "eval_loss": eval_loss}]
    result = {
        "eval_curve": curve,
        "train_losses": [{"step": 5, "loss": 1.5}],
        "best_eval_loss": eval_loss,
        "steps": 10,
    }
    (run_dir / "result.json").write_text(json.dumps(result))


# (run id, overrides, style the fake answers in, best eval loss): the looping adapter has the lowest loss.
ROWS = [
    ("r-loop", {"max_steps": 10, "peft_use_dora": False, "max_samples": None}, "loop", 0.40),
    ("r-good", {"max_steps": 10, "peft_use_dora": False, "max_samples": 24}, "verse", 0.90),
    ("r-prose", {"max_steps": 10, "peft_use_dora": True, "max_samples": 24}, "prose", 0.80),
]


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    root = tmp_path / "sweep"
    root.mkdir()
    base = tmp_path / "base-model"
    base.mkdir()
    lines = []
    for run_id, overrides, style, loss in ROWS:
        write_adapter(root / run_id, base, style.encode(), loss)
        lines.append(json.dumps({"id": run_id, "status": "ok", "overrides": overrides}))
    lines.append(
        json.dumps({"id": "r-failed", "status": "error", "overrides": {"max_steps": 10, "lora_r": 99}})
    )
    (root / "results.jsonl").write_text("\n".join(lines) + "\n")
    return root


class Styled(FakeBackend):
    """Answers by adapter: the base in prose, each adapter in the style of its run (see ROWS)."""

    def __init__(self, styles: dict[str | None, str]) -> None:
        super().__init__()
        self.styles = styles

    def complete(self, messages, sampling, *, json_schema=None, adapter=None):
        self.calls += 1
        self.history.append({"messages": messages, "sampling": sampling, "adapter": adapter})
        rng = _rng(messages[-1].content, sampling.seed)
        style = self.styles.get(adapter, "prose")
        if style == "loop":
            text = "\n".join(["the sea the sea the sea the sea"] * 6)
        elif style == "verse":
            text = "\n\n".join("\n".join(_sentence(rng) for _ in range(4)) for _ in range(2))
        elif style == "empty":
            text = ""
        else:
            text = " ".join(_sentence(rng) for _ in range(4))
        return Completion(text=text, tokens_in=5, tokens_out=len(text.split()))


def styled_factory(made: list) -> train.arena.run.AnswerFactory:
    def factory(base: str, adapters: dict[str, str], spec: ArenaSpec) -> Styled:
        styles = {}
        for key, path in adapters.items():
            style = next(s for run_id, _o, s, _l in ROWS if Path(path).parent.name == run_id)
            styles[key] = style
        backend = Styled(styles)
        made.append((base, adapters, backend))
        return backend

    return factory


class RuleJudge(FakeBackend):
    """0 for an answer that loops, 4 for verse, 2 for prose; format_ok when it has line breaks."""

    def complete(self, messages, sampling, *, json_schema=None, adapter=None):
        self.calls += 1
        self.history.append({"messages": messages})
        shown = messages[-1].content.split('ANSWER TO JUDGE\n"""\n', 1)[1].split('\n"""', 1)[0]
        lines = shown.splitlines()
        score = 0 if len(set(lines)) < len(lines) / 2 else 4 if "\n\n" in shown else 2
        return Completion(text=json.dumps({"analysis": "ok", "format_ok": "\n" in shown, "score": score}))


def arena_for(
    path: Path, tmp: Path, judge: FakeBackend, made: list, best: dict | None = None, **spec
) -> Arena:
    (tmp / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
    arena_spec = ArenaSpec(
        prompts=tmp / "prompts.txt",
        format=[{"kind": "lines", "min_lines": 4}],
        system_prompt="You answer in verse.",
        seeds=[0, 1],
        best=best or {"by": "quality", "max_rep_4": 0.2},
        **spec,
    )
    settings = resolve_settings(flags={"backend": "fake"}, env={})
    return Arena(
        path,
        plan(arena_spec, "test"),
        settings,
        answer_factory=styled_factory(made),
        judge_factory=lambda s: judge,
    )


def test_a_looping_adapter_is_caught_though_its_loss_is_lowest(sweep_dir: Path, tmp_path: Path) -> None:
    made: list = []
    judge = RuleJudge()
    arena = arena_for(sweep_dir, tmp_path, judge, made)
    result = arena.run()
    arena.close()
    by = {s.name: s for s in result.summaries}
    assert list(by) == ["base", "lora-nall", "lora-n24", "dora-n24"]
    loop, good = by["lora-nall"], by["lora-n24"]
    assert loop.rep_4 > 0.5 and loop.quality == 0 and loop.failure == 1.0
    assert good.quality == 4 and good.format == 1.0 and good.failure == 0 and good.rep_4 == 0
    assert by["dora-n24"].format == 0 and by["base"].quality == 2
    assert result.best.best == "lora-n24" and result.best.lowest_eval_loss == "lora-nall"
    assert result.best.excluded["lora-nall"] == ["rep_4 0.9556 > 0.2"]
    assert "base" in result.best.excluded
    # The table the command prints.
    head, rule = result.table.splitlines()[:2]
    header = ["config", "quality", "format %", "failure %", "rep-4", "eval loss", "words"]
    assert [cell.strip() for cell in head.split("|")] == header
    assert (
        "lora-n24 *" in result.table
        and "lowest eval loss: lora-nall" in result.table
        and set(rule) <= {"-", "|"}
    )
    # Same seeds: every configuration answered prompt p with seed s under the same sampling seed.
    (_base, adapters, backend) = made[0]
    seeds: dict[tuple[str, str | None], list[int]] = {}
    for call in backend.history:
        seeds.setdefault((call["messages"][-1].content, call["adapter"]), []).append(call["sampling"].seed)
    for prompt in PROMPTS:
        per_config = [tuple(v) for (p, _a), v in seeds.items() if p == prompt]
        assert len(per_config) == 4 and len(set(per_config)) == 1 and len(set(per_config[0])) == 2
    assert backend.history[0]["messages"][0].content == "You answer in verse."
    assert len(backend.history) == 4 * len(PROMPTS) * 2
    # Files: summary, CSV, a quality PNG per configuration, the dashboard.
    out = sweep_dir / "arena"
    summary = json.loads((out / "eval_summary.json").read_text())
    assert summary["best"]["best"] == "lora-n24" and summary["prompts"] == 4 and summary["seeds"] == [0, 1]
    assert [c["name"] for c in summary["configs"]] == list(by)
    assert summary["configs"][1]["best_eval_loss"] == 0.4 and summary["configs"][1]["run_id"] == "r-loop"
    rows = list(csv.DictReader((out / "eval_answers.csv").open()))
    assert len(rows) == 4 * 4 * 2 and {r["config"] for r in rows} == set(by)
    assert {r["score"] for r in rows if r["config"] == "lora-nall"} == {"0"}
    for name in [
        "quality_base.png",
        "quality_lora-nall.png",
        "quality_lora-n24.png",
        "quality_dora-n24.png",
        "dashboard.png",
    ]:
        assert (out / name).read_bytes()[:8] == PNG
    # Every call recorded: 32 answers and a verdict per distinct (prompt, answer): the base and the
    # prose adapter write alike here, and the looping one says the same whatever the seed.
    assert judge.calls == 8 + 4 + 8 and result.calls == 32 + judge.calls


def test_the_arena_resumes_without_loading_a_model(sweep_dir: Path, tmp_path: Path) -> None:
    arena = arena_for(sweep_dir, tmp_path, RuleJudge(), [])
    first = arena.run()
    arena.close()
    made: list = []
    judge = RuleJudge()
    again = arena_for(sweep_dir, tmp_path, judge, made)
    second = again.run()
    again.close()
    assert made == [] and judge.calls == 0 and second.calls == 0
    assert second.table == first.table


def test_an_empty_answer_scores_zero_without_the_judge(sweep_dir: Path, tmp_path: Path) -> None:
    judge = RuleJudge()
    made: list = []
    arena = arena_for(sweep_dir, tmp_path, judge, made, best={"max_failure": 0.5}, include_base=False)
    arena.answer_factory = lambda base, adapters, spec: Styled({k: "empty" for k in adapters})
    result = arena.run()
    arena.close()
    assert judge.calls == 0
    assert all(s.quality == 0 and s.failure == 1.0 and s.empty == 8 for s in result.summaries)
    assert result.best.best is None and "none" in result.table


# pure parts --------------------------------------------------------------------------------------------


def summary(
    name: str, quality: float | None, fmt: float, failure: float | None, rep: float, loss=None
) -> ConfigSummary:
    return ConfigSummary(
        name=name,
        adapter=None,
        n=10,
        judged=10,
        quality=quality,
        format=fmt,
        failure=failure,
        rep_4=rep,
        rep_2=0.0,
        words=40,
        empty=0,
        scores={},
        best_eval_loss=loss,
    )


def test_best_rule_bounds_base_and_tie_breaks() -> None:
    s = [
        summary("base", 4.5, 0.1, 0.0, 0.01),
        summary("a", 3.0, 0.9, 0.1, 0.02, loss=1.0),
        summary("b", 3.0, 0.9, 0.0, 0.05, loss=1.1),
        summary("c", 4.0, 0.2, 0.0, 0.01, loss=0.9),
        summary("d", None, 0.0, None, 0.0, loss=0.5),
    ]
    pick = pick_best(s, BestRule(by="quality", min_format=0.5))
    assert pick.best == "b"  # a and b tie on quality and format; b fails less
    assert pick.ranking == ["b", "a"] and pick.lowest_eval_loss == "d"
    assert pick.excluded == {
        "base": ["the base model (include_base: false)", "format 0.1 < 0.5"],
        "c": ["format 0.2 < 0.5"],
        "d": ["format 0 < 0.5"],
    }
    assert pick_best(s, BestRule(min_quality=1)).excluded["d"] == ["no quality (the judge gave no verdict)"]
    assert pick_best(s, BestRule(by="quality", include_base=True)).best == "base"
    assert pick_best(s, BestRule(by="eval_loss")).best == "d"
    assert pick_best(s, BestRule(by="rep_4", tie_break=["eval_loss"])).best == "d"
    assert pick_best(s, BestRule(by="rep_4", tie_break=["quality"], max_failure=0.0)).best == "c"
    nobody = pick_best(s, BestRule(min_quality=5))
    assert nobody.best is None and nobody.ranking == []


def test_format_comes_from_the_check_or_the_judge() -> None:
    from novelcraft.judges.judge import RubricResult

    verse = "a b c\nd e f\n\ng h i\nj k l"
    lines = {"kind": "lines", "min_lines": 4}
    question = {"kind": "judge", "question": "Does it rhyme?"}
    yes = RubricResult(score=4, format_ok=True, analysis="")
    no = RubricResult(score=4, format_ok=False, analysis="")
    checks = ArenaSpec(format=[lines]).format
    assert answer_row("x", "p", 0, "q", verse, checks, no).format_ok  # the rule decides, not the judge
    assert not answer_row("x", "p", 0, "q", "one line", checks, yes).format_ok
    both = ArenaSpec(format=[lines, question]).format
    row = answer_row("x", "p", 0, "q", verse, both, no)
    assert not row.format_ok and row.format_reasons == ["judge: not in the format"]
    assert answer_row("x", "p", 0, "q", verse, [], yes).format_ok  # no check: the judge's format_ok
    looping = answer_row("x", "p", 0, "q", " ".join(["the sea"] * 50), [], yes)
    assert looping.rep_4 > 0.9 and looping.words == 100


def test_labels_name_what_varies() -> None:
    rows = [o for _id, o, _s, _l in ROWS]
    assert varying_keys(rows) == ["peft_use_dora", "max_samples"]
    assert label(rows[0], ["peft_use_dora", "max_samples"]) == "lora-nall"
    assert (
        label({"learning_rate": 2e-4, "lora_r": 8, "x": 1}, ["learning_rate", "lora_r", "x"])
        == "lr0.0002-r8-x=1"
    )
    assert answer_seed("p001", 0) == answer_seed("p001", 0) != answer_seed("p001", 1)


def test_discover_runs_adapters_and_bad_directories(sweep_dir: Path, tmp_path: Path) -> None:
    run = discover(sweep_dir / "r-good")
    assert [c.name for c in run.contenders] == ["base", "r-good"]
    assert run.contenders[1].best_eval_loss == 0.9 and run.contenders[1].fingerprint
    adapter = discover(sweep_dir / "r-good" / "adapter", include_base=False)
    assert [c.name for c in adapter.contenders] == ["adapter"]
    with pytest.raises(InputError, match="not a run, sweep or adapter directory"):
        discover(tmp_path)
    other = tmp_path / "other-base"
    write_adapter(sweep_dir / "r-other", other, b"x", 1.0)
    with (sweep_dir / "results.jsonl").open("a") as fh:
        fh.write(json.dumps({"id": "r-other", "status": "ok", "overrides": {"lora_r": 4}}) + "\n")
    with pytest.raises(InputError, match="adapters of different base models"):
        discover(sweep_dir)


def test_arena_config_and_prompt_files(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        parse_arena({"prompts": "p.yaml", "temprature": 0.5}, "a.yaml", tmp_path)
    assert exc.value.lines == ["a.yaml: field 'arena.temprature': unknown key"]
    with pytest.raises(InputError, match=r"a.yaml: arena.judge: unknown setting 'modle'"):
        parse_arena({"judge": {"modle": "x"}}, "a.yaml", tmp_path)
    with pytest.raises(InputError, match="no held-out prompts"):
        plan(ArenaSpec(), "a.yaml")
    (tmp_path / "p.jsonl").write_text(
        '{"prompt": "First?"}\n{"id": "two", "messages": [{"role": "user", "content": "Second?"}]}\n'
    )
    assert [(p.id, p.prompt) for p in read_prompts(tmp_path / "p.jsonl")] == [
        ("p001", "First?"),
        ("two", "Second?"),
    ]
    (tmp_path / "p.yaml").write_text("- id: a\n  prompt: One?\n- id: a\n  prompt: Two?\n")
    with pytest.raises(InputError, match="prompt ids repeat"):
        read_prompts(tmp_path / "p.yaml")
    (tmp_path / "p.yaml").write_text("- {id: a}\n")
    with pytest.raises(InputError, match="prompt 1: expected a string or an object with a 'prompt'"):
        read_prompts(tmp_path / "p.yaml")


def test_shipped_arena_files_load() -> None:
    arena_file = REPO / "train" / "configs" / "arena" / "verse.yaml"
    resolved = plan(load_arena_file(arena_file), str(arena_file))
    assert len(resolved.prompts) == 12 and resolved.checks[0].kind == "lines"
    assert resolved.system_prompt == "You are a wandering bard who answers in verse."
    from novelcraft.train.sweep import load_sweep, rows

    sweep_file = REPO / "train" / "configs" / "smollm2-verse-sweep.yaml"
    sw = load_sweep(sweep_file)
    assert len(rows(sw.spec)) == 4 and sw.arena is not None and sw.arena.best.max_rep_4 == 0.15
    in_sweep = plan(sw.arena, str(sweep_file))
    assert [p.id for p in in_sweep.prompts] == [p.id for p in resolved.prompts]
    assert in_sweep.checks == resolved.checks and in_sweep.spec.include_base


# the command line --------------------------------------------------------------------------------------


def test_cli_arena_prints_the_table(sweep_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(train.arena.run, "hf_answers", styled_factory([]))
    prompts = tmp_path / "held-out.yaml"
    prompts.write_text("\n".join(f"- {p}" for p in PROMPTS) + "\n")
    runner = CliRunner()
    res = runner.invoke(
        app, ["--backend", "fake", "train", "arena", str(sweep_dir), "--prompts", str(prompts), "--no-plots"]
    )
    assert res.exit_code == 0, res.output
    assert "config" in res.output and "quality | format % | failure % | rep-4" in res.output
    assert "best: " in res.output
    res = runner.invoke(app, ["--backend", "fake", "train", "arena", str(sweep_dir), "--json"])
    assert res.exit_code == 2 and "no held-out prompts" in res.output
    res = runner.invoke(
        app,
        [
            "--backend",
            "fake",
            "train",
            "arena",
            str(sweep_dir),
            "--prompts",
            str(prompts),
            "--json",
            "--no-plots",
        ],
    )
    assert res.exit_code == 0 and json.loads(res.output)["calls"] == 0  # all cached from the first run
    # The sweep's results.csv now carries each row's arena name, figures and rank.
    best = json.loads(res.output)["best"]
    ranked = {r["config"]: r for r in csv.DictReader((sweep_dir / "results.csv").open()) if r["config"]}
    assert set(ranked) == {"lora-nall", "lora-n24", "dora-n24"}
    assert [name for name, r in ranked.items() if r["best"] == "True"] == [best["best"]]
    assert [int(ranked[name]["arena_rank"]) for name in best["ranking"]] == [1, 2, 3]


def test_sweep_runs_the_arena_and_ranks_by_it(tmp_path: Path) -> None:
    """Real training (2 steps on a tiny random Llama), real answers (transformers + PEFT, LoRA and DoRA
    switched per call), a fake judge: results.csv gains each row's arena figures and rank."""
    from train_fixtures import tiny_llama, write_dataprep_dir

    base = tiny_llama(tmp_path / "tiny")
    data = write_dataprep_dir(tmp_path / "data", n_train=4, n_val=2)
    (tmp_path / "base.yaml").write_text(
        f"base_model: {base}\ndatasets: [{{path: {data}}}]\nsequence_len: 128\nlora_target_linear: true\n"
        "micro_batch_size: 2\ntorch_threads: 1\n"
    )
    (tmp_path / "prompts.yaml").write_text("- Why is the sea salty?\n- Tell me about bread.\n")
    out = tmp_path / "out"
    (tmp_path / "sweep.yaml").write_text(
        f"sweep:\n  base: base.yaml\n  output_dir: {out}\n  fixed: {{max_steps: 2}}\n"
        "  grid:\n    peft_use_dora: [false, true]\n"
        "  arena:\n    prompts: prompts.yaml\n    max_tokens: 8\n    n_threads: 1\n    device: cpu\n"
        "    best: {by: quality, include_base: false}\n"
    )
    res = CliRunner().invoke(app, ["--backend", "fake", "train", "sweep", str(tmp_path / "sweep.yaml")])
    assert res.exit_code == 0, res.output
    assert "best: " in res.output and "rep-4" in res.output
    table = list(csv.DictReader((out / "results.csv").open()))
    assert [t["config"] for t in table] == ["lora", "dora"]
    assert (
        sorted(t["arena_rank"] for t in table) == ["1", "2"] and [t["best"] for t in table].count("True") == 1
    )
    summary = json.loads((out / "arena" / "eval_summary.json").read_text())
    assert [c["name"] for c in summary["configs"]] == ["base", "lora", "dora"]
    assert all(c["n"] == 2 for c in summary["configs"])
    assert (out / "arena" / "dashboard.png").read_bytes()[:8] == PNG
    # `train arena OUT` finds the sweep's own arena block in OUT/sweep.json.
    res = CliRunner().invoke(app, ["--backend", "fake", "train", "arena", str(out), "--no-plots", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["calls"] == 0
