"""The six generate stages. Each takes the stage before's output, returns its own and its stats.

Every model result goes to the stage's cache as it lands, under a key of the exact request (model,
messages, sampling with its seed), so a rerun, after a kill or with a grown spec, makes only the calls
whose requests are new. A request the teacher never answered usably (ModelOutputError after the
retries) is cached as a failure: it is reported, never written to the dataset, and not asked again.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel, Field

from novelcraft.core.schema import Message, Sampling
from novelcraft.dataprep.context import Hooks
from novelcraft.dataprep.hashing import content_key
from novelcraft.dataprep.synth import corpus, filtering
from novelcraft.dataprep.synth.cache import ResultCache
from novelcraft.dataprep.synth.conversations import Exchange
from novelcraft.dataprep.synth.dedup import exact_duplicates, normalize
from novelcraft.dataprep.synth.formats import judge_rule, needs_judge
from novelcraft.dataprep.synth.layout import Layout, write_jsonl
from novelcraft.dataprep.synth.mixing import MixReport, mix, sample
from novelcraft.dataprep.synth.parallel import map_ordered
from novelcraft.dataprep.synth.prompts import (
    GeneratePromptsPrompt,
    GenerateSystemPrompt,
    LengthVariantPrompt,
    RewritePrompt,
)
from novelcraft.dataprep.synth.records import Failure, Kind, Pair, PromptItem, Rejection, StageStats
from novelcraft.dataprep.synth.spec import SynthSpec
from novelcraft.dataprep.synth.teacher import Models, request_key
from novelcraft.judges import answer as answer_judge
from novelcraft.judges.judge import RubricResult
from novelcraft.runtime.calls import ModelClient, ModelOutputError

# A prompt shorter than this many words is not a request ("Sure!", "1.").
MIN_PROMPT_WORDS = 3
# Prompts shown to the teacher as "already written": enough to steer away from repeats, few enough
# that the request stays short.
AVOID_SHOWN = 20
EXAMPLES_SHOWN = 5
_LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


class PromptList(BaseModel):
    prompts: list[str] = Field(min_length=1, max_length=60)


@dataclass
class SynthContext:
    spec: SynthSpec
    seed_prompts: list[str]
    exchanges: list[Exchange]
    layout: Layout
    models: Models
    workers: int = 1
    hooks: Hooks = field(default_factory=Hooks)
    _caches: dict[str, ResultCache] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cache(self, stage: str) -> ResultCache:
        with self._lock:  # one cache object per file, whichever worker asks first
            if stage not in self._caches:
                self._caches[stage] = ResultCache(self.layout.cache_file(stage))
            return self._caches[stage]

    def each(self, fn: Callable, items: list) -> list:
        return map_ordered(fn, items, workers=self.workers, gate=self.models.gate)


class Tally:
    """Stage stats, counted from every worker thread."""

    def __init__(self, stage: str) -> None:
        self.stats = StageStats(stage=stage)
        self._lock = threading.Lock()

    def count(self, *, reused: bool) -> None:
        with self._lock:
            if reused:
                self.stats.reused += 1
            else:
                self.stats.requests += 1

    def fail(self, failure: Failure) -> None:
        with self._lock:
            self.stats.failures.append(failure)


def cached_call(
    ctx: SynthContext, stage: str, key: str, call: Callable[[ModelClient], dict], tally: Tally, what: str
) -> dict:
    """The cached result of a request, or the teacher's (cached as soon as it lands)."""
    cache = ctx.cache(stage)
    value = cache.get(key)
    tally.count(reused=value is not None)
    if value is None:
        try:
            value = call(ctx.models.teacher(stage))
        except ModelOutputError as exc:
            value = {"error": str(exc).splitlines()[0]}
        cache.put(key, value)
    if "error" in value:
        tally.fail(Failure(id=key, what=what, error=value["error"]))
    return value


def text_call(
    ctx: SynthContext,
    stage: str,
    label: str,
    messages: list[Message],
    sampling: Sampling,
    tally: Tally,
    what: str,
) -> str | None:
    """A checked free-text answer (see teacher.CheckedAnswers), or None when the teacher gave none."""
    key = request_key(ctx.models.teacher_model, messages, sampling)
    value = cached_call(
        ctx, stage, key, lambda c: {"text": c.text(label, messages, sampling).text.strip()}, tally, what
    )
    return value.get("text")


# 1. prompts ------------------------------------------------------------------------------------------


