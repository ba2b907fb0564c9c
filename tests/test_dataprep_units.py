"""dataprep stages as pure functions, and the pipeline on the fake backend."""

from __future__ import annotations

import _thread
import json
import random
import threading
import time
from pathlib import Path

import pytest
import sqlite_utils

from novelcraft import dataprep
from novelcraft.backends.fake import FakeBackend, prose
from novelcraft.core.schema import Seed
from novelcraft.core.tokens import count_words, fallback_count
from novelcraft.dataprep import compile as compile_stage
from novelcraft.dataprep.clean import clean_markdown
from novelcraft.dataprep.gutenberg import strip_boilerplate, to_markdown
from novelcraft.dataprep.instructions import clean_instruction
from novelcraft.dataprep.models import Book, Section
from novelcraft.dataprep.pipeline import Options, Pipeline
from novelcraft.dataprep.scenes import (
    ATOMIC_MAX,
    MIN_BLOCK_TOKENS,
    blocks,
    group,
    heuristic_starts,
    merge,
    scene_text,
    tidy_starts,
)
from novelcraft.dataprep.split import for_training, split_sections
from novelcraft.dataprep.summaries import excerpt
from novelcraft.dataprep.world import point_of_view
from novelcraft.prompts import system_message
from novelcraft.runtime.store import MIGRATIONS
from novelcraft.settings.config import resolve_settings


def _prose(n_words: int, seed: int = 0) -> str:
    return prose(random.Random(seed), n_words)


GUTENBERG = """The Project Gutenberg EBook of Tiny Tale, by Ann Author

Title: Tiny Tale

Author: Ann Author

*** START OF THIS PROJECT GUTENBERG EBOOK TINY TALE ***

Produced by A Volunteer

PREFACE

A few words by the author about this little tale, written long ago in the country.

Contents

 CHAPTER I.     The Start
 CHAPTER II.    The End

CHAPTER I.
The Start

{one}

* * * * *

{two}

CHAPTER II.
The End

{three}

THE END

End of the Project Gutenberg EBook of Tiny Tale

*** END OF THIS PROJECT GUTENBERG EBOOK TINY TALE ***

This file should be named tiny.txt. Project Gutenberg-tm licence follows.
"""


def gutenberg_text() -> str:
    return GUTENBERG.format(one=_prose(300, 1), two=_prose(300, 2), three=_prose(500, 3))


def test_gutenberg_boilerplate_and_chapters():
    text = gutenberg_text()
    assert "Produced by" in strip_boilerplate(text)  # removed later, paragraph by paragraph
    md, n = to_markdown(text, "Tiny Tale")
    assert n == 2
    assert "# Chapter 1: The Start" in md and "# Chapter 2: The End" in md
    assert "Gutenberg" not in md and "Produced by" not in md and "THE END" not in md
    assert md.count("* * *") == 1
    # the contents list became front matter, not two empty chapters
    assert md.index("# Preface") < md.index("# Contents") < md.index("# Chapter 1")


def test_gutenberg_story_collection_headings():
    body = "\n\n".join(
        f"{num}. THE ADVENTURE OF THE {name}\n\n\nI.\n\n{_prose(200, i)}\n\nII.\n\n{_prose(200, i + 9)}"
        for i, (num, name) in enumerate([("I", "RED LAMP"), ("II", "BLUE DOOR"), ("III", "GREEN KEY")])
    )
    md, n = to_markdown("*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\n" + body, "X")
    assert n == 3
    assert "# Chapter 2: THE ADVENTURE OF THE BLUE DOOR" in md
    assert md.count("* * *") == 6  # the I./II. part numerals are scene breaks


