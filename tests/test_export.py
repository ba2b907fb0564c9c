"""Exports treat scene text as text: tags, entities and Markdown-looking lines in a scene come out as
written in the EPUB, the DOCX and the Markdown manuscript, and only the engine's chapters and scene
breaks are structure. The EPUB passes EPUBCheck and names the seed's language."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pypandoc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from novelcraft.core.schema import Seed
from novelcraft.core.seedfile import SeedError, parse_seed
from novelcraft.settings.config import resolve_settings
from novelcraft.story.export import ExportFormat, manuscript, markdown_prose
from novelcraft.story.novel import Story

XHTML = "{http://www.w3.org/1999/xhtml}"
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
DC_LANGUAGE = "{http://purl.org/dc/elements/1.1/}language"

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<iframe src="x"></iframe>',
    "<style>body{}</style>",
    "</article>",
    "1986. The flood came to the town.",
    "# Not a chapter",
    "- The fog rolls in",
    "&amp; and R&D",
]
# The same lines inside one paragraph (soft line breaks), where a Markdown reader would still start a
# list or a heading at a line; and control characters XML cannot hold, which the export leaves out.
RUN_ON = "The note said\n- The fog rolls in\n# Not a chapter\n1986. The flood came to the town."
CONTROLS = "The bell\x01 rang\x0c twice."
SCENE = "\n\n".join([*HOSTILE, RUN_ON, CONTROLS])
# A title with Markdown in it: only the engine's "#" makes it a heading.
TITLE = "The *Flood* of 1986 #1 {draft}"


def _story(root: Path, language: str | None) -> Story:
    seed = f"title: {TITLE!r}\npremise: A keeper finds a letter.\ntarget_words: 900\nscenes: 4\nscene_words: 300\n"
    seed += "seed: 2\n" + (f"language: {language}\n" if language else "")
    story = Story.start(
        parse_seed(seed), resolve_settings(env={}, flags={"backend": "fake", "db": root / "s.db"})
    )
    story.draft()
    # Scene 2 opens chapter 2 and scene 3 follows it there: the hostile text sits before a scene break.
    story.import_scene(2, SCENE)
    return story


@pytest.fixture(scope="module", params=[None, "fr"], ids=["default-language", "fr"])
def book(request, tmp_path_factory) -> dict:
    """One story exported in every format: the files, its chapter count and its language."""
    root = tmp_path_factory.mktemp("export")
    with _story(root, request.param) as story:
        for fmt in ExportFormat:
            story.export(root / f"book.{fmt.value}", fmt)
        chapters = len({s["chapter_index"] for s in story.store.scenes(story.id)})
        markdown = manuscript(story.store, story.id)
    return {"root": root, "chapters": chapters, "language": request.param or "en", "markdown": markdown}


def _text(element: ET.Element) -> str:
    return " ".join("".join(element.itertext()).split())


def _epub(root: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(root / "book.epub") as epub:
        return {name: epub.read(name) for name in epub.namelist()}


def _chapter_files(files: dict[str, bytes]) -> list[str]:
    return sorted(name for name in files if re.fullmatch(r"EPUB/text/ch\d+\.xhtml", name))


def test_the_epub_shows_the_tags_as_text_and_runs_nothing(book):
    files = _epub(book["root"])
    chapters = _chapter_files(files)
    assert len(chapters) == book["chapters"] == 3  # "# Not a chapter" made no chapter of its own
    paragraphs: list[str] = []
    for name in [n for n in files if n.endswith(".xhtml")]:
        tree = ET.fromstring(files[name])  # well-formed, stray </article> and all
        body = tree.find(f"{XHTML}body")
        tags = {element.tag.removeprefix(XHTML) for element in body.iter()}
        assert not tags & {"script", "img", "iframe", "style", "object", "embed"}, name
        for element in tree.iter():
            for attribute, value in element.attrib.items():
                assert not attribute.startswith("on") and "javascript:" not in value, (name, attribute)
        if name in chapters:  # (the table of contents is a list, rightly)
            assert not tags & {"ol", "ul", "article"}, name
            assert len(body.findall(f".//{XHTML}h1")) == 1, name
            paragraphs += [_text(p) for p in body.iter(f"{XHTML}p")]
    for line in HOSTILE:
        assert line in paragraphs  # a paragraph of its own, as written: "1986." starts one
    assert " ".join(RUN_ON.split()) in paragraphs and "The bell rang twice." in paragraphs
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in files[chapters[1]]
    second = ET.fromstring(files[chapters[1]]).find(f"{XHTML}body")
    assert len(second.findall(f".//{XHTML}hr")) == 1  # the break between scenes 2 and 3


def test_the_epub_names_the_seeds_language_and_its_title(book):
    opf = ET.fromstring(_epub(book["root"])["EPUB/content.opf"])
    assert [e.text for e in opf.iter(DC_LANGUAGE)] == [book["language"]]
    assert _text(opf.find(".//{http://purl.org/dc/elements/1.1/}title")) == TITLE


def _epubcheck() -> list[str] | None:
    found = shutil.which("epubcheck")
    if found is None:
        return None
    jar = Path(found).resolve()
    # Debian's epubcheck is the jar itself, run through binfmt_misc, which a container may not have.
    return ["java", "-jar", str(jar)] if jar.suffix == ".jar" and shutil.which("java") else [found]


@pytest.mark.integration
def test_epubcheck_finds_no_error(book):
    command = _epubcheck()
    if command is None:
        pytest.skip("epubcheck is not installed (apt-get install epubcheck)")
    done = subprocess.run(
        [*command, str(book["root"] / "book.epub")], capture_output=True, text=True, timeout=300
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0 and re.search(r"\b0 fatals / 0 errors\b", report), report


def test_the_docx_keeps_every_string_as_written(book):
    with zipfile.ZipFile(book["root"] / "book.docx") as docx:
        document = ET.fromstring(docx.read("word/document.xml"))
        styles = docx.read("word/styles.xml").decode()
    paragraphs = [
        " ".join("".join(t.text or "" for t in p.iter(f"{W}t")).split()) for p in document.iter(f"{W}p")
    ]
    for line in HOSTILE:
        assert line in paragraphs  # nothing dropped between the tags; "1986." begins a paragraph
    assert " ".join(RUN_ON.split()) in paragraphs
    headings = [
        p for p in document.iter(f"{W}p") if p.find(f"{W}pPr/{W}pStyle[@{W}val='Heading1']") is not None
    ]
    assert len(headings) == book["chapters"]
    assert f'w:val="{book["language"]}"' in styles


class _Html(HTMLParser):
    """The tags pandoc's HTML holds and the text of each paragraph and heading."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.blocks: list[tuple[str, str]] = []
        self._open: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        if tag in {"p", "h1", "h2"}:
            self._open = (tag, [])

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag == self._open[0]:
            self.blocks.append((tag, " ".join("".join(self._open[1]).split())))
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[1].append(data)