def clean_prompt(text: str) -> str:
    """One request: list marks, wrapping quotes and spacing off."""
    text = _LIST_MARK.sub("", " ".join(text.split()))
    return text.strip(" \"'“”")


def quotas(total: int, topics: list[str]) -> list[tuple[str, int]]:
    """total split over the topics as evenly as it goes, the first topics taking the remainder."""
    if not topics or total <= 0:
        return []
    base, extra = divmod(total, len(topics))
    return [(topic, base + (i < extra)) for i, topic in enumerate(topics) if base + (i < extra) > 0]


def topic_prompts(
    ctx: SynthContext, kind: Kind, topic: str, quota: int, guidance: str, examples: list[str], tally: Tally
) -> list[str]:
    """Rounds of calls for one topic until it has `quota` distinct prompts, each round told what the
    rounds before wrote; a teacher that keeps repeating itself stops after the extra rounds."""
    p = ctx.spec.prompts
    system = Message(role="system", content=GenerateSystemPrompt().render())
    got: list[str] = []
    seen: set[str] = set()
    for round_ in range(math.ceil(quota / p.per_call) + p.extra_rounds):
        if len(got) >= quota:
            break
        prompt = GeneratePromptsPrompt(
            n=min(p.per_call, quota - len(got)),
            topic=topic,
            guidance=guidance,
            examples=examples[:EXAMPLES_SHOWN],
            avoid=got[-AVOID_SHOWN:],
        )
        messages = [system, Message(role="user", content=prompt.render())]
        sampling = ctx.models.sampling(p.max_tokens, None, "prompts", kind, topic, round_)
        key = request_key(ctx.models.teacher_model, messages, sampling)
        value = cached_call(
            ctx,
            "prompts",
            key,
            lambda c, m=messages, s=sampling: c.json(
                GeneratePromptsPrompt.template, m, PromptList, s
            ).model_dump(),
            tally,
            f"prompts for {kind} topic {topic!r}, round {round_}",
        )
        for raw in value.get("prompts", []):
            text = clean_prompt(raw)
            if len(text.split()) >= MIN_PROMPT_WORDS and normalize(text) not in seen:
                seen.add(normalize(text))
                got.append(text)
    return got[:quota]


def prompt_item(kind: Kind, source: str, topic: str, prompt: str) -> PromptItem:
    return PromptItem(
        id=content_key("prompt", kind, normalize(prompt))[:12],
        kind=kind,
        source=source,
        topic=topic,
        prompt=prompt,
    )


def track_prompts(
    ctx: SynthContext,
    kind: Kind,
    count: int,
    seeds: list[str],
    topics: list[str],
    guidance: str,
    tally: Tally,
    task: object,
) -> list[PromptItem]:
    items = [prompt_item(kind, "seed", "", s) for s in seeds[:count]]
    plan = quotas(count - len(items), topics)

    def one_topic(item: tuple[str, int]) -> list[str]:
        found = topic_prompts(ctx, kind, item[0], item[1], guidance, seeds, tally)
        ctx.hooks.advance(task)
        return found

    found = ctx.each(one_topic, plan)
    for (topic, quota), prompts in zip(plan, found, strict=True):
        items += [prompt_item(kind, "topic", topic, text) for text in prompts]
        if len(prompts) < quota:
            tally.stats.notes.append(f"{kind} topic {topic!r}: {len(prompts)} of {quota} prompts")
    # One prompt asked twice (a seed the teacher rewrote, two topics that meet) is one prompt.
    dupes = exact_duplicates([i.prompt for i in items])
    return [item for n, item in enumerate(items) if n not in dupes]


def prompts_stage(ctx: SynthContext) -> tuple[list[PromptItem], StageStats]:
    tally = Tally("prompts")
    s = ctx.spec
    task = ctx.hooks.start("prompts", len(s.prompts.topics) + len(s.plain.topics))
    items = track_prompts(
        ctx, "format", s.prompts.count, ctx.seed_prompts, s.prompts.topics, s.prompts.guidance, tally, task
    )
    if s.plain.count:
        items += track_prompts(
            ctx, "plain", s.plain.count, s.plain.seed_prompts, s.plain.topics, s.plain.guidance, tally, task
        )
    ctx.hooks.done(task)
    tally.stats.produced = len(items)
    short = s.prompts.count - sum(i.kind == "format" for i in items)
    if short > 0:
        tally.stats.notes.append(f"{short} format prompts short of prompts.count {s.prompts.count}")
    return items, tally.stats


# 2. answers ------------------------------------------------------------------------------------------