def test_clean_markdown_strips_epub_noise():
    md = (
        '<span id="titlepage.xhtml"></span>\n\n![](images/cover.jpg)\n\n'
        '<span id="chapter_001.xhtml"></span>\n\n<div class="section">\n\n'
        '# <span id="c1" class="audio">Chapter 1. Loomings.</span>\n\n</div>\n\n'
        "Call me [Ishmael](#note1).[^1] Some years ago \\[never mind\\].\n\n42\n\n"
        "------------------------------------------------------------------------\n\n"
        "More text here.{#p2 .para}\n\n[^1]: A footnote.\n"
    )
    out = clean_markdown(md)
    assert "# Chapter 1: Loomings" in out
    for noise in ("<span", "<div", "![](", "(#note1)", "[^1]", "A footnote", "{#p2", "\n42\n"):
        assert noise not in out
    assert "Call me Ishmael. Some years ago [never mind]." in out
    assert "* * *" in out


def test_split_sections_flags_reference_matter():
    md = (
        "# ETYMOLOGY\n\nWhale, from the old words for it, one two three.\n\n"
        "# EXTRACTS (Supplied by a Sub-Sub-Librarian)\n\nOne extract of five words here.\n\n"
        "# Chapter 1: Loomings\n\nCall me Ishmael, some years ago, never mind.\n\n"
        "# Epilogue\n\nThe drama is done, why then here does any one step forth.\n\n"
        "<!--part-->\n\nThe Project Gutenberg EBook licence text, many words here.\n"
    )
    sections = split_sections(md)
    kinds = {s.title: s.kind for s in sections}
    assert kinds["ETYMOLOGY"] == "reference"
    assert kinds["EXTRACTS (Supplied by a Sub-Sub-Librarian)"] == "reference"
    assert kinds["Chapter 1: Loomings"] == "chapter" and kinds["Epilogue"] == "chapter"
    assert kinds["Untitled"] == "reference"
    trained = [s.title for s in sections if for_training(s)]
    assert "Untitled" not in trained and "ETYMOLOGY" in trained


def test_blocks_respect_minimum_and_breaks():
    text = "\n\n".join(["Short line here."] * 30 + ["* * *"] + [_prose(60, 4)] * 4)
    bl = blocks(text, fallback_count)
    # Only a block cut short by a scene break (or the chapter end) may be under the minimum.
    assert all(b.tokens >= MIN_BLOCK_TOKENS or nxt.hard_break for b, nxt in zip(bl, bl[1:], strict=False))
    assert sum(b.hard_break for b in bl) == 1
    assert heuristic_starts(bl).count(next(i for i, b in enumerate(bl) if b.hard_break)) == 1


def test_long_paragraph_is_cut_at_sentences():
    para = " ".join(f"Sentence number {i} walks along the quiet road." for i in range(400))
    bl = blocks(para, fallback_count)
    assert len(bl) > 1 and all(b.tokens <= ATOMIC_MAX for b in bl)
    assert all(b.text.endswith(".") for b in bl)


def test_merge_caps_scene_tokens():
    text = "\n\n".join(_prose(120, i) for i in range(120))
    bl = blocks(text, fallback_count)
    atomic = group(bl, heuristic_starts(bl))
    assert all(sum(b.tokens for b in a) <= ATOMIC_MAX + max(b.tokens for b in bl) for a in atomic)
    scenes = merge(atomic, 3000)
    sizes = [sum(b.tokens for b in s) for s in scenes]
    assert max(sizes) <= 3000 and len(scenes) >= sum(sizes) // 3000
    assert "\n\n".join(scene_text(s) for s in scenes) == "\n\n".join(b.text for b in bl)


def test_tidy_starts_joins_tiny_scenes():
    bl = blocks("\n\n".join(_prose(100, i) for i in range(20)), fallback_count)
    kept = tidy_starts(bl, [1, 2, 3, 10])
    assert 1 not in kept and 2 not in kept  # a one-block scene is too small
    for a, b in zip([0, *kept], [*kept, len(bl)], strict=False):
        assert sum(x.tokens for x in bl[a:b]) >= 400 or b == len(bl)


def test_point_of_view_and_excerpt():
    first = [Section(title="c", kind="chapter", text="I went to sea. My ship was old and I loved it. " * 30)]
    third = [
        Section(
            title="c", kind="chapter", text="She went to sea. Her ship was old. “I love it,” she said. " * 30
        )
    ]
    assert point_of_view(first) == "first" and point_of_view(third) == "third"
    long = _prose(1000, 5)
    short = excerpt(long, 100)
    assert count_words(short) <= 105 and short.startswith(long.split()[0])


