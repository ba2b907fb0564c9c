"""Point of view: which grammatical person the narration (not the quoted speech) is told in.

Each sentence is cut out of the text with its quotes blanked, then classified:
- first   if its narration has a first-person pronoun (I, me, my, mine, myself, we, us, our, ours,
          ourselves, and their contractions: I'm, we'd ...);
- second  else if it has a second-person pronoun (you, your, yours, yourself, yourselves);
- third   else if it has a third-person personal pronoun (he, him, his, himself, she, her, hers,
          herself, they, them, their, theirs, themselves) or a name: a capitalised word that is not
          the sentence's first word, or a first word that the text writes capitalised mid-sentence
          and never in lower case;
- none    otherwise ("The wind rose."), left out of the shares.
Sentences that are all speech, and speech tags (a sentence with a quote whose narration has at most
4 words: '"Go," she said.'), are skipped: a tag names the speaker, not the narrator's person.
Consistency is the share of classified sentences whose class equals the requested pov.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from novelcraft.core.text import WORD, narration_parts

Person = Literal["first", "second", "third"]
FIRST_PERSON = frozenset(["i", "me", "my", "mine", "myself", "we", "us", "our", "ours", "ourselves"])
SECOND_PERSON = frozenset(["you", "your", "yours", "yourself", "yourselves"])
THIRD_PERSON = frozenset(
    [
        "he",
        "him",
        "his",
        "himself",
        "she",
        "her",
        "hers",
        "herself",
        "they",
        "them",
        "their",
        "theirs",
        "themselves",
    ]
)
SPEECH_TAG_MAX_WORDS = 4


class PovReport(BaseModel):
    pov: Person | None
    consistency: float | None
    dominant: Person | None
    sentences: int
    classified: int
    shares: dict[str, float]


def sentence_person(narration: str, names: frozenset[str] = frozenset()) -> Person | None:
    """The person of one sentence's narration (quotes already removed). `names` are words known to
    be names, which count at the start of a sentence too, where any word is capitalised."""
    tokens = [m.group() for m in WORD.finditer(narration)]
    pronouns = {t.lower().replace("’", "'").split("'")[0] for t in tokens}
    if pronouns & FIRST_PERSON:
        return "first"
    if pronouns & SECOND_PERSON:
        return "second"
    if pronouns & THIRD_PERSON:
        return "third"
    if (tokens and tokens[0] in names) or any(_capitalised(t) for t in tokens[1:]):
        return "third"
    return None


def known_names(parts: list[str]) -> frozenset[str]:
    """Words written capitalised inside a sentence and never in lower case: names, used to recognise a
    name that opens a sentence ("Mara walked to the boat.")."""
    capitalised, lower = set(), set()
    for part in parts:
        tokens = [m.group() for m in WORD.finditer(part)]
        capitalised.update(t for t in tokens[1:] if _capitalised(t))
        lower.update(t.lower() for t in tokens)
    return frozenset(t for t in capitalised if t not in lower)


def pov_report(text: str, pov: Person | None = None) -> PovReport:
    parts = narration_parts(text)
    names = known_names([part for part, _ in parts])
    counts = {"first": 0, "second": 0, "third": 0}
    for part, has_speech in parts:
        if has_speech and sum(1 for _ in WORD.finditer(part)) <= SPEECH_TAG_MAX_WORDS:
            continue
        person = sentence_person(part, names)
        if person:
            counts[person] += 1
    classified = sum(counts.values())
    shares = {k: v / classified if classified else 0.0 for k, v in counts.items()}
    return PovReport(
        pov=pov,
        consistency=shares[pov] if pov and classified else None,
        dominant=max(counts, key=counts.get) if classified else None,
        sentences=len(parts),
        classified=classified,
        shares=shares,
    )


def _capitalised(token: str) -> bool:
    return token[0].isupper() and token != "I" and not token.isupper() and not token.startswith(("I'", "I’"))
