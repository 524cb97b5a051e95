"""A scripted answerer for synthesis requests, served by the fake OpenAI server.

:func:`synthesis_responder` reads which task a request asks for from its JSON schema and
which persona from the last ``Persona:`` line, and answers with a valid output that names
the persona (so outputs differ and are not deduplicated). Math solving requests get answers
from ``solve(problem) -> [answer per attempt]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.fake_openai import WORDS
from tests.support.runs import request_schema

Solve = Callable[[str, int], str | None]


def last_persona(body: dict[str, Any]) -> str:
    """The persona of the request's final user turn ("" when none)."""
    content = str(body["messages"][-1]["content"])
    found = re.search(r"^Persona: (.+)$", content, re.MULTILINE)
    return found.group(1).strip() if found else ""


def output_for(props: dict[str, Any], persona: str, seed: int = 0) -> dict[str, Any]:
    """A valid output for the task whose schema has ``props``, about ``persona``; the
    request seed picks a variant, as sampling would."""
    who = re.sub(r"[^A-Za-z0-9 ]", "", persona)[:50] or "someone"
    who = f"{who} {' '.join(WORDS[(seed >> shift) % len(WORDS)] for shift in range(0, 30, 5))}"
    if "problem" in props:
        return {
            "problem": f"{who} buys 3 crates of 12 apples each and sells 7. How many are left?",
            "topic": "arithmetic",
            "difficulty": "easy",
        }
    if "puzzle" in props:
        return {
            "puzzle": f"{who} stands left of a door and a cart.",
            "kind": "spatial",
            "answer": "A",
        }
    if "prompt" in props:
        return {"prompt": f"As {who}, help me plan next week around my work."}
    if "title" in props:
        return {"title": f"Notes of {who}", "text": f"{who} explains the craft in detail " * 3}
    if "backstory" in props:
        return {
            "name": f"Npc {who[:30]}",
            "role": "dock worker",
            "backstory": f"Grew up as {who} by the harbour.",
            "goals": ["find the keeper"],
            "speaking_style": "curt",
            "player_interaction": "trades rumours for coin",
        }
    if "parameters" in props:
        slug = re.sub(r"[^a-z0-9]+", "_", who.lower()).strip("_")[:30] or "tool"
        return {
            "name": f"plan_{slug}",
            "description": f"Plans the day of {who}.",
            "parameters": [
                {"name": "date", "type": "string", "description": "The day", "required": True}
            ],
            "returns": {"type": "object", "description": "A plan"},
            "dependencies": ["a calendar"],
        }
    raise AssertionError(f"unexpected schema {sorted(props)}")


def synthesis_responder(solve: Solve | None = None) -> Callable[[dict[str, Any]], Any]:
    """A responder for every synthesis task; ``solve(problem, attempt)`` answers math."""
    counters: dict[str, int] = {}

    def respond(body: dict[str, Any]) -> Any:
        props = request_schema(body).get("properties") or {}
        if "reasoning" in props and "answer" in props:
            problem = str(body["messages"][-1]["content"]).split("Problem:", 1)[1].strip()
            attempt = counters.get(problem, 0)
            counters[problem] = attempt + 1
            answer = solve(problem, attempt) if solve is not None else "29"
            return {"reasoning": "worked it out", "answer": answer} if answer else None
        return output_for(props, last_persona(body), int(body.get("seed") or 0))

    return respond


def write_personas(path: Path, texts: list[str]) -> Path:
    """A JSONL persona file with ids ``p0``, ``p1``, ..."""
    with path.open("w", encoding="utf-8") as fh:
        for i, text in enumerate(texts):
            fh.write(json.dumps({"id": f"p{i}", "persona": text}) + "\n")
    return path


PERSONAS = [
    "A lighthouse keeper who repairs clocks in winter",
    "A pediatric nurse who runs marathons",
    "A beekeeper selling honey at markets",
    "A railway engineer restoring steam engines",
    "A librarian who teaches chess to teenagers",
    "A fisherman worried about quotas",
]