def test_clean_instruction():
    assert (
        clean_instruction('Instruction: "Write the storm scene."\n\nMore notes.') == "Write the storm scene."
    )
    assert count_words(clean_instruction("word " * 200)) == 60


@pytest.fixture
def books(tmp_path: Path) -> list[Path]:
    txt = tmp_path / "ann_author_-_tiny_tale.txt"
    txt.write_text(gutenberg_text(), encoding="utf-8")
    md = tmp_path / "bea_writer_-_other_tale.md"
    chapters = "\n\n".join(f"# Chapter {i}: Part {i}\n\n{_prose(700, 10 + i)}" for i in range(1, 4))
    md.write_text(
        "# Preface\n\nA few words about this book before the story.\n\n" + chapters, encoding="utf-8"
    )
    return [txt, md]


def run_fake(out: Path, paths: list[Path], **options) -> tuple[Pipeline, object]:
    settings = resolve_settings(env={}, flags={"backend": "fake"})
    pipeline = Pipeline(out, settings, Options(**options))
    result = pipeline.run(paths)
    return pipeline, result


def test_pipeline_end_to_end_on_fake(tmp_path: Path, books: list[Path]):
    out = tmp_path / "out"
    pipeline, result = run_fake(out, books, splitter="llm", workers=3)
    assert result.errors == [] and len(result.books) == 2
    train = [json.loads(x) for x in (out / "train.jsonl").read_text().splitlines()]
    val = [json.loads(x) for x in (out / "val.jsonl").read_text().splitlines()]
    assert train and val and {r["book_id"] for r in train}.isdisjoint({r["book_id"] for r in val})
    book = Book.model_validate_json((out / "books" / "ann-author-tiny-tale" / "book.json").read_text())
    assert book.meta.total_chapters == 2 and book.meta.world_context
    record = (train + val)[0]
    assert set(record) == {"messages", "book_id", "scene_id", "author", "tokens"}
    system, user, assistant = record["messages"]
    assert [system["role"], user["role"], assistant["role"]] == ["system", "user", "assistant"]
    # the drafting engine's own system message and scene prompt shape
    rec_book = Book.model_validate_json((out / "books" / record["book_id"] / "book.json").read_text())
    seed = Seed(title=rec_book.meta.title, premise="x", pov=rec_book.meta.pov)
    assert system["content"] == system_message(seed, rec_book.meta.world_context).content
    assert "RUNNING SUMMARY" in user["content"] and "SCENE GOAL:" in user["content"]
    assert record["tokens"] == pipeline.backend.count_prompt_tokens(
        [compile_stage.Message(**m) for m in record["messages"]]
    )
    # every model call is recorded, and every template the stages use was called
    templates = {row["template"] for row in pipeline.call_log.rows()}
    assert {
        "dataprep_world.j2",
        "dataprep_boundaries.j2",
        "summary.j2",
        "dataprep_instruction.j2",
    } <= templates
    assert "dataprep_ref_instruction.j2" in templates  # the Preface is a reference scene
    assert result.calls == pipeline.call_log.count()
    report = json.loads((out / "report.json").read_text())
    assert report["records"] == len(train) + len(val) and report["split"] == "book"
    assert set(report["by_book"]) == {"ann-author-tiny-tale", "bea-writer-other-tale"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["packages"]["pydantic"] and len(manifest["inputs"]) == 2
    assert (out / "ref" / "bea-writer-other-tale" / "01-preface.md").exists()
    pipeline.close()


def test_pipeline_resumes_without_new_calls(tmp_path: Path, books: list[Path]):
    out = tmp_path / "out"
    first, result = run_fake(out, books)
    first.close()
    before = (out / "train.jsonl").read_text()
    again, result2 = run_fake(out, books)
    assert result2.calls == 0 and (out / "train.jsonl").read_text() == before
    again.close()
    # A changed book redoes only its own work.
    books[1].write_text(books[1].read_text() + "\n\n# Chapter 4: More\n\n" + _prose(500, 99))
    third, result3 = run_fake(out, books)
    assert 0 < result3.calls < result.calls
    third.close()


def test_changed_convert_or_clean_rules_redo_their_stage(tmp_path: Path, books: list[Path], monkeypatch):
    import novelcraft.dataprep.text_stages as text_stages

    out = tmp_path / "out"
    run_fake(out, books)[0].close()
    converted, cleaned = [], []
    real_convert, real_clean = text_stages.convert, text_stages.clean_markdown
    monkeypatch.setattr(text_stages, "convert", lambda p: converted.append(p) or real_convert(p))
    monkeypatch.setattr(text_stages, "clean_markdown", lambda m: cleaned.append(1) or real_clean(m))
    run_fake(out, books)[0].close()
    assert converted == [] and cleaned == []
    monkeypatch.setattr(dataprep.clean, "VERSION", dataprep.clean.VERSION + 1)
    run_fake(out, books)[0].close()
    assert converted == [] and len(cleaned) == 2
    summaries_before = _summary_calls(out)
    monkeypatch.setattr(dataprep.convert, "VERSION", dataprep.convert.VERSION + 1)
    run_fake(out, books)[0].close()
    assert sorted(converted) == sorted(books)
    # Same Markdown out, same scenes: the records made before are kept, no scene is summarised again.
    assert _summary_calls(out) == summaries_before


def _summary_calls(out: Path) -> int:
    return sqlite_utils.Database(out / "calls.db")["calls"].count_where("template = 'summary.j2'")


def test_summaries_use_the_engine_update_summary(tmp_path: Path, books: list[Path], monkeypatch):
    import novelcraft.dataprep.summaries as summaries

    seen = []
    real = summaries.update_summary

    def spy(*args, **kwargs):
        seen.append(kwargs["scene_index"])
        return real(*args, **kwargs)

    monkeypatch.setattr(summaries, "update_summary", spy)
    pipeline, _ = run_fake(tmp_path / "out", books[:1])
    book = pipeline.load_book("ann-author-tiny-tale")
    story = [i for i, s in enumerate(book.scenes) if s.kind == "chapter"]
    assert seen == story[1:]  # every story scene after the first, in order
    ref = [s for s in book.scenes if s.kind == "reference"]
    assert ref and all("Outside the story" in s.running_summary.scene_end_state for s in ref)
    pipeline.close()


def test_single_book_splits_by_chapter(tmp_path: Path, books: list[Path]):
    pipeline, result = run_fake(tmp_path / "out", books[1:], val_fraction=0.34)
    report = result.report
    assert report["split"] == "chapter" and report["val"] > 0 and report["train"] > 0
    pipeline.close()


def test_over_length_records_are_listed(tmp_path: Path, books: list[Path]):
    pipeline, result = run_fake(tmp_path / "out", books[:1], sequence_len=256)
    report = result.report
    assert len(report["over_length"]) == report["records"] > 0
    assert all(row["tokens"] > 256 for row in report["over_length"])
    pipeline.close()


def test_cli_run_fake(tmp_path: Path, books: list[Path]):
    from typer.testing import CliRunner

    from novelcraft.cli.main import app

    bad = tmp_path / "broken.epub"
    bad.write_bytes(b"")
    result = CliRunner().invoke(
        app,
        ["--backend", "fake", "dataprep", "run", str(bad), *map(str, books), "--out", str(tmp_path / "o")],
    )
    assert result.exit_code == 1
    assert f"{bad}: empty file" in result.output
    assert (tmp_path / "o" / "train.jsonl").exists()
    assert "2 book(s) done, 1 failed" in result.output


def test_fake_faults_are_retried(tmp_path: Path, books: list[Path]):
    settings = resolve_settings(
        env={}, flags={"backend": "fake", "backoff_s": 0.0}, backend_flags={"fault_rate": 0.3}
    )
    pipeline = Pipeline(tmp_path / "out", settings, Options(splitter="llm"))
    result = pipeline.run(books)
    outcomes = {row["outcome"] for row in pipeline.call_log.rows()}
    assert result.errors == [] and "ok" in outcomes and outcomes - {"ok"}
    pipeline.close()


def test_jsonl_loads_with_datasets(tmp_path: Path, books: list[Path]):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "out"
    pipeline, result = run_fake(out, books)
    files = {"train": str(out / "train.jsonl"), "validation": str(out / "val.jsonl")}
    ds = datasets.load_dataset("json", data_files=files, cache_dir=str(tmp_path / "cache"))
    assert ds["train"].num_rows + ds["validation"].num_rows == result.report["records"]
    assert ds["train"].column_names == ["messages", "book_id", "scene_id", "author", "tokens"]
    pipeline.close()


class Tracking(FakeBackend):
    """Counts the calls in flight; on_call sees how many calls came before."""

    def __init__(self, on_call=None) -> None:
        super().__init__()
        self.in_flight = self.peak = 0
        self.guard = threading.Lock()
        self.on_call = on_call or (lambda n: None)

    def complete(self, *args, **kwargs):
        with self.guard:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(0.01)
        try:
            self.on_call(self.calls)
            return super().complete(*args, **kwargs)
        finally:
            with self.guard:
                self.in_flight -= 1


def run_tracked(out: Path, paths: list[Path], backend: Tracking, **options):
    settings = resolve_settings(env={}, flags={"backend": "fake"})
    pipeline = Pipeline(out, settings, Options(**options), backend_factory=lambda s: backend)
    return pipeline, pipeline.run(paths)


def test_model_calls_run_concurrently_within_the_worker_cap(tmp_path: Path, books: list[Path]):
    peaks = {}
    for workers in (1, 4):
        backend = Tracking()
        pipeline, result = run_tracked(
            tmp_path / f"w{workers}", books, backend, splitter="llm", workers=workers
        )
        assert result.errors == [] and backend.peak <= workers
        peaks[workers] = backend.peak
        pipeline.close()
    assert peaks[1] == 1 < peaks[4]


def test_books_run_side_by_side(tmp_path: Path, books: list[Path]):
    """Each book's first call waits until the other book has called too: a run that took the books one
    after the other would break the barrier."""
    barrier = threading.Barrier(2, timeout=10)
    seen: set[str] = set()

    def first_call_of_each_book(messages) -> None:
        text = " ".join(m.content for m in messages)
        title = next(t for t in ("Tiny Tale", "Other Tale") if t in text)
        if title not in seen:
            seen.add(title)
            barrier.wait()

    class Meeting(FakeBackend):
        def complete(self, messages, sampling, **kw):
            first_call_of_each_book(messages)
            return super().complete(messages, sampling, **kw)

    settings = resolve_settings(env={}, flags={"backend": "fake"})
    pipeline = Pipeline(tmp_path / "out", settings, Options(workers=2), backend_factory=lambda s: Meeting())
    result = pipeline.run(books)
    assert result.errors == [] and seen == {"Tiny Tale", "Other Tale"} and not barrier.broken
    pipeline.close()


def test_call_budget_spans_the_whole_run(tmp_path: Path, books: list[Path]):
    out = tmp_path / "out"
    settings = resolve_settings(env={}, flags={"backend": "fake", "max_calls": 7})
    pipeline = Pipeline(out, settings, Options(splitter="llm"))
    result = pipeline.run(books)
    # Every book and stage makes its own client; the budget is still one for the run.
    assert result.calls == 7 and len(result.errors) == 2
    assert all("call budget of 7 model calls is spent" in e for e in result.errors)
    pipeline.close()
    again, result = run_fake(out, books, splitter="llm")
    assert result.errors == [] and result.report["records"] > 0
    again.close()


def test_ctrl_c_stops_calls_and_the_rerun_finishes(tmp_path: Path, books: list[Path], python_sigint):
    out = tmp_path / "out"
    settings = resolve_settings(env={}, flags={"backend": "fake"})

    interrupted = threading.Event()

    def on_call(n: int) -> None:
        # Two workers read the call count at once, so it can step over 5: interrupt once, at 5 or after.
        if n >= 5 and not interrupted.is_set():
            interrupted.set()
            _thread.interrupt_main()  # what Ctrl-C does
        deadline = time.monotonic() + 10
        while n >= 5 and not pipeline.gate.stopped and time.monotonic() < deadline:
            time.sleep(0.01)  # calls in flight outlast the Ctrl-C, as a real model's do

    backend = Tracking(on_call)
    pipeline = Pipeline(out, settings, Options(splitter="llm", workers=2), backend_factory=lambda s: backend)
    # The calls admitted when the stop came, counted under the gate's own lock: none may be admitted after.
    admitted_at_stop: list[int] = []
    real_stop = pipeline.gate.stop

    def counted_stop() -> None:
        with pipeline.gate._lock:
            admitted_at_stop.append(pipeline.gate.spent)
            real_stop()

    pipeline.gate.stop = counted_stop
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(books)
    pipeline.close()
    assert pipeline.gate.stopped and pipeline.gate.spent == admitted_at_stop[0]
    for path in (out / "books").glob("*/book.json"):
        Book.model_validate_json(path.read_text())  # whole, never half-written
    again, result = run_fake(out, books, splitter="llm")
    fresh, full = run_fake(tmp_path / "fresh", books, splitter="llm")
    assert result.errors == [] and 0 < result.calls < full.calls
    assert (out / "train.jsonl").read_text() == (tmp_path / "fresh" / "train.jsonl").read_text()
    again.close()
    fresh.close()


def test_unreadable_paths_name_the_file(tmp_path: Path):
    from novelcraft.dataprep.convert import convert
    from novelcraft.dataprep.models import BookError

    odd = tmp_path / "notes.pdf"
    odd.write_text("x")
    for path, words in ((tmp_path / "missing.epub", "no such file"), (odd, "unsupported file type")):
        with pytest.raises(BookError) as info:
            convert(path)
        assert str(info.value).startswith(f"{path}: ") and words in str(info.value)
        assert "\n" not in str(info.value)


def test_compress_calls_are_bounded(tmp_path: Path, books: list[Path]):
    from novelcraft.core.schema import FIELD_CAPS

    class Wordy(FakeBackend):
        """Answers every summary call far over the word caps, so update_summary wants to compress."""

        def complete(self, messages, sampling, *, json_schema=None, adapter=None):
            done = super().complete(messages, sampling, json_schema=json_schema, adapter=adapter)
            if json_schema is not None and "global_events" in json_schema.get("properties", {}):
                done.text = json.dumps({name: "word " * (cap * 2) for name, cap in FIELD_CAPS.items()})
            return done

    settings = resolve_settings(env={}, flags={"backend": "fake"})
    counts = {}
    for limit in (0, 2):
        options = Options(summary_compress_calls=limit)
        pipeline = Pipeline(tmp_path / f"c{limit}", settings, options, backend_factory=lambda s: Wordy())
        assert pipeline.run(books).errors == []
        templates = [row["template"] for row in pipeline.call_log.rows()]
        counts[limit] = templates.count("compress.j2")
        assert counts[limit] == limit * templates.count("summary.j2")
        pipeline.close()
    assert counts[0] == 0 < counts[2]


# typed resume keys ---------------------------------------------------------------------------------


def _book_json(out: Path, book_id: str = "ann-author-tiny-tale") -> Path:
    return out / "books" / book_id / "book.json"


def _calls_since(out: Path, seen: int) -> list[str]:
    """Templates of the calls logged after the first `seen` rows."""
    return [row["template"] for row in sqlite_utils.Database(out / "calls.db")["calls"].rows][seen:]


def test_book_json_holds_typed_stage_keys(tmp_path: Path, books: list[Path]):
    out = tmp_path / "out"
    run_fake(out, books)[0].close()
    meta = json.loads(_book_json(out).read_text())["meta"]
    assert "scenes_key" not in meta and "world_key" not in meta
    assert set(meta["keys"]) == {"sections", "world", "scenes"} and all(meta["keys"].values())
    sections = json.loads((out / "books" / "ann-author-tiny-tale" / "sections.json").read_text())
    assert meta["keys"]["sections"] == sections["key"]


def test_keys_chain_on_the_sections_key():
    from novelcraft.dataprep.keys import scenes_key, world_key

    rules = {"splitter": "llm", "world_context": "w", "max_scene_tokens": 3000, "max_scenes": None}
    assert scenes_key("a", **rules, model="m") == scenes_key("a", **rules, model="m")
    assert scenes_key("a", **rules, model="m") != scenes_key("b", **rules, model="m")
    assert scenes_key("a", **rules, model="m") != scenes_key("a", **{**rules, "max_scenes": 2}, model="m")
    assert world_key("a", "m", 200) != world_key("b", "m", 200) != world_key("b", "m", 100)


def test_changed_scene_rules_redo_only_the_boundaries(tmp_path: Path, books: list[Path], monkeypatch):

    out = tmp_path / "out"
    run_fake(out, books, splitter="llm")[0].close()
    keys_before = Book.model_validate_json(_book_json(out).read_text()).meta.keys
    seen = len(_calls_since(out, 0))
    monkeypatch.setattr(dataprep.scenes, "VERSION", dataprep.scenes.VERSION + 1)
    pipeline, result = run_fake(out, books, splitter="llm")
    pipeline.close()
    # The scenes come out the same, so their summaries and instructions are kept: only boundaries are asked.
    assert result.calls > 0 and set(_calls_since(out, seen)) == {"dataprep_boundaries.j2"}
    keys = Book.model_validate_json(_book_json(out).read_text()).meta.keys
    assert (keys.sections, keys.world) == (keys_before.sections, keys_before.world)
    assert keys.scenes != keys_before.scenes


def test_book_json_with_colon_packed_keys_resumes_without_calls(tmp_path: Path, books: list[Path]):
    """An output directory written before typed keys: "<sections>:<scene rules>" in meta.scenes_key."""
    from novelcraft.dataprep.hashing import content_key
    from novelcraft.dataprep.scenes import VERSION as scenes_version

    out = tmp_path / "out"
    first, _ = run_fake(out, books)
    model = first.backend.model
    first.close()
    corpus = (out / "train.jsonl").read_text()
    typed = {}
    for path in (out / "books").glob("*/book.json"):
        data = json.loads(path.read_text())
        keys = typed[path] = data["meta"].pop("keys")
        rules = content_key(scenes_version, "llm", data["meta"]["world_context"], 3000, None, model)
        data["meta"].update(scenes_key=f"{keys['sections']}:{rules}", world_key=keys["world"])
        path.write_text(json.dumps(data))
    again, result = run_fake(out, books)
    again.close()
    assert result.errors == [] and result.calls == 0 and (out / "train.jsonl").read_text() == corpus
    for path, keys in typed.items():
        assert json.loads(path.read_text())["meta"]["keys"] == keys


def test_colon_keys_with_no_scenes_yet_mean_scenes_not_done():
    from novelcraft.dataprep.models import BookMeta

    meta = BookMeta.model_validate(
        {"book_id": "b", "title": "T", "author": "A", "world_key": "", "scenes_key": "abc:"}
    )
    assert (meta.keys.sections, meta.keys.world, meta.keys.scenes) == ("abc", "", "")


# the call log ----------------------------------------------------------------------------------------


def test_every_call_is_logged_with_its_book(tmp_path: Path, books: list[Path]):
    from novelcraft.core.schema import CallRecord

    pipeline, result = run_fake(tmp_path / "out", books, splitter="llm")
    rows = pipeline.call_log.rows()
    assert len(rows) == result.calls == result.calls_total > 0
    assert {row["book_id"] for row in rows} == set(result.books)
    assert sum(pipeline.call_log.count(b) for b in result.books) == len(rows)
    columns = set(pipeline.call_log.db["calls"].columns_dict)
    assert "story_id" not in columns
    assert set(CallRecord.model_fields) - {"story_id", "sampling"} <= columns
    assert all(json.loads(row["sampling_json"])["max_tokens"] > 0 for row in rows)
    pipeline.close()


def test_call_log_takes_writes_from_many_threads(tmp_path: Path):
    from concurrent.futures import ThreadPoolExecutor

    from novelcraft.core.schema import CallRecord
    from novelcraft.dataprep.calllog import CallLog

    log = CallLog(tmp_path / "calls.db")
    record = CallRecord(
        template="t.j2", prompt_hash="h", backend="fake", model="m", sampling={"max_tokens": 8}
    )
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: log.sink_for(f"book-{i % 3}")(record), range(60)))
    assert log.count() == 60 and log.count("book-1") == 20
    log.close()


