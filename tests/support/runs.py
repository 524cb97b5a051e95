"""Small finished run databases for tests, produced by the real runner against a fake model.

:func:`make_run` writes a persona file and a scenario into ``tmp_path``, runs the scenario end to
end through :func:`sandbox.runner.start_run` with the gateway on an in-process
:class:`~personahub.llm.testing.FunctionBackend` (no HTTP, no latency, no cache), and returns
the run database. Answers come from a ``responder``, which sees each call as the OpenAI request
body the fake HTTP server would get (:func:`responder_backend`):

* by default :func:`varied_responder`, which fills the requested JSON schema with values derived
  from a hash of the persona and the request seed, so distributions are not degenerate;
* or a script: :func:`scripted` turns ``fn(persona_index, step) -> answer`` into a responder, so a
  test knows exactly what every agent said at every step.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import update
from sqlmodel import Session, col

from personahub.llm import LLMClient, load_settings
from personahub.llm.backends import BackendCall
from personahub.llm.seeds import request_seed
from personahub.llm.testing import FunctionBackend
from personahub.llm.testing.schema_instances import generate_instance
from sandbox.run_options import RunOptions
from sandbox.rundb import RunDatabase, RunRow
from sandbox.runner import start_run

Responder = Callable[[dict[str, Any]], Any]
Script = Callable[[int, int], Any]

OCCUPATIONS = (
    "night-shift nurse who cycles to the hospital",
    "retired bus driver who loves gardening",
    "student who works part-time in a cafe",
    "software developer who works from home",
    "primary school teacher with two children",
    "self-employed plumber who drives a van",
    "accountant who commutes by train",
    "chef at a busy city-centre restaurant",
)
AGE_BANDS = ("18-34", "35-54", "55+")
LOCATIONS = ("city centre", "suburb")
N_PERSONAS = 24

DEFAULT_SCENARIO = """\
name: test-run
description: A city bike-share subscription launches, then cuts its price.
seed: 5
population: {source: people.jsonl, sample: 16}
graph: {type: watts_strogatz, k: 4, p: 0.1, relation: acquaintance}
steps: 3
timeline:
  - {step: 0, source: the news, content: "CityBike launches a subscription at $29 a month."}
  - {step: 2, source: the news, content: "CityBike cuts the price to $19 a month."}
interaction: {activation: 1.0, word_of_mouth: true}
questions:
  - {id: intent, type: choice, ask: "Would you subscribe?", options: ["yes", "maybe", "no"]}
  - {id: price_ok, type: likert, ask: "Is the price reasonable?", scale: 5}
  - {id: spend, type: number, ask: "How much would you pay a month?", min: 0, max: 60, unit: "$"}
  - {id: wish, type: text, ask: "What would make you use it more?", max_length: 120}
segments: [age_band, community]
report: {transcripts_per_segment: 1}
"""


def personas(n: int = N_PERSONAS) -> list[dict[str, Any]]:
    """The test population; persona ``i`` says ``Persona <i>`` so a responder can find it."""
    return [
        {
            "id": f"p{i:02d}",
            "persona": f"Persona {i:02d}: a {OCCUPATIONS[i % len(OCCUPATIONS)]}.",
            "age_band": AGE_BANDS[i % len(AGE_BANDS)],
            "location": LOCATIONS[i % len(LOCATIONS)],
        }
        for i in range(n)
    ]


def persona_index(body: dict[str, Any]) -> int | None:
    """The persona index named in a request's system message, or None."""
    for message in body.get("messages", []):
        if message.get("role") == "system":
            found = re.search(r"Persona (\d+):", str(message.get("content", "")))
            if found:
                return int(found.group(1))
    return None


