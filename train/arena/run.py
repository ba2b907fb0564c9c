"""The arena API: a run or sweep directory in; answers, verdicts, eval_summary.json, a CSV and PNGs out.

    arena = Arena(Path("runs/verse-sweep"), plan(load_arena_file(path), str(path)), judge_settings)
    result = arena.run()        # rerun to resume: answers and verdicts are cached by content key

The base model and every adapter answer in one transformers + PEFT backend (adapters switched per
call), one configuration after another, then the judge scores every answer; each step goes through
ModelClient, so every attempt is a row of OUT/calls.db and one budget (max_calls) bounds them all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from novelcraft.backends.base import Backend
from novelcraft.core.files import write_atomic
from novelcraft.core.schema import Message, Sampling
from novelcraft.dataprep.calllog import CallLog
from novelcraft.dataprep.context import Hooks
from novelcraft.dataprep.hashing import content_key
from novelcraft.dataprep.synth.cache import ResultCache
from novelcraft.dataprep.synth.formats import judge_rule
from novelcraft.judges import answer as answer_judge
from novelcraft.judges.answer import AnswerJudge
from novelcraft.judges.judge import RubricResult
from novelcraft.runtime.calls import CallGate, ModelClient, ModelOutputError
from novelcraft.settings.config import Settings
from novelcraft.train.arena.best import BestPick, pick_best
from novelcraft.train.arena.config import ArenaPlan, ArenaSpec
from novelcraft.train.arena.contenders import Contender, Lineup, discover
from novelcraft.train.arena.report import answers_csv, table_text
from novelcraft.train.arena.scoring import EMPTY_VERDICT, AnswerRow, ConfigSummary, answer_row, summarize

# (base model path, {adapter key: adapter dir}, arena spec) -> the backend the contenders answer with.
AnswerFactory = Callable[[str, dict[str, str], ArenaSpec], Backend]
JudgeFactory = Callable[[Settings], Backend]
JUDGE_MAX_TOKENS = 320
# A transient failure of an in-process model is rare; two attempts, then the arena stops.
ANSWER_ATTEMPTS = 2


def hf_answers(base: str, adapters: dict[str, str], spec: ArenaSpec) -> Backend:
    from novelcraft.backends.hf import HFBackend

    return HFBackend(
        base,
        adapters=adapters,
        device=spec.device,
        n_threads=spec.n_threads,
        merge_adapters=spec.merge_adapters,
    )


def _open_judge(settings: Settings) -> Backend:
    from novelcraft.settings.backend import open_backend

    return open_backend(settings)


class ArenaResult(BaseModel):
    out: str
    summaries: list[ConfigSummary]
    best: BestPick
    table: str
    files: list[str] = Field(default_factory=list)
    calls: int = 0
    seconds: float = 0.0


def answer_seed(prompt_id: str, seed: int) -> int:
    """The same seed for every configuration on the same prompt: only the weights differ."""
    return int(content_key("arena", prompt_id, seed)[:8], 16)


class Arena:
    def __init__(
        self,
        path: Path,
        arena_plan: ArenaPlan,
        judge_settings: Settings,
        *,
        out: Path | None = None,
        answer_factory: AnswerFactory | None = None,
        judge_factory: JudgeFactory | None = None,
        hooks: Hooks | None = None,
        plots: bool = True,
    ) -> None:
        self.path = Path(path)
        self.plan = arena_plan
        self.spec = arena_plan.spec
        self.judge_settings = judge_settings
        self.out = Path(out) if out else self.path / "arena"
        self.answer_factory = answer_factory or hf_answers
        self.judge_factory = judge_factory or _open_judge
        self.hooks = hooks or Hooks()
        self.plots = plots
        # Every model found before any loads: a directory without adapters fails here, in one line.
        self.lineup: Lineup = discover(self.path, include_base=self.spec.include_base)
        self.gate = CallGate(judge_settings.max_calls)
        self._log: CallLog | None = None
        self._answer_backend: Backend | None = None
        self._judge: AnswerJudge | None = None
        self._judge_backend: Backend | None = None
        self.answer_cache = ResultCache(self.out / "cache" / "answers.jsonl")
        self.judge_cache = ResultCache(self.out / "cache" / "judge.jsonl")
        # PEFT adapter names become module keys, where a "." (lr2e-4 -> "0.0002") is not allowed.
        self.adapter_keys = {c.name: f"a{i}" for i, c in enumerate(self.lineup.contenders) if c.adapter_dir}

    @property
    def log(self) -> CallLog:
        if self._log is None:
            self._log = CallLog(self.out / "calls.db")
        return self._log

    # answering ---------------------------------------------------------------------------------------
    def messages(self, prompt: str) -> list[Message]:
        head = [Message(role="system", content=self.plan.system_prompt)] if self.plan.system_prompt else []
        return [*head, Message(role="user", content=prompt)]

    def sampling(self, prompt_id: str, seed: int) -> Sampling:
        s = self.spec
        return Sampling(
            temperature=s.temperature,
            top_p=s.top_p,
            min_p=0.0,
            repeat_penalty=s.repeat_penalty,
            max_tokens=s.max_tokens,
            seed=answer_seed(prompt_id, seed),
        )

    def answer_backend(self) -> Backend:
        if self._answer_backend is None:
            adapters = {
                self.adapter_keys[c.name]: str(c.adapter_dir) for c in self.lineup.contenders if c.adapter_dir
            }
            self._answer_backend = self.answer_factory(self.lineup.base_model_path, adapters, self.spec)
        return self._answer_backend

    def answer(self, contender: Contender, prompt_id: str, prompt: str, seed: int) -> str:
        messages, sampling = self.messages(prompt), self.sampling(prompt_id, seed)
        who = contender.fingerprint or "base"
        key = content_key(
            who, self.lineup.base_model_path, [m.model_dump() for m in messages], sampling.model_dump()
        )
        cached = self.answer_cache.get(key)
        if cached is not None:
            return cached["text"]
        client = ModelClient(
            self.answer_backend(),
            self.log.sink_for(contender.name),
            max_attempts=ANSWER_ATTEMPTS,
            gate=self.gate,
        )
        adapter = self.adapter_keys.get(contender.name)
        # An empty or looping answer is the finding here, not a malformed call: it is kept as it is.
        text = client.text("arena_answer", messages, sampling, adapter=adapter).text.strip()
        self.answer_cache.put(key, {"text": text})
        return text

    # judging -----------------------------------------------------------------------------------------
    def judge(self) -> AnswerJudge:
        if self._judge is None:
            self._judge_backend = self.judge_factory(self.judge_settings)
            client = ModelClient.from_policy(
                self._judge_backend,
                self.judge_settings.call_policy(),
                self.log.sink_for("judge"),
                gate=self.gate,
            )
            sampling = self.judge_settings.sampling(JUDGE_MAX_TOKENS, 0, structured=True)
            self._judge = AnswerJudge(client, sampling)
        return self._judge

    def verdict(self, prompt: str, answer: str) -> RubricResult | None:
        if not answer.strip():
            return EMPTY_VERDICT
        rule = judge_rule(self.plan.checks)
        s = self.judge_settings
        key = content_key(f"{s.backend}:{s.model or 'default'}", answer_judge.VERSION, prompt, answer, rule)
        value = self.judge_cache.get(key)
        if value is None:
            try:
                value = self.judge().answer(prompt, answer, format_rule=rule).model_dump()
            except ModelOutputError as exc:
                value = {"error": str(exc).splitlines()[0]}
            self.judge_cache.put(key, value)
        return None if "error" in value else RubricResult.model_validate(value)

    # the whole arena ---------------------------------------------------------------------------------
    def run(self) -> ArenaResult:
        started = time.monotonic()
        self.out.mkdir(parents=True, exist_ok=True)
        calls_before = self.log.count()
        jobs = [
            (c, p, seed)
            for c in self.lineup.contenders
            for p in self.plan.prompts
            for seed in self.spec.seeds
        ]
        try:
            answers = self._each(
                "answers", jobs, lambda job: self.answer(job[0], job[1].id, job[1].prompt, job[2])
            )
            self._close_answers()  # the judge may be another model: one in memory at a time
            verdicts = self._each(
                "judge",
                list(zip(jobs, answers, strict=True)),
                lambda item: self.verdict(item[0][1].prompt, item[1]),
            )
        except BaseException:
            self.gate.stop()
            raise
        rows = [
            answer_row(c.name, p.id, seed, p.prompt, text, self.plan.checks, verdict)
            for (c, p, seed), text, verdict in zip(jobs, answers, verdicts, strict=True)
        ]
        summaries = [
            self._summary(c, [r for r in rows if r.config == c.name]) for c in self.lineup.contenders
        ]
        pick = pick_best(summaries, self.spec.best)
        result = ArenaResult(
            out=str(self.out), summaries=summaries, best=pick, table=table_text(summaries, pick)
        )
        result.files = self._write(rows, summaries, pick)
        result.calls = self.log.count() - calls_before
        result.seconds = round(time.monotonic() - started, 2)
        return result

    def _each(self, what: str, items: list, fn: Callable) -> list:
        task = self.hooks.start(what, len(items))
        out = []
        for item in items:
            out.append(fn(item))
            self.hooks.advance(task)
        self.hooks.done(task)
        return out

    def _summary(self, contender: Contender, rows: list[AnswerRow]) -> ConfigSummary:
        summary = summarize(
            contender.name, str(contender.adapter_dir) if contender.adapter_dir else None, rows
        )
        summary.best_eval_loss = contender.best_eval_loss
        summary.steps = contender.steps
        summary.overrides = contender.overrides
        summary.run_id = contender.run_id
        return summary

    def _write(self, rows: list[AnswerRow], summaries: list[ConfigSummary], pick: BestPick) -> list[str]:
        s = self.judge_settings
        summary = {
            "source": str(self.path),
            "base_model": self.lineup.base_model_path,
            "prompts": len(self.plan.prompts),
            "seeds": self.spec.seeds,
            "judge": f"{s.backend}:{s.model or 'default'}",
            "format_rule": judge_rule(self.plan.checks),
            "system_prompt": self.plan.system_prompt,
            "sampling": self.sampling("", 0).model_dump(exclude={"seed", "stop"}),
            "configs": [x.model_dump() for x in summaries],
            "best": pick.model_dump(),
        }
        files = [
            write_atomic(self.out / "eval_summary.json", json.dumps(summary, indent=2, default=str) + "\n"),
            write_atomic(self.out / "eval_answers.csv", answers_csv(rows)),
        ]
        if self.plots:
            from novelcraft.train.arena.plots import dashboard_png, quality_png

            files += [quality_png(x, self.out) for x in summaries]
            files.append(dashboard_png(summaries, self.lineup.contenders, pick.best, self.out))
        return [str(f) for f in files]

    def _close_answers(self) -> None:
        if self._answer_backend is not None:
            self._answer_backend.close()
            self._answer_backend = None

    def close(self) -> None:
        self._close_answers()
        if self._judge_backend is not None:
            self._judge_backend.close()
        if self._log is not None:
            self._log.close()
