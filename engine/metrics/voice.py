"""Voice: point of view, style markers and, against a reference author, a 0–1 style-transfer score."""

from __future__ import annotations

from pydantic import BaseModel

from novelcraft.metrics.pov import Person, PovReport, pov_report
from novelcraft.metrics.style import (
    StyleMarkers,
    StyleProfile,
    StyleSimilarity,
    style_profile,
    style_similarity,
)

# Weights of the transfer score's parts (they sum to 1; without a pov the rest are rescaled).
TRANSFER_WEIGHTS = {
    "pov": 0.2,
    "vocabulary": 0.25,
    "sentence_lengths": 0.2,
    "punctuation": 0.15,
    "markers": 0.2,
}
# Human novels never reach consistency 1 in the first person: narrators describe other people in
# sentences without "I". Measured on the corpus (30k-word excerpts): first person 0.54–0.78 (Jane Eyre,
# David Copperfield, Great Expectations, Sherlock Holmes), third person 0.94–1.00. Consistency at these
# values counts as full marks, so a first-person draft is not scored below the books it imitates.
HUMAN_POV_CONSISTENCY = {"first": 0.7, "second": 0.7, "third": 0.95}


class VoiceMetrics(BaseModel):
    pov: PovReport
    markers: StyleMarkers
    reference_author: str | None = None
    similarity: StyleSimilarity | None = None
    transfer_score: float | None = None


def transfer_score(similarity: StyleSimilarity, pov_consistency: float | None, pov: Person | None) -> float:
    """Weighted mean of the similarities and the pov part min(1, consistency / human consistency)."""
    parts = {name: getattr(similarity, name) for name in TRANSFER_WEIGHTS if name != "pov"}
    if pov is not None and pov_consistency is not None:
        parts["pov"] = min(1.0, pov_consistency / HUMAN_POV_CONSISTENCY[pov])
    weight = sum(TRANSFER_WEIGHTS[name] for name in parts)
    return sum(TRANSFER_WEIGHTS[name] * value for name, value in parts.items()) / weight


def voice_metrics(
    text: str,
    pov: Person | None = None,
    reference_style: StyleProfile | None = None,
    reference_author: str | None = None,
) -> VoiceMetrics:
    return compare_voice(style_profile(text), pov_report(text, pov), reference_style, reference_author)


def compare_voice(
    profile: StyleProfile,
    report: PovReport,
    reference_style: StyleProfile | None = None,
    reference_author: str | None = None,
) -> VoiceMetrics:
    """Voice from a text's profile and pov report, which are the slow part: compute them once and
    compare with as many reference authors as needed."""
    if reference_style is None:
        return VoiceMetrics(pov=report, markers=profile.markers)
    similarity = style_similarity(profile, reference_style)
    return VoiceMetrics(
        pov=report,
        markers=profile.markers,
        reference_author=reference_author,
        similarity=similarity,
        transfer_score=transfer_score(similarity, report.consistency, report.pov),
    )
