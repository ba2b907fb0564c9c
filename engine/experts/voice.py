"""Do the experts carry their authors? Delta distances of each system's output to each author.

The check behind `bench/expert_voice.py`: every system (each expert, and the base) answers the same
scene prompts; each system's outputs, joined, are placed among the reference authors with Burrows' Delta
(mean |Δz| over the most frequent words; the one to trust on this corpus, see README: Attribution) and
cosine Delta. An expert passes when its output is nearer its own author than the other experts' outputs
are; the base passes when it is nearer no author than that author's own expert is.
"""

from __future__ import annotations

from pydantic import BaseModel

from novelcraft.core.text import words
from novelcraft.metrics.attribution import DeltaModel, burrows_delta, cosine_delta, z_scores


class SystemVoice(BaseModel):
    system: str
    own_author: str | None
    words: int
    burrows: dict[str, float]
    cosine: dict[str, float]
    # How many single outputs Burrows' Delta puts nearest each author (short texts: a noisy view).
    nearest_per_output: dict[str, int]


class VoiceCheck(BaseModel):
    claim: str
    metric: str
    passed: bool
    margin: float


class VoiceReport(BaseModel):
    features: int
    systems: list[SystemVoice]
    checks: list[VoiceCheck]

    @property
    def passed(self) -> bool:
        """Burrows' Delta decides; cosine is reported beside it."""
        return all(c.passed for c in self.checks if c.metric == "burrows")


def _distances(text: str, model: DeltaModel) -> tuple[dict[str, float], dict[str, float]]:
    z = z_scores(text, model)
    burrows = {a: round(burrows_delta(z, c), 4) for a, c in model.centroids.items()}
    cosine = {a: round(cosine_delta(z, c), 4) for a, c in model.centroids.items()}
    return burrows, cosine


def system_voice(system: str, outputs: list[str], model: DeltaModel, own_author: str | None) -> SystemVoice:
    joined = "\n\n".join(outputs)
    burrows, cosine = _distances(joined, model)
    nearest = dict.fromkeys(model.centroids, 0)
    for text in outputs:
        if words(text):
            single, _ = _distances(text, model)
            nearest[min(single, key=single.get)] += 1
    return SystemVoice(
        system=system,
        own_author=own_author,
        words=len(words(joined)),
        burrows=burrows,
        cosine=cosine,
        nearest_per_output=nearest,
    )


def voice_checks(voices: list[SystemVoice], base: str | None) -> list[VoiceCheck]:
    experts = [v for v in voices if v.own_author]
    base_voice = next((v for v in voices if v.system == base), None)
    checks = []
    for metric in ("burrows", "cosine"):
        for own in experts:
            author = own.own_author
            mine = getattr(own, metric)[author]
            for other in experts:
                if other is own:
                    continue
                theirs = getattr(other, metric)[author]
                checks.append(
                    VoiceCheck(
                        claim=f"{own.system} is nearer {author} than {other.system} is",
                        metric=metric,
                        passed=mine < theirs,
                        margin=round(theirs - mine, 4),
                    )
                )
            if base_voice is not None:
                baseline = getattr(base_voice, metric)[author]
                checks.append(
                    VoiceCheck(
                        claim=f"{base_voice.system} is not nearer {author} than {own.system} is",
                        metric=metric,
                        passed=baseline > mine,
                        margin=round(baseline - mine, 4),
                    )
                )
    return checks


def compare_voices(
    outputs: dict[str, list[str]], own_authors: dict[str, str], model: DeltaModel, base: str | None = "base"
) -> VoiceReport:
    """`outputs`: system -> its answers to the shared prompts; `own_authors`: expert -> its author (a
    centroid of `model`); the system named `base` has no author of its own."""
    missing = sorted(set(own_authors.values()) - set(model.centroids))
    if missing:
        raise ValueError(f"no reference author {missing[0]} (have: {', '.join(model.centroids)})")
    voices = [system_voice(s, texts, model, own_authors.get(s)) for s, texts in outputs.items()]
    return VoiceReport(features=len(model.features), systems=voices, checks=voice_checks(voices, base))


def report_lines(report: VoiceReport) -> list[str]:
    """The report as aligned text lines (what the bench prints)."""
    authors = list(report.systems[0].burrows) if report.systems else []
    head = f"{'system':<10} {'words':>6}  " + "  ".join(f"B:{a:<14} C:{a:<14}" for a in authors)
    lines = [f"Delta over the {report.features} most frequent words (B = Burrows, C = cosine)", head]
    for v in report.systems:
        cells = "  ".join(f"{v.burrows[a]:<16.4f} {v.cosine[a]:<16.4f}" for a in authors)
        lines.append(f"{v.system:<10} {v.words:>6}  {cells}")
        per = ", ".join(f"{a} {n}" for a, n in v.nearest_per_output.items())
        lines.append(f"{'':<10} {'':>6}  single outputs nearest (Burrows): {per}")
    lines.append("")
    for c in report.checks:
        lines.append(f"[{'PASS' if c.passed else 'FAIL'}] {c.metric:<7} {c.claim} (margin {c.margin:+.4f})")
    lines.append(f"voice test: {'PASS' if report.passed else 'FAIL'} (Burrows' Delta decides)")
    return lines