def test_a_calls_db_the_engine_store_wrote_is_migrated(tmp_path: Path, books: list[Path]):
    out = tmp_path / "out"
    out.mkdir()
    old = sqlite_utils.Database(out / "calls.db")
    old["_migrations"].insert({"version": 1, "applied": "2025-01-01T00:00:00"}, pk="version")
    MIGRATIONS[0](old)  # the tables the engine's store made at its first version
    old["calls"].insert_all(
        {"story_id": "ann-author-tiny-tale", "template": "summary.j2", "outcome": "ok"} for _ in range(3)
    )
    old.close()
    pipeline, result = run_fake(out, books)
    assert result.errors == [] and result.calls > 0 and result.calls_total == result.calls + 3
    assert "story_id" not in pipeline.call_log.db["calls"].columns_dict
    assert pipeline.call_log.count("ann-author-tiny-tale") > 3
    pipeline.close()
    again, result = run_fake(out, books)  # a migrated log opens as it is
    assert result.calls == 0 and result.calls_total == again.call_log.count()
    again.close()


# the CLI ---------------------------------------------------------------------------------------------


def _dataprep_cli(*args: str):
    from typer.testing import CliRunner

    from novelcraft.cli.main import app

    return CliRunner().invoke(app, ["--backend", "fake", *args])


