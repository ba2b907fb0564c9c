"""Shared fixtures: an isolated environment, a temporary story database, the CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No NOVELCRAFT_* setting from the developer's shell leaks into a test."""
    for key in list(os.environ):
        if key.startswith("NOVELCRAFT_") and key != "NOVELCRAFT_CACHE":
            monkeypatch.delenv(key)
    # No adherence redraft unless a test asks for one: the fake backend's prose is random words, so its
    # lifts are noise, and loading MiniLM in every test process would cost seconds for nothing.
    # tests/test_adherence_redraft.py drives the check (word overlap and MiniLM) itself.
    monkeypatch.setenv("NOVELCRAFT_ADHERENCE", "off")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "stories.db"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def short_seed(tmp_path: Path) -> Path:
    path = tmp_path / "seed.yaml"
    path.write_text(
        "title: Test Tale\npremise: A keeper finds a letter in the lamp room.\n"
        "target_words: 1200\nscenes: 4\nscene_words: 300\nseed: 5\n",
        encoding="utf-8",
    )
    return path


# Two style experts on the fake backend: a chat one (rain, detective) and a continuation one (moor).
REGISTRY = """
router: {embedder: none}
experts:
  - name: noir
    mode: chat
    base: fake-model
    adapter: adapters/noir
    keywords: {rain: 2, detective: 2}
    description: hard-boiled city noir
  - name: gothic
    mode: continuation
    base: fake-model
    adapter: adapters/gothic.gguf
    keywords: {moor: 2, governess: 3}
    description: a gothic novel of the moors
"""


@pytest.fixture
def registry_file(tmp_path: Path) -> Path:
    (tmp_path / "adapters").mkdir()
    (tmp_path / "adapters" / "noir").mkdir()
    (tmp_path / "adapters" / "gothic.gguf").write_bytes(b"GGUF")
    path = tmp_path / "experts.yaml"
    path.write_text(REGISTRY, encoding="utf-8")
    return path


@pytest.fixture
def python_sigint():
    """Python's own SIGINT handler, whatever an earlier test or library set. A test that simulates
    Ctrl-C needs it: interrupt_main() does nothing for a signal Python does not handle, and a child
    process inherits an ignored SIGINT."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
