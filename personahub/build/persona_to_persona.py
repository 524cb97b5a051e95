"""Persona-to-Persona: ask who is in a close relationship with a persona.

One request per parent persona asks for ``n`` related people, each with a persona sentence
and a relation label. The label is an enum of :data:`RELATIONS` plus ``"other"`` in the
answer schema, so a grammar-constrained model cannot emit anything else and the gateway's
validation rejects (and re-asks) an out-of-vocabulary label from a server that does not
enforce the schema. With ``"other"`` the optional ``other`` field says what the relation
is; it is mapped by :func:`relation_label` (common synonyms such as "wife" -> ``partner``
or "coworker" -> ``colleague``) and otherwise stored as ``other: <label>``, so a label
that is not a relation ("favorite", "genre") is visible as such.

Repeated over k hops this reaches people that texts rarely mention directly (the Persona
Hub paper uses six hops). The pipeline stores a
:class:`~personahub.store.PersonaEdge` parent -> child with the label, and only expands
children that survived the quality filters and dedup, so cycles and repeats cannot make
the count grow without bound.

:func:`unexpanded` pages through the personas a hop still has to expand: generated ones
at the previous hop with no outgoing edge and no child yet, which is what makes hops
resumable.

Unlike Text-to-Persona there is no worked example: a small model copied the example's
relation labels onto every parent (18 of 41 edges were the example's ``spouse`` or
``student``, even for "a team of engineers"). Without one, a prompt that asked first and
gave the person last, and a schema with the relation before the persona, made
SmolLM2-135M answer mostly with the parent copied back (47 of 64 hop answers dropped as
``echo``); the prompt now gives the person first and asks for *other* people, and each
answer writes its persona before its relation. Every string and list in the schema is
bounded and each persona must start with "A" or "An", so a small model under a grammar
stays on track.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model
from sqlalchemy import and_, exists
from sqlalchemy.orm import aliased
from sqlmodel import col, func, select

from personahub import prompts
from personahub.build.text_to_persona import (
    GRANULARITIES,
    PERSONA_MAX_CHARS,
    PERSONA_PATTERN,
    Candidate,
)
from personahub.llm import LLMError, LLMRequest, LLMResult, Message
from personahub.llm.gateway import Gateway
from personahub.llm.seeds import request_seed
from personahub.store import Persona, PersonaEdge, PersonaStore, stored_id

RELATION_MAX_CHARS = 40
# The optional "other" field: empty, or the same letters (llama.cpp's grammar converter
# takes no "(?:...)?" group, so the empty case is a zero minimum instead).
OTHER_PATTERN = r"^[A-Za-z /-]{0,40}$"
DEFAULT_RELATION = "related"
# The relation vocabulary (documented in the module docstring). Pairs name both sides.
RELATIONS: tuple[str, ...] = (
    "partner",
    "family",
    "friend",
    "neighbour",
    "colleague",
    "manager-report",
    "mentor-mentee",
    "teacher-student",
    "patient-caregiver",
    "customer-supplier",
    "client-professional",
    "classmate",
    "teammate",
    "roommate",
    "community",
)
_SYNONYMS: dict[str, str] = {
    **dict.fromkeys(
        [
            "spouse",
            "wife",
            "husband",
            "girlfriend",
            "boyfriend",
            "fiance",
            "fiancee",
            "partner-spouse",
        ],
        "partner",
    ),
    **dict.fromkeys(
        [
            "parent",
            "mother",
            "father",
            "son",
            "daughter",
            "child",
            "sibling",
            "brother",
            "sister",
            "cousin",
            "aunt",
            "uncle",
            "grandparent",
            "grandmother",
            "grandfather",
            "grandchild",
            "niece",
            "nephew",
            "relative",
            "in-law",
        ],
        "family",
    ),
    **dict.fromkeys(["best friend", "close friend", "childhood friend"], "friend"),
    "neighbor": "neighbour",
    **dict.fromkeys(
        ["coworker", "co-worker", "workmate", "co-author", "collaborator"], "colleague"
    ),
    **dict.fromkeys(["boss", "manager", "supervisor", "employee", "employer"], "manager-report"),
    **dict.fromkeys(["mentor", "mentee", "apprentice", "protege"], "mentor-mentee"),
    **dict.fromkeys(["teacher", "student", "pupil", "tutor"], "teacher-student"),
    **dict.fromkeys(["patient", "caregiver", "carer", "doctor", "nurse"], "patient-caregiver"),
    **dict.fromkeys(["customer", "supplier", "vendor", "buyer", "seller"], "customer-supplier"),
    **dict.fromkeys(["client", "professional"], "client-professional"),
    **dict.fromkeys(["flatmate", "housemate"], "roommate"),
}
OTHER_RELATION = "other"
# The label a grammar may emit: the vocabulary or "other" (then the ``other`` field says
# what). An enum, so a constrained decoder cannot invent "person" or "genre".
RelationChoice = Literal[(*RELATIONS, OTHER_RELATION)]  # type: ignore[valid-type]
GENERATED_ORIGINS = ("text_to_persona", "persona_to_persona")
_TOKENS_PER_PERSON = 110
_SEPARATORS = re.compile(r"\s*(?:/|\bto\b|\band\b|–|—)\s*")


class RelatedPerson(BaseModel):
    """One related person: the relation to the parent and their persona."""

    persona: str = Field(
        max_length=PERSONA_MAX_CHARS,
        pattern=PERSONA_PATTERN,
        description='The related person, starting with "A" or "An".',
    )
    relation: RelationChoice = Field(
        description='Relation to the given person: one of the listed relations, or "other".',
    )
    # Optional, so a grammar puts it last and a model may leave it out.
    other: str = Field(
        default="",
        max_length=RELATION_MAX_CHARS,
        pattern=OTHER_PATTERN,
        description='Only when relation is "other": that relation in a few words.',
    )

    def label(self) -> str:
        """The stored edge label: the vocabulary term, or ``"other: <what>"`` (mapped
        through :func:`relation_label`, so an "other" that is a synonym still lands in
        the vocabulary)."""
        if self.relation != OTHER_RELATION:
            return self.relation
        return relation_label(self.other) if self.other.strip() else OTHER_RELATION


@functools.cache
def related_schema(n: int) -> type[BaseModel]:
    """The answer schema for ``n`` related people: exactly ``n`` items, so a grammar
    neither stops early nor runs on."""
    if n < 1:
        raise ValueError("n must be at least 1")
    return create_model(
        "RelatedPeople",
        people=(list[RelatedPerson], Field(min_length=n, max_length=n)),
    )


def normalise_relation(label: str) -> str:
    """Lowercase, single-spaced, hyphen-joined relation label ("Mentor / Mentee" ->
    "mentor-mentee"); empty labels become ``"related"``."""
    text = " ".join(label.lower().split()).strip(" -/.,;:'\"")
    text = _SEPARATORS.sub("-", text)
    text = re.sub(r"-+", "-", text).strip("-")
    return text[:RELATION_MAX_CHARS] or DEFAULT_RELATION


def relation_label(label: str) -> str:
    """The vocabulary term for a model's relation label, or ``"other: <label>"``.

    Pairs match in either order ("student-teacher" -> ``teacher-student``), one side of a
    pair or a synonym maps to it ("student" -> ``teacher-student``, "wife" -> ``partner``).
    """
    text = normalise_relation(label)
    if text in RELATIONS:
        return text
    reversed_pair = "-".join(reversed(text.split("-")))
    if reversed_pair in RELATIONS:
        return reversed_pair
    if text in _SYNONYMS:
        return _SYNONYMS[text]
    return f"other: {text}"


def p2p_messages(persona: str, n: int, granularity: str) -> list[Message]:
    """The chat messages of one Persona-to-Persona request: the system turn, then the
    question (no worked example, see the module docstring).

    Raises:
        ValueError: If ``granularity`` is unknown or ``n`` < 1.
    """
    if granularity not in GRANULARITIES:
        raise ValueError(
            f"unknown granularity {granularity!r}; choose from {', '.join(GRANULARITIES)}"
        )
    if n < 1:
        raise ValueError("n must be at least 1")
    content = prompts.render(
        "persona/persona_to_persona",
        persona=persona,
        n=n,
        granularity=granularity,
        relations=RELATIONS,
    )
    return [
        {"role": "system", "content": prompts.render("persona/system")},
        {"role": "user", "content": content},
    ]


def p2p_request(persona: str, n: int, granularity: str, seed: int = 0) -> LLMRequest:
    """One Persona-to-Persona request for ``n`` related people."""
    return LLMRequest(
        messages=p2p_messages(persona, n, granularity),
        schema=related_schema(n),
        max_tokens=_TOKENS_PER_PERSON * n + 48,
        seed=request_seed(seed, "p2p", persona, n, granularity),
        tag="p2p",
    )


def candidates_from(
    result: LLMResult,
    parent_id: int | None,
    parent_text: str,
    parent_hop: int,
    granularity: str,
    fallback_model: str = "",
) -> list[Candidate] | LLMError:
    """Turn one Persona-to-Persona result into candidates (hop = parent hop + 1)."""
    if result.error is not None:
        return result.error
    people: list[Any] = getattr(result.parsed, "people", [])
    out = []
    for person in people:
        relation = person.label()
        out.append(
            Candidate(
                text=person.persona,
                origin="persona_to_persona",
                context=parent_text,
                granularity=granularity,
                parent_id=parent_id,
                hop=parent_hop + 1,
                relation=relation,
                model=result.model or fallback_model,
                attributes={"relation": relation},
            )
        )
    return out


async def persona_to_persona(
    client: Gateway,
    parents: Sequence[tuple[int | None, str, int]],
    n: int = 2,
    granularity: str = "coarse",
    concurrency: int | None = None,
    on_result: Callable[[int, LLMResult], None] | None = None,
    seed: int = 0,
) -> list[list[Candidate] | LLMError]:
    """Ask, for every parent persona, for ``n`` people in a close relationship with it.

    Args:
        client: The LLM gateway.
        parents: ``(persona id, persona text, hop)`` per parent.
        n: Related people per parent.
        granularity: ``coarse`` or ``fine`` (style of the new personas).
        concurrency: Requests in flight (the gateway's setting when None).
        on_result: Called as each request finishes (index into parents).
        seed: Mixed into each request's sampling seed.

    Returns:
        Per parent: its candidates (hop = parent hop + 1) or the request's error.
    """
    requests = [p2p_request(text, n, granularity, seed) for _, text, _ in parents]
    results = await client.batch(requests, concurrency=concurrency, on_result=on_result)
    return [
        candidates_from(result, pid, text, hop, granularity, client.model)
        for result, (pid, text, hop) in zip(results, parents, strict=True)
    ]


# -- which personas a hop expands --------------------------------------------------------


def _unexpanded_at(hop: int) -> Any:
    # Generated personas at ``hop`` without an outgoing edge or a child: never expanded,
    # or expanded by a request that failed. Imported personas are not ours to grow.
    child = aliased(Persona)
    return and_(
        col(Persona.hop) == hop,
        col(Persona.origin).in_(GENERATED_ORIGINS),
        ~exists().where(col(PersonaEdge.src_id) == col(Persona.id)),
        ~exists().where(col(child.parent_id) == col(Persona.id)),
    )


def count_unexpanded(store: PersonaStore, hop: int) -> int:
    """How many generated personas at ``hop`` have not been expanded yet."""
    with store.session() as session:
        stmt = select(func.count()).select_from(Persona).where(_unexpanded_at(hop))
        return int(session.exec(stmt).one())


def unexpanded(
    store: PersonaStore, hop: int, page_size: int
) -> Iterator[list[tuple[int, str, int]]]:
    """Generated personas at ``hop`` not expanded yet, as ``(id, text, hop)`` pages.

    Keyset pagination: each page is a fresh short read, and children stored meanwhile
    (at ``hop + 1``) do not disturb it.
    """
    last_id = 0
    condition = _unexpanded_at(hop)
    while True:
        with store.session() as session:
            rows = list(
                session.exec(
                    select(Persona.id, Persona.text, Persona.hop)
                    .where(condition, col(Persona.id) > last_id)
                    .order_by(col(Persona.id))
                    .limit(page_size)
                )
            )
        if not rows:
            return
        last_id = stored_id(rows[-1][0])
        yield [(stored_id(i), str(t), int(h)) for i, t, h in rows]
