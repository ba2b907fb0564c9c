"""dataprep on the real corpus: real pandoc, all 14 Gutenberg texts, corrupt inputs, the real default model."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from novelcraft.cli.main import app
from novelcraft.core.tokens import fallback_count
from novelcraft.dataprep.clean import clean_markdown
from novelcraft.dataprep.convert import convert
from novelcraft.dataprep.pipeline import Options, Pipeline
from novelcraft.dataprep.scenes import blocks, fit, group, heuristic_starts, merge, scene_text
from novelcraft.dataprep.split import for_training, split_sections
from novelcraft.settings.config import resolve_settings

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
EPUB = CORPUS / "epub" / "moby-dick.epub"
GUTENBERG = sorted((CORPUS / "gutenberg").glob("*.txt"))
BOILERPLATE = re.compile(
    r"project gutenberg|gutenberg\.org|\*\*\* ?(start|end) of|(?:^|\n)produced by|full license|gutenberg-tm",
    re.I,
)
# Chapters (or stories, or staves) as the books themselves number them.
CHAPTERS = {
    "austen_-_emma": 55,
    "austen_-_pride_and_prejudice": 61,
    "conan_doyle_-_adventures_of_sherlock_holmes": 12,
    "austen_-_northanger_abbey": 31,
    "austen_-_persuasion": 24,
    "bronte_-_jane_eyre": 38,
    "bronte_-_shirley": 37,
    "carroll_-_alice_in_wonderland": 12,
    "dickens_-_a_christmas_carol": 5,
    "dickens_-_bleak_house": 67,
    "dickens_-_david_copperfield": 64,
    "dickens_-_great_expectations": 59,
    "dickens_-_oliver_twist": 53,
    "swift_-_a_modest_proposal": 1,
}

needs_corpus = pytest.mark.skipif(not EPUB.exists(), reason="the shared corpus is not checked out")


def heuristic_scenes(markdown: str) -> tuple[list, list[str]]:
    sections = split_sections(clean_markdown(markdown))
    scenes = []
    for section in sections:
        if for_training(section):
            bl = blocks(section.text, fallback_count)
            scenes += [scene_text(s) for s in fit(merge(group(bl, heuristic_starts(bl))), fallback_count)]
    return sections, scenes


@needs_corpus
def test_all_gutenberg_texts_convert_cleanly():
    assert len(GUTENBERG) == 14
    for path in GUTENBERG:
        book = convert(path)
        sections, scenes = heuristic_scenes(book.markdown)
        chapters = [s for s in sections if s.kind == "chapter"]
        assert len(chapters) == CHAPTERS[path.stem], path.name
        assert scenes, path.name
        for text in scenes:
            assert not BOILERPLATE.search(text), (path.name, BOILERPLATE.search(text).group(0))
            assert fallback_count(text) <= 3000, path.name
        assert book.author and book.title and "Gutenberg" not in book.title


@needs_corpus
def test_moby_dick_chapters_and_reference(tmp_path: Path):
    settings = resolve_settings(env={}, flags={"backend": "fake"})
    pipeline = Pipeline(tmp_path, settings, Options())
    result = pipeline.run([EPUB], upto="book")
    assert result.errors == [] and result.calls == 0
    book = pipeline.load_book("moby-dick")
    assert book.meta.total_chapters >= 130
    assert book.meta.title.startswith("Moby-Dick") and "Melville" in book.meta.author
    refs = sorted(p.name for p in (tmp_path / "ref" / "moby-dick").glob("*.md"))
    assert any("etymology" in n for n in refs) and any("extracts" in n for n in refs)
    assert "reference matter" in (tmp_path / "ref" / "moby-dick" / refs[0]).read_text()
    clean = (tmp_path / "books" / "moby-dick" / "clean.md").read_text()
    assert "<span" not in clean and "](" not in clean and "[^1]" not in clean
    assert "# Chapter 1: Loomings" in clean and "# Chapter 135: The Chase.—Third Day" in clean
    _, scenes = heuristic_scenes((tmp_path / "books" / "moby-dick" / "source.md").read_text())
    assert len(scenes) >= 135 and max(map(fallback_count, scenes)) <= 3000
    pipeline.close()


def _rezip(src: Path, dest: Path, drop: set[str] = frozenset(), add: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for item in zin.infolist():
            if item.filename not in drop:
                zout.writestr(item, zin.read(item.filename))
        for name, text in (add or {}).items():
            zout.writestr(name, text)
    return dest


ENCRYPTION = """<?xml version="1.0"?>
<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container"
  xmlns:enc="http://www.w3.org/2001/04/xmlenc#">
 <enc:EncryptedData><enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
 <enc:CipherData><enc:CipherReference URI="EPUB/xhtml/chapter_001.xhtml"/></enc:CipherData></enc:EncryptedData>
