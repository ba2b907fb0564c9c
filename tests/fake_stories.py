"""Stories on the fake backend for the tests that draft one: its settings, and a whole drafted story."""

from __future__ import annotations

from pathlib import Path

from novelcraft.core.schema import Seed
from novelcraft.settings.config import Settings, resolve_settings
from novelcraft.story.novel import Story


def fake_settings(db_path: Path, **flags) -> Settings:
    """The fake backend on `db_path`, with `flags` as the command line; no environment."""
    return resolve_settings(None, env={}, flags={"backend": "fake", "db": db_path, **flags})


def drafted(db_path: Path, seed: Seed, **flags) -> Story:
    """`seed` started and drafted to the end on the fake backend."""
    story = Story.start(seed, fake_settings(db_path, **flags))
    story.draft()
    return story
