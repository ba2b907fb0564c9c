"""Human baselines: the metric set on every corpus book, at the length of a drafted novel.

    .venv/bin/python bench/baselines.py [--corpus DIR] [--excerpt 30000] [--scene 800] [--out FILE]

Book level: a 30,000-word excerpt from the middle of each book (the whole book when shorter). Scene
level: that excerpt cut into ~800-word chunks of whole paragraphs, the within-scene figures averaged
(and maxed) over the chunks. Voice: each excerpt against its own author's other books (style profile
built without the book) and against every other author. Prints min / median / max per metric and
writes them to engine/metrics/data/baselines.json, which `novelcraft eval` shows beside each metric.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from attribution import DEFAULT_CORPUS, corpus_books  # noqa: E402  (the bench folder is not a package)

from novelcraft.metrics.chunking import chunk_by_words, excerpt  # noqa: E402
from novelcraft.metrics.pov import pov_report  # noqa: E402
from novelcraft.metrics.style import style_profile  # noqa: E402
from novelcraft.metrics.suite import flatten, scene_metrics, text_metrics  # noqa: E402
from novelcraft.metrics.voice import compare_voice  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "engine" / "metrics" / "data" / "baselines.json"
# Written into the same file by bench/cohesion_baselines.py and bench/adherence_baseline.py: kept.
OTHER_BENCHES = ("cast.", "adherence.")
# Narrators, read from the books (Bleak House alternates Esther's first person with a third-person
# narrator, so it has no single pov to be consistent with).
POV = {
    "jane_eyre": "first",
    "david_copperfield": "first",
    "great_expectations": "first",
    "adventures_of_sherlock_holmes": "first",
    "a_modest_proposal": "first",
    "bleak_house": None,
}
BOOK_METRICS = (
    "repetition.rep_2",
    "repetition.rep_3",
    "repetition.rep_4",
    "repetition.distinct_1",
    "repetition.distinct_2",
    "repetition.duplicate_paragraphs.share",
    "repetition.openings_2.share",
    "repetition.openings_3.share",
    "leaks.per_1k_words",
    "diversity.mattr",
    "diversity.mtld",
    "slop.index",
    "narration.meta_share",
    "voice.markers.italics_per_1k",
    "voice.markers.dialogue_share",
    "voice.markers.second_person_share",
    "voice.markers.exclamation_rate",
    "voice.markers.question_rate",
    "voice.markers.mean_sentence_words",
    "voice.markers.mean_paragraph_words",
)
SCENE_METRICS = (
    "summary.words.mean",
    "summary.rep_2.mean",
    "summary.rep_3.mean",
    "summary.rep_4.mean",
    "summary.rep_4.max",
    "summary.duplicate_paragraphs.max",
    "summary.leaks.max",
    "summary.slop_index.mean",
    "summary.slop_index.max",
)
SIMILARITY_PARTS = ("vocabulary", "sentence_lengths", "punctuation", "markers")


def book_rows(books: list[tuple[str, str, str]], excerpt_words: int, scene_words: int) -> list[dict]:
    author_profiles = {
        author: style_profile("\n\n".join(t for a, _, t in books if a == author))
        for author in {a for a, _, _ in books}
    }
    rows = []
    for author, title, text in books:
        pov = POV.get(title, "third")
        sample = excerpt(text, excerpt_words)
        row: dict[str, float | str | None] = {"author": author, "title": title}
        flat = flatten(text_metrics(sample, pov=pov))
        row.update({key: flat[key] for key in BOOK_METRICS})
        if pov:
            row[f"voice.pov.consistency.{pov}"] = flat["voice.pov.consistency"]
        chunks = chunk_by_words(sample, scene_words)
        scenes = flatten(scene_metrics([(chunk, None) for chunk in chunks]))
        row.update({key: scenes[key] for key in SCENE_METRICS})
        profile, report = style_profile(sample), pov_report(sample, pov)
        others = [t for a, t2, t in books if a == author and t2 != title]
        if others:
            own = compare_voice(profile, report, style_profile("\n\n".join(others)), author)
            row["voice.transfer_score.own_author"] = own.transfer_score
            for part in SIMILARITY_PARTS:
                row[f"voice.similarity.{part}.own_author"] = getattr(own.similarity, part)
        other_scores = {
            other: compare_voice(profile, report, other_profile, other).transfer_score
            for other, other_profile in author_profiles.items()
            if other != author
        }
        best_other = max(other_scores, key=other_scores.get)
        row["voice.transfer_score.other_authors"] = statistics.mean(other_scores.values())
        row["voice.transfer_score.best_other_author"] = other_scores[best_other]
        rows.append(row)
        own_score = row.get("voice.transfer_score.own_author")
        print(
            f"  {title}: {len(chunks)} scenes; transfer own author "
            f"{'-' if own_score is None else f'{own_score:.3f}'}, best other {other_scores[best_other]:.3f} ({best_other})",
            file=sys.stderr,
        )
    return rows


def ranges(rows: list[dict], keys: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for key in keys:
        values = [row[key] for row in rows if row.get(key) is not None]
        if values:
            out[key] = {
                "min": round(min(values), 5),
                "median": round(statistics.median(values), 5),
                "max": round(max(values), 5),
                "n": len(values),
            }
    return out


def merge_into(path: Path, found: dict[str, dict[str, float]], meta_key: str, meta: dict) -> None:
    """Another bench's book-level ranges merged into baselines.json, with its meta under `meta_key`
    (this script keeps both when it writes the file again)."""
    baselines = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    baselines.setdefault("book", {}).update(found)
    baselines.setdefault("meta", {})[meta_key] = meta
    path.write_text(json.dumps(baselines, indent=1) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--excerpt", type=int, default=30_000)
    parser.add_argument("--scene", type=int, default=800)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    started = time.perf_counter()
    books = corpus_books(args.corpus)
    rows = book_rows(books, args.excerpt, args.scene)
    book_keys = [
        k
        for k in dict.fromkeys(k for row in rows for k in row)
        if k.startswith(("length", "rep", "leaks", "div", "slop", "voice", "narration"))
    ]
    scene_keys = [k for k in dict.fromkeys(k for row in rows for k in row) if k.startswith("summary.")]
    baselines = {
        "meta": {
            "corpus": [f"{a}/{t}" for a, t, _ in books],
            "book_excerpt_words": args.excerpt,
            "scene_words": args.scene,
            "made_by": "bench/baselines.py",
        },
        "book": ranges(rows, book_keys),
        "scene": ranges(rows, scene_keys),
    }
    for level in ("book", "scene"):
        print(f"\n{level} level ({len(rows)} books)\n")
        print("| metric | min | median | max | n |")
        print("|---|---:|---:|---:|---:|")
        for key, r in baselines[level].items():
            print(f"| {key} | {r['min']:.4g} | {r['median']:.4g} | {r['max']:.4g} | {r['n']} |")
    if args.out.exists():
        before = json.loads(args.out.read_text(encoding="utf-8"))
        kept = {k: v for k, v in before.get("book", {}).items() if k.startswith(OTHER_BENCHES)}
        baselines["book"].update(kept)
        for key in ("cohesion", "adherence"):
            if key in before.get("meta", {}):
                baselines["meta"][key] = before["meta"][key]
    args.out.write_text(json.dumps(baselines, indent=1) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out} in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
