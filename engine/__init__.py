"""novelcraft: seed -> outline -> scenes -> manuscript, resumable from SQLite.

The public API; every front end (the CLI, the studio, the study runner) goes through it:

    from novelcraft import Story, load_seed, resolve_settings

    story = Story.start(load_seed("stories/short.yaml"), resolve_settings(flags={"backend": "fake"}))
    story.draft()

Names resolve on first use (PEP 562), so importing a submodule (or `novelcraft --help`) does not load
the drafting stack.
"""

from novelcraft.core.lazy import lazy_getattr

_EXPORTS = {
    "Story": "novelcraft.story.novel",
    "DraftFailed": "novelcraft.story.novel",
    "list_stories": "novelcraft.story.novel",
    "ExportFormat": "novelcraft.story.export",
    "Settings": "novelcraft.settings.config",
    "resolve_settings": "novelcraft.settings.config",
    "load_seed": "novelcraft.core.seedfile",
    "parse_seed": "novelcraft.core.seedfile",
    "Seed": "novelcraft.core.schema",
    "Outline": "novelcraft.core.schema",
    "RunningSummary": "novelcraft.core.schema",
    "NovelcraftError": "novelcraft.core.errors",
    "InputError": "novelcraft.core.errors",
    "Backend": "novelcraft.backends",
    "Completion": "novelcraft.backends",
    "open_backend": "novelcraft.settings.backend",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return __all__