# "smart" typography is off: it curls quotes and joins dashes, which changes how prose looks, not
# what it says; the manuscript leaves it to the reader.
READERS = ["markdown-smart", "commonmark", "gfm"]


def _prose_tags(reader: str) -> set[str]:
    # GitHub's reader links a bare URL wherever it stands, escaped or not; its text stays as written.
    return {"p", "br", "a"} if reader == "gfm" else {"p", "br"}


def _render(markdown: str, reader: str) -> _Html:
    parsed = _Html()
    parsed.feed(pypandoc.convert_text(markdown, "html", format=reader))
    return parsed


@pytest.mark.parametrize("reader", READERS)
def test_the_markdown_manuscript_reads_back_as_written(book, reader):
    parsed = _render(book["markdown"], reader)
    assert set(parsed.tags) <= {"h1", "h2", "p", "hr", "br"}, set(parsed.tags)
    headings = [(tag, text) for tag, text in parsed.blocks if tag != "p"]
    assert headings[0] == ("h1", TITLE) and len(headings) == 1 + book["chapters"]
    assert all(tag == "h2" and text.startswith("Chapter ") for tag, text in headings[1:])
    paragraphs = [text for tag, text in parsed.blocks if tag == "p"]
    for line in HOSTILE:
        assert line in paragraphs
    assert " ".join(RUN_ON.split()) in paragraphs
    assert parsed.tags.count("hr") == 1  # chapter 2's scene break, the only chapter with two scenes


TRICKY = [
    "iv) The fourth.",
    "(a) First.",
    "A.  Two spaces after a capital.",
    "#. Numbered by pandoc.",
    "(@) An example.",
    "| a | b |",
    ": a definition",
    "---",
    "===",
    "> A quote.",
    "+ A plus.",
    "* * *",
    "    Indented like code.",
    "Ends in a backslash\\",
    "$x + y$ and $5",
    "~~struck~~ and H~2~O and 2^10^",
    "`code` and ```fence",
    "[a link](http://x) ![an image](x.png) [^1]",
    "**bold** and _em_ and __strong__",
    "\\emph{raw TeX} and \\begin{center}",
    "<!-- a comment --> and <http://example.com>",
    "&lt;b&gt; is an entity, &#38; too",
    "@smith says [@doe, p. 3]",
    "% a title block",
    "::: a div",
    "Term\n: definition",
    "Setext?\n---",
    "a | b\n--|--",
]


@pytest.mark.parametrize("reader", READERS)
def test_markdown_significant_lines_read_back_as_written(reader):
    parsed = _render("\n\n".join(markdown_prose(line) for line in TRICKY), reader)
    assert set(parsed.tags) <= _prose_tags(reader), set(parsed.tags)
    assert [text for _, text in parsed.blocks] == [" ".join(line.split()) for line in TRICKY]


PROSE_CHARACTERS = "ab1 .)(#>+-=|:*_`~^$[]{}\\<>&;!/@%'\"\nIivx\t\xa0é09,?"
_paragraph = st.text(alphabet=PROSE_CHARACTERS, min_size=1, max_size=25).filter(
    lambda t: t.strip() and not re.search(r"\n\s*\n", t.strip())
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_paragraph, min_size=1, max_size=8))
def test_any_paragraphs_read_back_as_written(texts):
    markdown = "\n\n".join(markdown_prose(text) for text in texts)
    for reader in READERS:
        parsed = _render(markdown, reader)
        assert set(parsed.tags) <= _prose_tags(reader), (reader, markdown)
        assert [text for _, text in parsed.blocks] == [" ".join(t.split()) for t in texts], (reader, markdown)


def test_the_language_is_a_bcp_47_tag_and_older_seeds_are_english():
    assert parse_seed("premise: A ferry.\nlanguage: pt-BR\n").language == "pt-BR"
    with pytest.raises(SeedError, match="language.*not a BCP 47 language tag"):
        parse_seed("premise: A ferry.\nlanguage: C\n")  # what the EPUB said before
    assert Seed.model_validate_json('{"premise": "A ferry saved before the field."}').language == "en"
