"""Stage 1: a book file -> Markdown. EPUB through pandoc, Gutenberg text through gutenberg.py, .md as is."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

from novelcraft.dataprep import gutenberg
from novelcraft.dataprep.models import BookError, Converted

PANDOC_ARGS = ["--wrap=none"]
# Part of the convert stage key, with the input's hash: bump it when conversion changes (here or in
# gutenberg.py) so a resumed run converts again instead of keeping the old Markdown.
VERSION = 1
# IDPF font obfuscation is not DRM: an encryption.xml that only lists these algorithms is fine.
FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
SUFFIXES = (".epub", ".txt", ".md", ".markdown")


def book_id_for(path: Path) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-") or "book"


def author_from_name(path: Path) -> str:
    """The corpus names files `author_-_title.txt`."""
    if "_-_" in path.stem:
        return path.stem.split("_-_", 1)[0].replace("_", " ").title()
    return "Unknown"


def _title_from_name(path: Path) -> str:
    return path.stem.split("_-_", 1)[-1].replace("_", " ").replace("-", " ").title()


def epub_metadata(path: Path) -> tuple[str, str]:
    """(title, author) from the OPF, after checking that the file is a readable, DRM-free EPUB."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "META-INF/container.xml" not in names:
                raise BookError(f"{path}: not a valid EPUB: META-INF/container.xml is missing")
            if "META-INF/rights.xml" in names:
                raise BookError(f"{path}: DRM-protected EPUB (META-INF/rights.xml); remove the DRM first")
            if "META-INF/encryption.xml" in names:
                algorithms = set(re.findall(rb'Algorithm="([^"]+)"', zf.read("META-INF/encryption.xml")))
                if {a.decode() for a in algorithms} - FONT_OBFUSCATION:
                    raise BookError(
                        f"{path}: DRM-encrypted EPUB (META-INF/encryption.xml); remove the DRM first"
                    )
            container = ElementTree.fromstring(zf.read("META-INF/container.xml"))
            rootfile = next(
                (e.get("full-path") for e in container.iter() if e.tag.endswith("rootfile")), None
            )
            if not rootfile or rootfile not in names:
                raise BookError(f"{path}: not a valid EPUB: container.xml names no package file")
            opf = ElementTree.fromstring(zf.read(rootfile))
    except zipfile.BadZipFile as exc:
        raise BookError(f"{path}: not a valid EPUB: unreadable zip archive ({exc})") from None
    except ElementTree.ParseError as exc:
        raise BookError(f"{path}: not a valid EPUB: malformed XML ({exc})") from None
    except (OSError, EOFError, zipfile.LargeZipFile) as exc:
        raise BookError(f"{path}: not a valid EPUB: {exc}") from None

    def first(tag: str) -> str:
        return next((e.text.strip() for e in opf.iter() if e.tag.endswith(tag) and e.text), "")

    return first("}title") or _title_from_name(path), first("}creator") or author_from_name(path)


def pandoc_epub(path: Path) -> str:
    import pypandoc

    try:
        return pypandoc.convert_file(str(path), "gfm-smart", format="epub", extra_args=PANDOC_ARGS)
    except (RuntimeError, OSError) as exc:
        first_line = next((ln for ln in str(exc).splitlines() if ln.strip()), "pandoc failed")
        raise BookError(f"{path}: pandoc could not convert it: {first_line.strip()}") from None


def read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:65536]:
        raise BookError(f"{path}: binary data, not a text book")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise BookError(f"{path}: not UTF-8 or cp1252 text")


def convert(path: Path) -> Converted:
    """Any supported book file -> Converted; a BookError with a one-line message otherwise."""
    if not path.is_file():
        raise BookError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise BookError(f"{path}: empty file")
    suffix = path.suffix.lower()
    book_id = book_id_for(path)
    if suffix == ".epub":
        title, author = epub_metadata(path)
        markdown = pandoc_epub(path)
    elif suffix == ".txt":
        text = read_text(path)
        header = gutenberg.header_fields(text)
        title = header.title or _title_from_name(path)
        author = header.author or author_from_name(path)
        markdown, _ = gutenberg.to_markdown(text, title)
    elif suffix in (".md", ".markdown"):
        markdown = read_text(path)
        # Markdown carries no reliable metadata; the corpus file name does (author_-_title.md).
        title = _title_from_name(path)
        author = author_from_name(path)
    else:
        raise BookError(f"{path}: unsupported file type '{suffix}' (use {', '.join(SUFFIXES)})")
    if not markdown.strip():
        raise BookError(f"{path}: no text found")
    return Converted(source=str(path), book_id=book_id, title=title, author=author, markdown=markdown)