def request_schema(body: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema a request asks for ({} when none)."""
    fmt = body.get("response_format") or {}
    spec = fmt.get("json_schema") or {}
    return spec.get("schema") or fmt.get("schema") or {}


def _unit(*parts: Any) -> float:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


REACTIONS = (
    "I love this, it fits my day perfectly.",
    "Sounds useful, but I need to think about the cost.",
    "Not for me, I never cycle anywhere.",
    "Interesting idea; I might try it once.",
)


def varied_responder(body: dict[str, Any]) -> Any:
    """Fill the requested schema with values varied by persona and, a little, by step.

    Each field mostly keeps a per-persona value and sometimes drifts with the request seed (which
    changes every step), so answers differ across agents and move a bit over time.
    """
    schema = request_schema(body)
    props = schema.get("properties") or {}
    if not props:
        return None
    persona = persona_index(body)
    seed = body.get("seed", 0)
    out: dict[str, Any] = {}
    for name, spec in props.items():
        drift = _unit(persona, name, seed) < 0.3
        u = _unit(persona, name, seed if drift else "base")
        if name == "reaction":
            out[name] = REACTIONS[int(u * len(REACTIONS))]
        elif name == "post":
            out[name] = "" if u < 0.3 else f"Have you seen the new offer? ({persona})"
        elif "enum" in spec:
            out[name] = spec["enum"][int(u * len(spec["enum"]))]
        elif spec.get("type") == "integer":
            low, high = int(spec.get("minimum", 1)), int(spec.get("maximum", 5))
            out[name] = low + int(u * (high - low + 1))
        elif spec.get("type") == "number":
            low, high = float(spec.get("minimum", 0)), float(spec.get("maximum", 100))
            out[name] = round(low + u * (high - low), 1)
        else:
            out[name] = f"More stations near me ({persona})"[: spec.get("maxLength", 200)]
    return out


def scripted(fn: Script, run_seed: int, steps: int, n_agents: int = N_PERSONAS) -> Responder:
    """A responder that answers ``fn(persona_index, step)`` (a dict, raw text, or None).

    The step is recovered from the request seed, which the model fixes per (run seed, step,
    agent id); re-asks add the attempt number to it, hence the small search. None falls back to
    :func:`varied_responder`.
    """
    step_of = {
        request_seed(run_seed, step, agent_id): step
        for step in range(steps)
        for agent_id in range(n_agents + 2)
    }

    def respond(body: dict[str, Any]) -> Any:
        index = persona_index(body)
        seed = int(body.get("seed", -1))
        step = next((step_of[seed - k] for k in range(4) if seed - k in step_of), None)
        answer = fn(index, step) if index is not None and step is not None else None
        return varied_responder(body) if answer is None else answer

    return respond


def request_body(call: BackendCall, model: str) -> dict[str, Any]:
    """The OpenAI chat request body the ``openai`` backend would send for ``call``."""
    body: dict[str, Any] = {"model": model, "messages": list(call.messages)}
    if call.seed is not None:
        body["seed"] = call.seed
    if call.schema is not None:
        spec = {"name": call.schema_name, "schema": call.schema}
        body["response_format"] = {"type": "json_schema", "json_schema": spec}
    return body


def responder_backend(responder: Responder, model: str = "fake-model") -> FunctionBackend:
    """An in-process backend answering like the fake server with ``responder``: its answer
    (JSON-encoded unless a string), else a valid schema instance, else an echo. Option calls
    (the ``logprobs`` answer mode) get weights varied by persona, option and seed."""

    def reply(call: BackendCall) -> str | dict[str, float]:
        if call.options is not None:
            persona = persona_index(request_body(call, model))
            return {label: 0.1 + _unit(persona, label, call.seed) for label in call.options}
        answer = responder(request_body(call, model))
        if answer is not None:
            return answer if isinstance(answer, str) else json.dumps(answer)
        if call.schema is not None:
            return json.dumps(generate_instance(call.schema))
        last = next((m for m in reversed(call.messages) if m.get("role") == "user"), {})
        return "echo: " + last.get("content", "")[:60]

    # Recorded as an `openai` run, as when the fake HTTP server answered it.
    return FunctionBackend(reply, model=model, name="openai")


def make_run(
    tmp_path: Path,
    scenario_yaml: str | None = None,
    responder: Responder | None = None,
    population: list[dict[str, Any]] | None = None,
    database: str | None = None,
) -> tuple[Path, str]:
    """Run a scenario against a fake model; returns ``(run.db path, run id)``.

    Args:
        tmp_path: Folder for the persona file, the scenario and ``runs/``.
        scenario_yaml: Scenario text (``population.source`` is read relative to ``tmp_path``);
            :data:`DEFAULT_SCENARIO` when None.
        responder: Answers requests; :func:`varied_responder` when None.
        population: Persona records; :func:`personas` when None.
        database: A run database URL (``--database``); ``runs/<run-id>/run.db`` when None.
    """
    tmp_path.mkdir(parents=True, exist_ok=True)
    people = tmp_path / "people.jsonl"
    people.write_text(
        "\n".join(json.dumps(p) for p in (population or personas())) + "\n", encoding="utf-8"
    )
    text = scenario_yaml or DEFAULT_SCENARIO
    name = yaml.safe_load(text)["name"]
    scenario = tmp_path / f"{name}.yaml"
    scenario.write_text(text, encoding="utf-8")
    settings = load_settings(
        backend="openai", model="fake-model", cache=False, max_retries=0, max_reasks=1
    )
    backend = responder_backend(responder or varied_responder, settings.model_name)
    client = LLMClient(settings, backend=backend)
    outcome = start_run(
        scenario,
        RunOptions(out=tmp_path / "runs", database=database),
        {},
        show_progress=False,
        llm=client,
    )
    return Path(outcome.database), outcome.run_id


def set_run(db_path: Path, run_id: str, **values: Any) -> None:
    """Change a recorded run's row (``status``, ``updated``, ...) as another process would."""
    database = RunDatabase(db_path, must_exist=True)
    try:
        with Session(database.engine) as session:
            session.execute(update(RunRow).where(col(RunRow.id) == run_id).values(**values))
            session.commit()
    finally:
        database.close()
