"""Text-to-Persona: ask who is likely to read, write, like or dislike a text.

One text yields one persona per requested *angle*. The *granularity* setting picks the
prompt: ``coarse`` asks for a short, general persona ("A secondary-school biology
teacher"), ``fine`` for one specific sentence with job, stage of life, place and concerns.

The answer is structured (:class:`PersonaAnswer`): the persona sentence plus the
attributes the text supports (occupation, age band, location, up to four interests), left
empty where it does not. Every string and list in the schema is bounded, and the persona
must start with "A" or "An": under the local backend's grammar a 135M model then cannot
loop, and cannot answer with a bare name or a copy of the text's first sentence.

The answer also carries ``kind``: the model's own word on whether it described one person,
a group, an organisation or a product/tool. Anything but ``one person`` is dropped
(``not_one_person``); the lexical guard of :mod:`personahub.build.person_check` catches
what the model gets wrong (``group_or_thing``).

A worked example (``prompts/persona/examples.j2``) goes first as an earlier chat turn. In
one trial on SmolLM2-135M (8 texts x 2 angles) it lifted the answers that pass the quality
filters from 7 of 16 to 16 of 16, and the model then left unsupported attributes empty. It
cannot leak unnoticed: a copy of its personas is an ``echo`` of the context (which includes
the example), and a persona that follows its pattern without fitting the real text scores
a low relevance to that text (see ``personahub.build.pipeline``).

Candidates from both generation stages share :class:`Candidate`, which the pipeline
filters, deduplicates and turns into :class:`~personahub.store.PersonaIn` rows.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from personahub import prompts
from personahub.llm import LLMError, LLMRequest, LLMResult, Message
from personahub.llm.gateway import Gateway
from personahub.llm.seeds import plain_text, request_seed
from personahub.store import PersonaIn

ANGLES: tuple[str, ...] = ("read", "write", "like", "dislike")
DEFAULT_ANGLES: tuple[str, ...] = ("read", "write")
GRANULARITIES: tuple[str, ...] = ("coarse", "fine")
PERSONA_MAX_CHARS = 200
# "A"/"An", a space, then 8-190 characters without quotes, backslashes or newlines. The
# bounded repetition is what the grammar enforces (llama.cpp ignores maxLength next to a
# pattern), and quotes are excluded so the model cannot close the JSON string early.
PERSONA_PATTERN = r'^An? [^"\\\n\r\t]{8,190}$'
T2P_MAX_TOKENS = 384


PersonaKind = Literal["one person", "group of people", "organisation", "product or tool"]
AgeBand = Literal["", "under 18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
Interest = Annotated[str, Field(max_length=40, pattern=plain_text(40))]


class PersonaAnswer(BaseModel):
    """The structured Text-to-Persona answer. Empty strings/lists mean "not supported"."""

    persona: str = Field(
        max_length=PERSONA_MAX_CHARS,
        pattern=PERSONA_PATTERN,
        description='The person, starting with "A" or "An".',
    )
    occupation: str = Field(
        max_length=60, pattern=plain_text(60), description="Job or role, or empty."
    )
    age_band: AgeBand = Field(description="Age band, or empty.")
    location: str = Field(
        max_length=60, pattern=plain_text(60), description="Where they live, or empty."
    )
    interests: list[Interest] = Field(max_length=4, description="Up to four interests.")
    kind: PersonaKind = Field(description="What the persona describes: one person or not.")

    def attributes(self) -> dict[str, Any]:
        """The non-empty attributes, stripped (the small model likes ``[""]``)."""
        out: dict[str, Any] = {}
        for key in ("occupation", "age_band", "location"):
            value = " ".join(str(getattr(self, key)).split()).strip(" ,.;")
            if value:
                out[key] = value
        interests = [" ".join(i.split()).strip(" ,.;") for i in self.interests]
        interests = [i for i in dict.fromkeys(interests) if i]
        if interests:
            out["interests"] = interests
        return out


@dataclass
class Candidate:
    """A generated persona on its way to the store.

    Attributes:
        text: The persona sentence.
        origin: ``text_to_persona`` or ``persona_to_persona``.
        context: What it was derived from (source text or parent persona), for the echo
            check of the quality filter.
        angle: Text-to-Persona angle.
        granularity: ``coarse`` or ``fine``.
        source_text_id: Store id of the source text (set once the text is registered).
        parent_id: Store id of the parent persona (Persona-to-Persona).
        hop: 0 for Text-to-Persona, parent hop + 1 for Persona-to-Persona.
        relation: Relation label to the parent (Persona-to-Persona).
        kind: What the model says the persona is (Text-to-Persona), see ``PersonaKind``.
        source: The source text (Text-to-Persona), for the relevance score.
        model: The model that answered.
        attributes: Extra fields stored with the persona.
    """

    text: str
    origin: str
    context: str = ""
    angle: str | None = None
    granularity: str | None = None
    source_text_id: int | None = None
    parent_id: int | None = None
    hop: int = 0
    relation: str | None = None
    kind: str | None = None
    source: str = ""
    model: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def to_persona_in(self) -> PersonaIn:
        """The store row for this candidate."""
        return PersonaIn(
            text=self.text,
            origin=self.origin,
            angle=self.angle,
            granularity=self.granularity,
            source_text_id=self.source_text_id,
            parent_id=self.parent_id,
            hop=self.hop,
            model=self.model,
            attributes=self.attributes,
        )


@functools.cache
def examples() -> dict[str, Any]:
    """The worked examples of ``prompts/persona/examples.j2`` (plain JSON)."""
    return json.loads(prompts.render("persona/examples"))


def example_context(granularity: str) -> str:
    """The Text-to-Persona example as one text, so the echo check catches copies of it."""
    example = examples()["text_to_persona"]
    return "\n".join([example["text"], *(a["persona"] for a in example[granularity].values())])


def _check(angle: str, granularity: str) -> None:
    if angle not in ANGLES:
        raise ValueError(f"unknown angle {angle!r}; choose from {', '.join(ANGLES)}")
    if granularity not in GRANULARITIES:
        raise ValueError(
            f"unknown granularity {granularity!r}; choose from {', '.join(GRANULARITIES)}"
        )


def t2p_messages(text: str, angle: str, granularity: str) -> list[Message]:
    """The chat messages of one Text-to-Persona request: the system turn, a worked example
    (question and answer), then the question about ``text``.

    Raises:
        ValueError: If ``angle`` or ``granularity`` is unknown.
    """
    _check(angle, granularity)
    example = examples()["text_to_persona"]

    def ask(about: str) -> Message:
        content = prompts.render(
            "persona/text_to_persona", text=about, angle=angle, granularity=granularity
        )
        return {"role": "user", "content": content}

    answer = json.dumps(example[granularity][angle], ensure_ascii=False)
    return [
        {"role": "system", "content": prompts.render("persona/system")},
        ask(example["text"]),
        {"role": "assistant", "content": answer},
        ask(text),
    ]


def t2p_request(text: str, angle: str, granularity: str, seed: int = 0) -> LLMRequest:
    """One Text-to-Persona request (structured into :class:`PersonaAnswer`)."""
    return LLMRequest(
        messages=t2p_messages(text, angle, granularity),
        schema=PersonaAnswer,
        max_tokens=T2P_MAX_TOKENS,
        seed=request_seed(seed, "t2p", text, angle, granularity),
        tag="t2p",
    )


def candidate_from(
    result: LLMResult, text: str, angle: str, granularity: str, fallback_model: str = ""
) -> Candidate | LLMError:
    """Turn one Text-to-Persona result into a candidate, or its error value."""
    if result.error is not None:
        return result.error
    answer = result.parsed
    assert isinstance(answer, PersonaAnswer)
    return Candidate(
        text=answer.persona,
        origin="text_to_persona",
        context=f"{text}\n{example_context(granularity)}",
        angle=angle,
        granularity=granularity,
        kind=answer.kind,
        source=text,
        model=result.model or fallback_model,
        attributes=answer.attributes(),
    )


async def text_to_persona(
    client: Gateway,
    texts: Sequence[str],
    angles: Sequence[str] = DEFAULT_ANGLES,
    granularity: str = "coarse",
    concurrency: int | None = None,
    on_result: Callable[[int, LLMResult], None] | None = None,
    seed: int = 0,
) -> list[list[Candidate | LLMError]]:
    """Ask, for every text and angle, who is likely to read/write/like/dislike it.

    Args:
        client: The LLM gateway.
        texts: Input texts.
        angles: Angles from :data:`ANGLES`; one persona per angle.
        granularity: ``coarse`` or ``fine``.
        concurrency: Requests in flight (the gateway's setting when None).
        on_result: Called as each request finishes (index into texts x angles).
        seed: Mixed into each request's sampling seed.

    Returns:
        Per text, per angle (in the given order): a candidate or the request's error.
    """
    requests = [t2p_request(text, angle, granularity, seed) for text in texts for angle in angles]
    results = await client.batch(requests, concurrency=concurrency, on_result=on_result)
    out: list[list[Candidate | LLMError]] = []
    for i, text in enumerate(texts):
        row = results[i * len(angles) : (i + 1) * len(angles)]
        out.append(
            [
                candidate_from(r, text, angle, granularity, client.model)
                for r, angle in zip(row, angles, strict=True)
            ]
        )
    return out
