"""The floor's scene events: what happens in a scene the model could not plan, one distinct event each.

A floor goal used to be the beat's action with the cast and a place filled in ("Isla Mackay makes a
first attempt and pays for it again, and the cost grows, with Tobias Reid, at the lighthouse"). Every
goal of a beat then shared its words, so no scene could keep to its own goal more than to the others',
and the default model's scenes did not: its goal adherence stayed where an unplanned book's was. Here
each scene of the floor gets an event of its own, with its own verb, object and question: someone
searches a locked room, lies about last night, burns papers, sets a trap. The beat still says what the
scene is for (`SceneGoal.beat` and `change`); the event says what happens.

Events are grouped by where they sit in a book (the opening quarter, the middle half, the last
quarter) and taken in order within each group, so a book opens on arrivals and questions and ends on
confrontations and confessions. Slots: `{F}` the focal character at the start of the goal, `{O}`
another of the cast, `{at}` the setting with its preposition ("at the lighthouse", "in Kent"), `{T}` a
thing of the premise. Events are written in the third person; a second-person hero takes them through
`second_person`, so a verb follows `{F}` and each "and" of the hero's, and `{F}` is never a later
subject.

Pure data and pure functions.
"""

from __future__ import annotations

# (goal, hook) per event.
OPENING: tuple[tuple[str, str], ...] = (
    (
        "{F} arrives {at} at dusk and finds a lamp burning that {O} swears no one lit",
        "Who lit the lamp?",
    ),
    (
        "{F} sorts through old papers {at} with {O} and finds a note about {T} that no one has mentioned",
        "Who wrote the note, and when?",
    ),
    (
        "{F} asks {O} straight out about {T} over a meal {at}, and {O} changes the subject",
        "What is {O} keeping back?",
    ),
    (
        "{F} hears someone moving {at} after dark and goes out with a light, leaving {O} asleep",
        "Who else is out there?",
    ),
    ("{F} finds a stranger's coat {at} and hides it before {O} comes in", "Whose coat is it?"),
    ("{F} writes a letter to {O} about {T} and burns it unsent", "What could not be written down?"),
    ("{F} sees {O} slip away {at} and follows at a distance", "Where is {O} going in secret?"),
    ("{F} makes {O} a promise {at} that cannot be kept", "What will the broken promise cost?"),
    (
        "{F} counts the money left {at}: it is short, though only {O} had the key",
        "Who has been taking the money?",
    ),
    ("{F} meets {O} by chance {at} and learns one new thing about {T}", "What else has been kept from view?"),
    ("{F} mends a broken door {at} with {O} and finds it was forced from the inside", "Who forced the door?"),
    (
        "{F} listens to {O} tell an old story about {T} and catches a detail that does not fit",
        "Why did {O} lie?",
    ),
)
MIDDLE: tuple[tuple[str, str], ...] = (
    ("{F} searches a locked room {at} for {T} while {O} keeps watch", "What was in the locked room?"),
    ("{F} lies to {O} about last night, and {O} catches the lie", "What will {O} do with the lie?"),
    ("{F} quarrels with {O} {at} over {T} until one of them says too much", "What cannot be unsaid?"),
    ("{F} takes a key from {O}'s coat {at} and opens what it locks", "What did the key open?"),
    ("{F} overhears {O} talking to someone unseen {at} about {T}", "Who was {O} talking to?"),
    ("{F} goes out into the dark {at} to look for {O}, who has not come back", "Is {O} still alive?"),
    ("{F} shows {O} a torn page about {T} and watches for the lie", "What does {O}'s silence mean?"),
    (
        "{F} strikes a bargain with {O} {at}: help now, the truth about {T} later",
        "Will {O} keep the bargain?",
    ),
    ("{F} finds a photograph {at} of {O} beside a stranger", "Who is the stranger in the photograph?"),
    ("{F} is locked out {at} in the cold and must ask {O} for help", "Who turned the lock?"),
    ("{F} follows wet footprints {at} to a door that {O} swore was shut", "Who came in from outside?"),
    ("{F} catches {O} burning papers {at} and saves one half-burnt page", "What does the page say?"),
    ("{F} tells {O} a small secret about {T} to see whether it travels", "Whom will {O} tell?"),
    ("{F} keeps watch all night {at} for whoever comes for {T}, and {O} comes", "Why did {O} come?"),
    ("{F} accuses {O} before witnesses {at} and is proved wrong", "If not {O}, then who?"),
    ("{F} loses the only key {at} and turns the place over while {O} watches", "Who has the key now?"),
    (
        "{F} sits with {O} through a fever {at} and hears a confession in the delirium",
        "Was the confession true?",
    ),
    ("{F} runs from {O} {at} and hides until the footsteps pass", "What does {O} want?"),
    ("{F} reads an old entry about {T} aloud, and {O} turns pale", "Why does {O} fear the entry?"),
    ("{F} breaks a window {at} to get in before {O} returns", "What was worth breaking in for?"),
    ("{F} finds a name scratched into the table {at} and asks {O} whose it is", "Whose name is it?"),
    ("{F} trades a favour with {O} for a map {at} and finds a mark on it", "What does the mark stand for?"),
    (
        "{F} receives a warning {at} that only {O} could have written: leave {T} alone",
        "Who sent the warning?",
    ),
    ("{F} saves {O} from a fall {at} and finds a second set of tracks", "Who else was there?"),
)
ENDING: tuple[tuple[str, str], ...] = (
    ("{F} sets a trap {at} with {T} as the bait, and {O} walks into it", "Was {O} the one all along?"),
    ("{F} confronts {O} {at} with every proof gathered so far", "What will {O} admit?"),
    ("{F} hears {O} confess the truth about {T} {at}", "Can the truth be forgiven?"),
    ("{F} must choose {at} between {T} and {O}'s safety", "What will the choice cost?"),
    ("{F} fights {O} for {T} {at}, and one of them is hurt", "Who is hurt, and how badly?"),
    ("{F} carries {O} to safety {at} as the last way out closes", "Will they both get out?"),
    ("{F} hands {O} the last proof about {T} and lets {O} decide", "What will {O} decide?"),
    ("{F} tells {O} the whole story {at}, leaving nothing out", "Will {O} believe it?"),
    ("{F} opens the last locked box {at} in front of {O}", "What was hidden?"),
    ("{F} lets {O} go free {at} and watches the light fade", "Was it right to let {O} go?"),
    (
        "{F} stands with {O} {at} where it began and lights a lamp for the one who is gone",
        "What comes after?",
    ),
    ("{F} writes a last letter to {O} {at} and sends it this time", "What will {O} answer?"),
)
PARTS = (OPENING, MIDDLE, ENDING)


