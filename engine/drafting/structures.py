"""Story structures as data: the beats each one maps onto a book's scene count, grouped into acts.

A beat says what a stretch of the book is for ("the protagonist commits to act") and what must change
in it; the planner asks the model for scene goals one beat at a time, and when an answer is refused it
writes the goal from the beat itself. `none` has no beats: the scenes are planned from the spine alone,
in three equal parts.

Pure data and pure functions; the sources are the usual craft descriptions (Freytag and Field for three
acts, Dan Wells's seven-point structure, Blake Snyder's Save the Cat beat sheet, the four parts of
kishōtenketsu).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Beat:
    name: str
    act: int  # 0-based
    weight: float  # share of the book, relative to the other beats
    # What the beat does, as a verb phrase after the focal character's name.
    action: str
    # What is different when a scene of this beat ends, after the focal character's name.
    change: str


@dataclass(frozen=True)
class Structure:
    name: str
    acts: tuple[str, ...]  # fallback act titles
    beats: tuple[Beat, ...]


def _beats(rows: list[tuple[str, int, float, str, str]]) -> tuple[Beat, ...]:
    return tuple(Beat(*row) for row in rows)


STRUCTURES: dict[str, Structure] = {
    "three-act": Structure(
        "three-act",
        ("The Setup", "The Confrontation", "The Resolution"),
        _beats(
            [
                (
                    "Opening",
                    0,
                    1,
                    "goes about an ordinary day that shows what is wrong",
                    "senses that something is wrong",
                ),
                (
                    "Inciting incident",
                    0,
                    1,
                    "meets the event that cannot be ignored",
                    "can no longer ignore the trouble",
                ),
                (
                    "First turning point",
                    0,
                    1,
                    "decides to act and crosses into the trouble",
                    "is committed and cannot go back",
                ),
                (
                    "Rising action",
                    1,
                    2,
                    "makes a first attempt and pays for it",
                    "learns what the attempt costs",
                ),
                (
                    "Midpoint",
                    1,
                    1,
                    "discovers something that changes what the goal means",
                    "sees the goal in a new light",
                ),
                (
                    "Complications",
                    1,
                    2,
                    "is struck back by the obstacle and tests an ally",
                    "trusts someone less, or more",
                ),
                (
                    "Crisis",
                    1,
                    1,
                    "reaches the worst moment, when all seems lost",
                    "has lost what seemed certain",
                ),
                ("Climax", 2, 1.5, "confronts the obstacle directly", "wins or loses the central struggle"),
                (
                    "Resolution",
                    2,
                    1,
                    "faces what the struggle has changed",
                    "lives with a new order of things",
                ),
            ]
        ),
    ),
    "seven-point": Structure(
        "seven-point",
        ("Hook and turn", "Pinches", "Turn and resolution"),
        _beats(
            [
                (
                    "Hook",
                    0,
                    1,
                    "is shown in the state opposite to the ending",
                    "wants something and cannot have it",
                ),
                (
                    "Plot turn 1",
                    0,
                    1,
                    "is pushed into the conflict by a new event",
                    "has a goal and a reason to pursue it",
                ),
                (
                    "Pinch 1",
                    1,
                    1,
                    "feels the opposition press for the first time",
                    "knows the danger is real",
                ),
                ("Midpoint", 1, 1, "stops reacting and starts to act", "takes the initiative"),
                (
                    "Pinch 2",
                    1,
                    1,
                    "loses a plan or an ally to the opposition",
                    "stands alone against the obstacle",
                ),
                (
                    "Plot turn 2",
                    2,
                    1,
                    "finds the last piece needed to win",
                    "holds what is needed to finish it",
                ),
                ("Resolution", 2, 1, "ends the conflict", "has become the opposite of the hook"),
            ]
        ),
    ),
    "save-the-cat": Structure(
        "save-the-cat",
        ("Thesis", "Antithesis", "Synthesis"),
        _beats(
            [
                (
                    "Opening image",
                    0,
                    0.5,
                    "is shown before the change, in one telling moment",
                    "is seen as they are",
                ),
                (
                    "Theme stated",
                    0,
                    0.5,
                    "hears a truth they are not ready for",
                    "has been told what they must learn",
                ),
                ("Set-up", 0, 1, "shows what is missing at home and at work", "is shown to need a change"),
                ("Catalyst", 0, 0.5, "receives the news that changes everything", "cannot go on as before"),
                ("Debate", 0, 1, "doubts whether to go", "is torn about what to do"),
                ("Break into two", 1, 0.5, "chooses to enter a new world", "has chosen the road"),
                ("B story", 1, 1, "meets the person who carries the theme", "has a new bond"),
                (
                    "Fun and games",
                    1,
                    2,
                    "explores the promise of the premise",
                    "enjoys or suffers the new world",
                ),
                (
                    "Midpoint",
                    1,
                    1,
                    "wins falsely or loses falsely, and the stakes rise",
                    "faces higher stakes",
                ),
                ("Bad guys close in", 1, 1.5, "is pressed from outside and from within", "is losing ground"),
                ("All is lost", 1, 0.5, "suffers the blow that seems final", "has lost the most"),
                ("Dark night of the soul", 1, 1, "grieves and sees the truth", "understands the theme"),
                ("Break into three", 2, 0.5, "finds the answer in both stories", "knows how to win"),
                ("Finale", 2, 2, "acts on the lesson against the obstacle", "has proved the change"),
                ("Final image", 2, 0.5, "is shown after the change, opposite the opening", "is a new person"),
            ]
        ),
    ),
    "kishotenketsu": Structure(
        "kishotenketsu",
        ("Ki", "Shō", "Ten", "Ketsu"),
        _beats(
            [
                ("Ki: introduction", 0, 1, "is shown in the world as it is", "is known to the reader"),
                (
                    "Shō: development",
                    1,
                    1,
                    "deepens the life and the bonds of the opening",
                    "is closer to someone or something",
                ),
                (
                    "Ten: twist",
                    2,
                    1,
                    "meets an unexpected turn that recasts what came before",
                    "sees everything differently",
                ),
                (
                    "Ketsu: reconciliation",
                    3,
                    1,
                    "brings the twist and the opening together",
                    "holds both in a new harmony",
                ),
            ]
        ),
    ),
    "none": Structure("none", ("Part One", "Part Two", "Part Three"), ()),
}


def beat_plan(structure: str, n_scenes: int) -> list[tuple[int, Beat | None]]:
    """(act, beat) for each scene: beats get scenes in proportion to their weights, each at least one
    while there are scenes enough; with fewer scenes than beats, evenly spaced beats are kept."""
    spec = STRUCTURES[structure]
    if not spec.beats:
        # Three equal parts, the remainder to the middle.
        parts = [n_scenes // 3] * 3
        parts[1] += n_scenes - sum(parts)
        return [(act, None) for act, size in enumerate(parts) for _ in range(size)]
    beats = list(spec.beats)
    if n_scenes < len(beats):
        keep = sorted({round(i * (len(beats) - 1) / max(1, n_scenes - 1)) for i in range(n_scenes)})
        beats = [beats[i] for i in keep]
    total = sum(b.weight for b in beats)
    sizes = [1] * len(beats)
    spare = n_scenes - len(beats)
    # Largest remainder: the spare scenes go where the weight asks for them most.
    ideal = [b.weight / total * n_scenes - 1 for b in beats]
    for _ in range(spare):
        k = max(range(len(beats)), key=lambda i: ideal[i] - (sizes[i] - 1))
        sizes[k] += 1
    return [(b.act, b) for b, size in zip(beats, sizes, strict=True) for _ in range(size)]


def chapter_sizes(n: int, per_chapter: int = 3) -> list[int]:
    """An act's n scenes as chapters of about per_chapter scenes, the longer ones first."""
    n_chapters = max(1, round(n / per_chapter))
    return [n // n_chapters + (1 if i < n % n_chapters else 0) for i in range(n_chapters)]