def answers_stage(ctx: SynthContext, prompts: list[PromptItem]) -> tuple[list[Pair], StageStats]:
    tally = Tally("answers")
    s = ctx.spec
    task = ctx.hooks.start("answers", len(prompts))

    def answer(item: PromptItem) -> Pair | None:
        system = s.format.system_prompt if item.kind == "format" else s.plain.system_prompt
        messages = [Message(role="system", content=system), Message(role="user", content=item.prompt)]
        sampling = ctx.models.sampling(s.answers.max_tokens, s.answers.temperature, "answer", item.id)
        text = text_call(
            ctx, "answers", "generate_answer", messages, sampling, tally, f"answer to prompt {item.id}"
        )
        ctx.hooks.advance(task)
        if text is None:
            return None
        pair_id = content_key("pair", item.id, "teacher")[:12]
        return Pair(
            id=pair_id, kind=item.kind, origin="teacher", prompt=item.prompt, answer=text, topic=item.topic
        )

    pairs = [p for p in ctx.each(answer, prompts) if p is not None]
    ctx.hooks.done(task)
    tally.stats.produced = len(pairs)
    return pairs, tally.stats


# 3. refine -------------------------------------------------------------------------------------------


def variant_parents(pairs: list[Pair], share: float, seed: int) -> list[Pair]:
    """The share of the teacher's format pairs that get length variants, chosen by a seeded rank."""
    candidates = [p for p in pairs if p.kind == "format" and p.origin == "teacher"]
    return sample(candidates, round(len(candidates) * share), seed)


def refine_stage(ctx: SynthContext, pairs: list[Pair]) -> tuple[list[Pair], StageStats]:
    tally = Tally("refine")
    s = ctx.spec
    system = Message(role="system", content=s.format.system_prompt)
    jobs: list[tuple[str, Pair | Exchange]] = []
    if s.refine.length_variants is not None:
        for parent in variant_parents(pairs, s.refine.length_variants.share, s.seed):
            jobs += [("short", parent), ("long", parent)]
    jobs += [("rewrite", exchange) for exchange in ctx.exchanges]
    task = ctx.hooks.start("refine", len(jobs))

    def variant(direction: str, parent: Pair) -> Pair | None:
        lv = s.refine.length_variants
        hint = lv.short if direction == "short" else lv.long
        prompt = LengthVariantPrompt(
            prompt=parent.prompt,
            answer=parent.answer,
            direction="shorter" if direction == "short" else "longer",
            hint=hint,
        )
        messages = [system, Message(role="user", content=prompt.render())]
        sampling = ctx.models.sampling(
            s.refine.max_tokens, s.answers.temperature, "variant", parent.id, direction
        )
        text = text_call(
            ctx, "refine", prompt.template, messages, sampling, tally, f"{direction} variant of {parent.id}"
        )
        if text is None:
            return None
        return Pair(
            id=content_key("pair", parent.id, direction)[:12],
            kind="format",
            origin=direction,
            prompt=f"{parent.prompt} {hint}",
            answer=text,
            parent=parent.id,
            topic=parent.topic,
        )

    def rewrite(exchange: Exchange) -> Pair | None:
        prompt = RewritePrompt(prompt=exchange.prompt, answer=exchange.answer)
        messages = [system, Message(role="user", content=prompt.render())]
        sampling = ctx.models.sampling(s.refine.max_tokens, s.answers.temperature, "rewrite", exchange.prompt)
        text = text_call(
            ctx,
            "refine",
            prompt.template,
            messages,
            sampling,
            tally,
            f"rewrite of conversation line {exchange.line}",
        )
        if text is None:
            return None
        pair_id = content_key("pair", exchange.prompt, exchange.answer, "rewrite")[:12]
        return Pair(id=pair_id, kind="format", origin="rewrite", prompt=exchange.prompt, answer=text)

    def job(item: tuple[str, Pair | Exchange]) -> Pair | None:
        what, source = item
        made = rewrite(source) if what == "rewrite" else variant(what, source)
        ctx.hooks.advance(task)
        return made

    made = [p for p in ctx.each(job, jobs) if p is not None]
    ctx.hooks.done(task)
    real = []
    if s.refine.rewrite is not None and s.refine.rewrite.keep_original:
        real = [
            Pair(
                id=content_key("pair", e.prompt, e.answer, "real")[:12],
                kind="plain",
                origin="real",
                prompt=e.prompt,
                answer=e.answer,
            )
            for e in ctx.exchanges
        ]
    out = pairs + made + real
    tally.stats.produced = len(out)
    return out, tally.stats


