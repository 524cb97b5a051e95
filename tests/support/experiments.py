"""Experiment files and scripted arms for tests: arm ``cheap`` answers "yes" with p=0.7,
arm ``control`` with p=0.4 (each agent draws from a hash of its persona and request seed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from personahub.llm import LLMClient, load_settings
from tests.support.runs import _unit, persona_index, personas, request_schema, responder_backend

EXPERIMENT = """\
name: price-test
seed: 3
population: {source: people.jsonl, sample: 24}
graph: {type: watts_strogatz, k: 4, p: 0.1}
steps: 2
timeline:
  - {step: 0, content: "CityBike launches a subscription at {{ price }} a month."}
interaction: {activation: 1.0, word_of_mouth: true}
questions:
  - {id: intent, type: choice, ask: "Would you subscribe?", options: ["yes", "no"]}
  - {id: spend, type: number, ask: "How much would you pay a month?", min: 0, max: 60}
segments: [age_band]
experiment:
  seeds: 3
  vars: {price: "$29"}
  arms:
    control: {}
    cheap: {vars: {price: "$19"}}
"""

YES_SHARE = {"$29": 0.4, "$19": 0.7}


def price_responder(body: dict[str, Any]) -> Any:
    """Answers "yes" with the arm's probability; spend is the share times 10."""
    if not (request_schema(body).get("properties") or {}):
        return None
    text = json.dumps(body.get("messages", []))
    price = next((p for p in YES_SHARE if p in text), "$29")
    p_yes = YES_SHARE[price]
    yes = _unit(persona_index(body), body.get("seed", 0)) < p_yes
    return {"reaction": f"At {price}? ok.", "intent": "yes" if yes else "no", "spend": 10 * p_yes,
            "post": ""}  # fmt: skip


def identical_responder(body: dict[str, Any]) -> Any:
    """Both arms answer alike (p=0.5)."""
    if not (request_schema(body).get("properties") or {}):
        return None
    yes = _unit(persona_index(body), body.get("seed", 0)) < 0.5
    return {"reaction": "hm", "intent": "yes" if yes else "no", "spend": 5.0, "post": ""}


def client(responder: Any = price_responder, **settings: Any) -> LLMClient:
    merged = {"backend": "openai", "model": "fake-model", "cache": False, "max_retries": 0}
    return LLMClient(
        load_settings(**(merged | settings)), backend=responder_backend(responder, "fake-model")
    )


def experiment_in(folder: Path, text: str = EXPERIMENT, n: int = 24) -> Path:
    """Write the persona file and the experiment file into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "people.jsonl").write_text("\n".join(json.dumps(p) for p in personas(n)) + "\n")
    path = folder / "experiment.yaml"
    path.write_text(text)
    return path
