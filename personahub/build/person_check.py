"""Is a persona one person? Lexical checks, shared by the quality filter and the benchmark.

Two questions, answered cheaply from the words alone:

:func:`looks_like_person`
    Any sign of a person at all: a relative "who"/"whose", an age ("34-year-old"), a word
    from a list of person nouns (roles, relations, "person", "woman", "student", ...), or
    an agent noun (a word of 5+ letters ending in -er, -or, -ist, -ian, -eur or -ee that
    is not a common non-person word such as "water" or "color"). Bare names ("Mike
    Smith") and things ("A mystery company") fail it.
:func:`non_person_reason`
    Whether the description is headed by a group or a thing rather than one person. The
    head noun is the first of the first six words after "A"/"An" that is a person noun, a
    group noun ("team", "community", "company", ...) or a thing noun ("tool", "app",
    "library", "platform", ...). A group or thing noun directly followed by a person noun
    is a modifier ("a team leader", "a software engineer", "a library user") and the
    description stays a person. A machine adjective ("AI-powered", "automated") in front
    of the head makes it a thing ("An AI-powered text editor"). No head found: no verdict.

Both are heuristics on purpose: they cost nothing per persona, and the text-to-persona
answer also carries the model's own ``kind`` (see ``personahub.build.text_to_persona``).
``benchmarks/persona_quality.py`` measures what each of them catches.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
_PERSON_SIGNS = re.compile(r"\bwho(?:se)?\b|\b\d+[- ]years?[- ]old\b|\byear-old\b")
_AGENT_SUFFIX = re.compile(r"^[a-z-]{3,}(?:er|or|ist|ian|eur|ee)s?$")


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


PERSON_NOUNS = _word_set(
    """
    person people individual someone somebody man woman men women boy girl guy lady gentleman
    child kid teen teenager adult youth elder senior retiree pensioner student pupil graduate
    undergraduate parent mother father mom mum dad son daughter brother sister sibling twin
    grandparent grandmother grandfather grandchild aunt uncle cousin nephew niece wife husband
    spouse partner fiance fiancee widow widower friend neighbour neighbor colleague coworker
    classmate roommate flatmate mentor mentee apprentice intern patient client customer
    resident tenant citizen immigrant migrant refugee expat local native tourist traveller
    traveler visitor guest host fan enthusiast hobbyist amateur expert professional specialist
    veteran volunteer activist advocate nurse doctor physician surgeon dentist therapist
    pharmacist paramedic midwife caregiver carer nanny chef cook baker butcher farmer
    fisherman fisher gardener mechanic electrician plumber carpenter builder engineer architect
    scientist researcher scholar academic professor lecturer teacher tutor coach instructor
    principal librarian lawyer attorney judge solicitor clerk accountant banker broker trader
    analyst consultant manager director executive founder entrepreneur owner shopkeeper
    merchant vendor seller supplier buyer landlord agent assistant secretary receptionist
    officer policeman policewoman detective soldier sailor pilot captain driver courier
    cyclist commuter artist painter sculptor musician singer composer dancer actor actress
    writer author poet journalist reporter editor blogger photographer designer developer
    programmer coder technician worker labourer laborer employee employer staff cleaner
    janitor waiter waitress bartender barista cashier salesperson president politician
    councillor mayor official diplomat priest pastor vicar rabbi imam monk nun athlete player
    runner swimmer climber hiker gamer reader listener viewer subscriber user member homeowner
    homemaker housewife househusband parishioner servant peasant infant toddler adolescent
    participant applicant candidate newcomer survivor victim witness collector investor
    """
)
NON_PERSON_WORDS = _word_set(
    """
    other another after over under never ever however together water paper number order
    letter matter power corner summer winter weather better later rather whether either
    neither computer chapter border river silver flower finger tower dinner remember
    answer counter register master filter folder shelter theater theatre wonder cover
    center character offer corner cancer butter dollar collar honor honour color colour
    humor humour floor door error mirror motor sensor factor sector vector interior exterior
    major minor behavior behaviour favor favour labor labour flavor flavour tutorial
    exist assist insist resist persist consist twist wrist checklist playlist wishlist
    median guarantee committee coffee degree agree three whatever
    """
)


GROUP_NOUNS = _word_set(
    """
    team group community collective crew couple family club committee society association
    organisation organization company firm startup start-up agency department lab laboratory
    institute university school network coalition union consortium panel class audience
    population generation government council board staff band orchestra choir duo trio pair
    """
)
THING_NOUNS = _word_set(
    """
    tool toolkit app application software library framework platform program programme
    service system product device website site bot chatbot plugin plug-in package module
    model algorithm engine database script api game book article interface project
    extension wrapper backend frontend server client-side solution technology machine robot
    """
)
_MACHINE_ADJECTIVE = re.compile(
    r"^(?:ai|ml|llm|gpt)[-‑](?:powered|driven|based|enabled|generated)$"
    r"|^(?:automated|computerised|computerized|robotic|virtual|software-based)$"
)
_HEAD_WINDOW = 6


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _forms(word: str) -> set[str]:
    # Singular and plural: "engineers" -> {"engineers", "engineer"}.
    return {word, word[:-1]} if word.endswith("s") else {word}


def is_person_word(word: str) -> bool:
    """Whether a lowercase word names a person (a person noun or an agent noun)."""
    forms = _forms(word)
    if forms & PERSON_NOUNS:
        return True
    return len(word) >= 5 and not forms & NON_PERSON_WORDS and bool(_AGENT_SUFFIX.match(word))


def looks_like_person(text: str) -> bool:
    """Whether ``text`` shows any sign of describing a person (see the module docstring)."""
    lowered = text.lower()
    if _PERSON_SIGNS.search(lowered):
        return True
    return any(is_person_word(word) for word in _words(lowered))


def non_person_reason(text: str) -> str | None:
    """``"group"`` or ``"thing"`` when the description is headed by one, else None."""
    words = _words(text)
    if words[:1] in (["a"], ["an"]):
        words = words[1:]
    head = words[:_HEAD_WINDOW]
    for i, word in enumerate(head):
        if _MACHINE_ADJECTIVE.match(word):
            return "thing"
        forms = _forms(word)
        kind = "group" if forms & GROUP_NOUNS else "thing" if forms & THING_NOUNS else None
        if kind is not None:
            following = words[i + 1] if i + 1 < len(words) else ""
            return None if is_person_word(following) else kind
        if is_person_word(word):
            return None
    return None