def test_cli_refuses_bad_input_with_exit_2(tmp_path: Path, books: list[Path]):
    out = str(tmp_path / "o")
    cases = {
        "splitter": (["dataprep", "run", str(books[0]), "--out", out, "--splitter", "lmm"], "lmm"),
        "missing book": (["dataprep", "run", str(tmp_path / "nope.epub"), "--out", out], "nope.epub"),
        "workers": (["dataprep", "run", str(books[0]), "--out", out, "--workers", "0"], "--workers"),
        "compress": (
            ["dataprep", "run", str(books[0]), "--out", out, "--compress-calls", "9"],
            "--compress-calls",
        ),
        "backend option": (["-o", "bogus=1", "dataprep", "book", str(books[0]), "--out", out], "bogus"),
    }
    for name, (args, named) in cases.items():
        result = _dataprep_cli(*args)
        assert result.exit_code == 2, (name, result.output)
        assert named in result.output and "unexpected" not in result.output, (name, result.output)
    assert not (tmp_path / "o" / "books").exists()  # nothing ran


def test_cli_reads_the_root_options(tmp_path: Path, books: list[Path]):
    result = _dataprep_cli(
        "-o", "latency_ms=1", "dataprep", "book", str(books[0]), "--out", str(tmp_path / "o")
    )
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "o" / "config.json").read_text())
    assert config["settings"]["backend"] == "fake"
    assert float(config["settings"]["backend_options"]["fake"]["latency_ms"]) == 1


def test_cli_ctrl_c_exits_130(tmp_path: Path, books: list[Path], monkeypatch):

    def interrupted(self, paths, upto="compile"):
        raise KeyboardInterrupt

    monkeypatch.setattr(dataprep.cli.Pipeline, "run", interrupted)
    result = _dataprep_cli("dataprep", "run", str(books[0]), "--out", str(tmp_path / "o"))
    assert result.exit_code == 130 and "interrupted" in result.output and "unexpected" not in result.output


def test_every_command_argument_and_option_has_help():
    import typer.main

    from novelcraft.dataprep.cli import app

    for name, command in typer.main.get_command(app).commands.items():
        assert command.help, name
        assert [p.name for p in command.params if not getattr(p, "help", None)] == [], name