def part_of(index: int, total: int) -> int:
    """0, 1 or 2: whether scene `index` (0-based) of `total` is in the opening quarter, the middle half
    or the last quarter of the book."""
    position = index / max(1, total)
    return 0 if position < 0.25 else 2 if position >= 0.75 else 1


def event(index: int, total: int) -> tuple[str, str]:
    """Scene `index`'s event (goal and hook templates): the next of its part's, in order, the part's
    events again after its last."""
    part = part_of(index, total)
    order = index - next(i for i in range(total) if part_of(i, total) == part)
    events = PARTS[part]
    return events[order % len(events)]


IRREGULAR = {"is": "are", "has": "have", "goes": "go", "does": "do"}
# After "and", these start a clause of someone else's ("and his", "and this"): no verb to conjugate.
NOT_VERBS = frozenset(["his", "its", "this", "thus", "was", "as", "less"])


def second_person(phrase: str) -> str:
    """'meets the event and loses a friend' -> 'meet the event and lose a friend': the hero's verbs for
    a second-person book (the phrase's first word and each word after "and" or "or")."""
    out, conjugate = [], True
    for word in phrase.split():
        if conjugate and word not in NOT_VERBS:
            if word in IRREGULAR:
                word = IRREGULAR[word]
            elif word.endswith(("ches", "shes", "sses", "xes")):
                word = word[:-2]
            elif word.endswith("s") and not word.endswith("ss"):
                word = word[:-1]
        conjugate = word in {"or", "and"}
        out.append(word)
    return " ".join(out)


# A name that opens with one of these is said whole every time ("Colonel Brandt", not "Colonel").
TITLES = frozenset(["mr", "mrs", "miss", "ms", "dr", "colonel", "captain", "major", "lady", "lord", "sir"])


def short_name(name: str) -> str:
    """The name a text uses once it has said the whole: "Morag" for "Morag Mackay"."""
    words = name.split()
    return name if len(words) < 2 or words[0].lower().rstrip(".") in TITLES else words[0]


def capitalised(name: str) -> str:
    """The name with its first letter in capitals, the rest as written: "You", "Isla"."""
    return name[:1].upper() + name[1:]


def fill(template: str, focus: str, other: str, at: str, thing: str, *, first_mention: bool = True) -> str:
    """A template with its slots filled: `other`'s whole name at its first mention (with
    `first_mention`), the short one after; the hero's verbs in the second person when `focus` is
    "you"."""
    if template.startswith("{F} ") and focus.lower() == "you":
        template = "{F} " + second_person(template[4:])
    focus = capitalised(focus)
    other = other or "someone"
    if first_mention and "{O}" in template:
        head, tail = template.split("{O}", 1)
        template = head + other.replace("{", "{{").replace("}", "}}") + tail
    text = template.format(F=focus, O=short_name(other), at=at, T=thing or "what was lost")
    return " ".join(text.split())
