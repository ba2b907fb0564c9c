"""An outline as the author edits it: YAML out, YAML back in, checked before anything changes."""

from __future__ import annotations

from pydantic import ValidationError

from novelcraft.core.errors import InputError, prefixed, validation_lines
from novelcraft.core.files import load_yaml
from novelcraft.core.schema import Outline, Seed

# The same bounds a seed's `scenes` has: an edited outline cannot ask for a book the engine refuses.
MIN_SCENES = Seed.model_fields["scenes"].metadata[0].ge
MAX_SCENES = Seed.model_fields["scenes"].metadata[1].le


def outline_yaml(outline: Outline) -> str:
    header = (
        "# The outline: acts > chapters > scenes (goal, characters, setting).\n"
        "# Edit freely; every act needs a chapter and every chapter a scene.\n"
    )
    import yaml

    return header + yaml.safe_dump(outline.model_dump(), sort_keys=False, allow_unicode=True, width=110)


def parse_outline(text: str, source: str = "outline") -> Outline:
    """The edited outline, or one InputError listing every problem (each naming `source`)."""
    import yaml

    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(
            f"{source}: YAML syntax error{where}: {getattr(exc, 'problem', None) or exc}"
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping with 'acts', got {type(data).__name__}")
    try:
        outline = Outline.model_validate(data)
    except ValidationError as exc:
        raise InputError(*prefixed(source, validation_lines(exc))) from None
    problems = []
    if not outline.acts:
        problems.append("the outline has no acts")
    for a, act in enumerate(outline.acts, start=1):
        if not act.chapters:
            problems.append(f"act {a} ({act.title!r}) has no chapters")
        for c, chapter in enumerate(act.chapters, start=1):
            if not chapter.scenes:
                problems.append(f"act {a} chapter {c} ({chapter.title!r}) has no scenes")
    n = len(outline.scene_goals())
    if not MIN_SCENES <= n <= MAX_SCENES:
        problems.append(f"{n} scenes; an outline has {MIN_SCENES} to {MAX_SCENES}")
    if problems:
        raise InputError(*prefixed(source, problems))
    return outline


def first_changed_scene(old: Outline, new: Outline) -> int | None:
    """The first scene (0-based) whose goal, characters, setting or chapter differ; None when none do."""
    old_plans, new_plans = old.scene_goals(), new.scene_goals()
    old_titles = [c.title for c in old.chapters()]
    new_titles = [c.title for c in new.chapters()]
    for (oc, i, og), (nc, _, ng) in zip(old_plans, new_plans, strict=False):
        if og != ng or old_titles[oc] != new_titles[nc]:
            return i
    if len(old_plans) != len(new_plans):
        return min(len(old_plans), len(new_plans))
    return None


def slot_texts(outline: Outline) -> dict[str, str]:
    """Each slot the planner may fill ("scene 4 goal", "act 1 title", "act 1 chapter 2 title") -> its text."""
    slots: dict[str, str] = {}
    n = 0
    for a, act in enumerate(outline.acts, start=1):
        slots[f"act {a} title"] = act.title
        for c, chapter in enumerate(act.chapters, start=1):
            slots[f"act {a} chapter {c} title"] = chapter.title
            for goal in chapter.scenes:
                n += 1
                for part in ("goal", "setting", "change", "hook"):
                    slots[f"scene {n} {part}"] = getattr(goal, part)
    for line in outline.spine:
        slots[f"spine {line.character}"] = line.model_dump_json()
    return slots


def still_filled(old: Outline, new: Outline) -> list[str]:
    """The slots of the edited outline still as the engine wrote them from the seed: an author's edit
    of a slot makes it the author's, whatever the `filled` list of the edited file says."""
    before, after = slot_texts(old), slot_texts(new)
    return [slot for slot in old.filled if slot in after and after[slot] == before.get(slot)]