# 4. filter -------------------------------------------------------------------------------------------


class FilterResult(BaseModel):
    kept: list[Pair]
    rejected: list[Rejection]


def judge_key(ctx: SynthContext, pair: Pair, rule: str) -> str:
    return content_key(ctx.models.judge_model, answer_judge.VERSION, pair.prompt, pair.answer, rule)


def filter_stage(ctx: SynthContext, pairs: list[Pair]) -> tuple[FilterResult, StageStats]:
    tally = Tally("filter")
    s = ctx.spec
    checks = s.format.check
    kept, rejected = filtering.filter_pairs(pairs, checks, s.filter.near_duplicate)
    if s.filter.judge_min_score is not None or needs_judge(checks):
        verdicts = judge_pairs(ctx, kept, checks, tally)
        why = filtering.Reasons()
        for pair in kept:
            judged_out(why, pair, verdicts[pair.id], s.filter.judge_min_score, needs_judge(checks))
        filtering.drop_orphans(kept, why)
        kept, more = why.split(kept)
        order = {p.id: i for i, p in enumerate(pairs)}
        rejected = sorted(rejected + more, key=lambda r: order[r.pair.id])
    tally.stats.produced = len(kept)
    return FilterResult(kept=kept, rejected=rejected), tally.stats


def judge_pairs(
    ctx: SynthContext, pairs: list[Pair], checks: list, tally: Tally
) -> dict[str, RubricResult | None]:
    """A verdict per pair (None when the judge never answered usably), each cached as it lands."""
    cache = ctx.cache("judge")
    task = ctx.hooks.start("judge", len(pairs))

    def one(pair: Pair) -> RubricResult | None:
        rule = judge_rule(checks) if pair.kind == "format" else ""
        key = judge_key(ctx, pair, rule)
        value = cache.get(key)
        tally.count(reused=value is not None)
        if value is None:
            try:
                value = ctx.models.judge().answer(pair.prompt, pair.answer, format_rule=rule).model_dump()
            except ModelOutputError as exc:
                value = {"error": str(exc).splitlines()[0]}
            cache.put(key, value)
        ctx.hooks.advance(task)
        if "error" in value:
            tally.fail(Failure(id=pair.id, what=f"judge verdict on {pair.id}", error=value["error"]))
            return None
        return RubricResult.model_validate(value)

    verdicts = dict(zip([p.id for p in pairs], ctx.each(one, pairs), strict=True))
    ctx.hooks.done(task)
    return verdicts


def judged_out(
    why: filtering.Reasons,
    pair: Pair,
    verdict: RubricResult | None,
    min_score: int | None,
    format_question: bool,
) -> None:
    """Why the judge's verdict drops a pair; a pair the judge could not score goes (it is unvetted)."""
    if verdict is None:
        why.add(pair.id, "judge failed", "the judge gave no usable verdict")
        return
    if min_score is not None and verdict.score < min_score:
        why.add(pair.id, "judge score", f"judge score {verdict.score} < {min_score}: {verdict.analysis}")
    if format_question and pair.kind == "format" and not verdict.format_ok:
        why.add(pair.id, "judge format", f"judge: not in the format: {verdict.analysis}")


# 5. mix, 6. compile ----------------------------------------------------------------------------------


def mix_stage(ctx: SynthContext, pairs: list[Pair]) -> tuple[list[Pair], MixReport, StageStats]:
    m = ctx.spec.mix
    mixed, report = mix(pairs, m.format_share, ctx.spec.seed, m.max_pairs)
    stats = StageStats(stage="mix", produced=len(mixed))
    if report.short_of_plain:
        stats.notes.append(
            f"only {report.plain_available} plain pairs: format share {report.share} (target {report.target_share})"
        )
    return mixed, report, stats


def compile_stage(
    ctx: SynthContext, pairs: list[Pair], count: corpus.CountMessages
) -> tuple[dict, StageStats]:
    c = ctx.spec.compile
    recs = corpus.records(pairs, ctx.spec.format.train_system_prompt, count)
    train, val = corpus.split(recs, c.val_fraction, ctx.spec.seed)
    train_path, val_path = ctx.layout.corpus_files
    write_jsonl(train_path, [r.model_dump() for r in train])
    write_jsonl(val_path, [r.model_dump() for r in val])
    report = corpus.report(train, val, c.sequence_len)
    return report, StageStats(stage="compile", produced=len(recs))