</encryption>"""


@needs_corpus
def test_corrupt_inputs_fail_one_line_each(tmp_path: Path):
    data = EPUB.read_bytes()
    truncated = tmp_path / "truncated.epub"
    truncated.write_bytes(data[: len(data) // 2])
    no_container = _rezip(EPUB, tmp_path / "no-container.epub", drop={"META-INF/container.xml"})
    empty = tmp_path / "empty.epub"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.epub"
    junk.write_bytes(bytes(range(256)) * 64)
    junk_txt = tmp_path / "junk.txt"
    junk_txt.write_bytes(b"\x00\x01\x02" * 1000)
    drm = _rezip(EPUB, tmp_path / "drm.epub", add={"META-INF/encryption.xml": ENCRYPTION})
    rights = _rezip(EPUB, tmp_path / "rights.epub", add={"META-INF/rights.xml": "<rights/>"})
    good = tmp_path / "dickens_-_a_christmas_carol.txt"
    shutil.copy(CORPUS / "gutenberg" / good.name, good)
    bad = [truncated, no_container, empty, junk, junk_txt, drm, rights]
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["--backend", "fake", "dataprep", "book", *map(str, bad), str(good), "--out", str(out)]
    )
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == len(bad)
    for path, line in zip(bad, errors, strict=True):
        assert line.startswith(f"error: {path}: ")
    assert "DRM" in errors[5] and "DRM" in errors[6] and "container.xml" in errors[1]
    assert (
        json.loads((out / "books" / "dickens-a-christmas-carol" / "book.json").read_text())["meta"][
            "total_chapters"
        ]
        == 5
    )
    assert not any((out / "books").glob("truncated*"))  # nothing half-written for a failed book


@needs_corpus
def test_real_default_model_on_a_few_scenes(tmp_path: Path):
    pytest.importorskip("llama_cpp")
    settings = resolve_settings(env={}, flags={"backend": "llamacpp"}, backend_flags={"n_threads": 2})
    options = Options(
        max_scenes=2,
        splitter="heuristic",
        summary_scene_words=80,
        instruction_scene_words=60,
        world_passage_words=60,
        world_max_tokens=96,
        instruction_max_tokens=40,
    )
    pipeline = Pipeline(tmp_path, settings, options)
    result = pipeline.run([CORPUS / "gutenberg" / "dickens_-_a_christmas_carol.txt"])
    assert result.errors == [], result.errors
    book = pipeline.load_book("dickens-a-christmas-carol")
    story = [s for s in book.scenes if s.kind == "chapter"]
    assert len(story) == 2 and book.meta.world_context
    assert all(s.instruction and s.running_summary is not None for s in book.scenes)
    calls = pipeline.call_log.rows()
    assert {c["template"] for c in calls} >= {"dataprep_world.j2", "summary.j2", "dataprep_instruction.j2"}
    assert all(c["backend"] == "llamacpp" for c in calls)
    from datasets import load_dataset

    files = {"train": str(tmp_path / "train.jsonl"), "validation": str(tmp_path / "val.jsonl")}
    ds = load_dataset("json", data_files=files, cache_dir=str(tmp_path / "cache"))
    rows = ds["train"].num_rows + ds["validation"].num_rows
    assert rows == result.report["records"] == len(book.scenes)
    assert ds["train"][0]["messages"][2]["role"] == "assistant"
    pipeline.close()


@needs_corpus
def test_font_obfuscation_is_not_drm(tmp_path: Path):
    from novelcraft.dataprep.convert import epub_metadata

    fonts = ENCRYPTION.replace(
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc", "http://www.idpf.org/2008/embedding"
    )
    path = _rezip(EPUB, tmp_path / "fonts.epub", add={"META-INF/encryption.xml": fonts})
    title, author = epub_metadata(path)
    assert title.startswith("Moby-Dick") and "Melville" in author


def test_token_counts_with_the_target_tokenizer(tmp_path: Path):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("transformers")
    from novelcraft.backends.hf_default import default_hf_checkpoint
    from novelcraft.backends.llamacpp import LlamaCppBackend
    from novelcraft.core.schema import Message

    book = tmp_path / "ann_author_-_short.md"
    book.write_text("# Chapter 1: Start\n\n" + "The keeper climbed the stairs and lit the lamp. " * 120)
    settings = resolve_settings(env={}, flags={"backend": "fake"})
    options = Options(tokenizer=str(default_hf_checkpoint()), val_fraction=0)
    pipeline = Pipeline(tmp_path / "out", settings, options)
    assert pipeline.run([book]).errors == []
    rows = [json.loads(x) for x in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    llama = LlamaCppBackend(n_threads=1)
    for row in rows:
        # the chat template of SmolLM2 (ChatML) counted by HF agrees with llama.cpp's own tokenizer
        expected = llama.count_prompt_tokens([Message(**m) for m in row["messages"]])
        assert abs(row["tokens"] - expected) <= 5, (row["tokens"], expected)
    llama.close()
    pipeline.close()
