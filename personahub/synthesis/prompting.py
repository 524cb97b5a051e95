"""The messages of a synthesis request, in the paper's three modes.

- ``zero-shot``: the persona and the task, nothing else.
- ``few-shot``: worked examples first, as earlier chat turns that ask for the task without a
  persona, then the task for this persona.
- ``persona-few-shot``: the same, but each example turn carries the persona it was written
  for, so the model sees how a persona shapes the output.

Examples come from a JSONL file (``{"persona": ..., "output": {...}}`` per line, the output
valid for the task's model); the packaged defaults are in ``prompts/synthesis/examples/``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from personahub import prompts
from personahub.llm import LLMRequest, Message
from personahub.llm.seeds import request_seed
from personahub.synthesis.tasks import MODES, SOLVE_MAX_TOKENS, MathSolution, TaskSpec
from personahub.worlds import World

EXAMPLES_DIR = Path(prompts.__file__).resolve().parent / "synthesis" / "examples"
MAX_EXAMPLES = 8


class ExamplesError(ValueError):
    """An examples file that cannot be used; one line naming the file and line."""


@dataclass(frozen=True, slots=True)
class Example:
    """One worked example: the persona it was written for and the output."""

    persona: str
    output: dict[str, Any]


def load_examples(spec: TaskSpec, path: str | Path | None = None) -> list[Example]:
    """Read worked examples for ``spec`` (the packaged ones when ``path`` is None).

    Raises:
        ExamplesError: Missing file, bad JSON, or an output that does not fit the task.
    """
    file = Path(path) if path is not None else EXAMPLES_DIR / f"{spec.name}.jsonl"
    if not file.is_file():
        raise ExamplesError(f"examples file not found: {file}")
    out: list[Example] = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ExamplesError(f"{file}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or "output" not in row:
            raise ExamplesError(f'{file}:{number}: expected {{"persona": ..., "output": {{...}}}}')
        try:
            output = spec.output.model_validate(row["output"]).model_dump(mode="json")
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise ExamplesError(
                f"{file}:{number}: output.{where}: {error['msg']} (task {spec.name})"
            ) from None
        out.append(Example(str(row.get("persona") or ""), output))
    if not out:
        raise ExamplesError(f"{file}: no examples")
    return out[:MAX_EXAMPLES]


def template_version(spec: TaskSpec, mode: str, examples: list[Example]) -> str:
    """``<task>-<hash>``: changes whenever the template, system turn or examples change."""
    digest = hashlib.sha256()
    for name in ("synthesis/system", "synthesis/_persona", spec.template):
        digest.update(prompts.source(name).encode())
    digest.update(mode.encode())
    if mode != "zero-shot":
        digest.update(json.dumps([(e.persona, e.output) for e in examples]).encode())
    return f"{spec.name}-{digest.hexdigest()[:10]}"


def messages_for(
    spec: TaskSpec,
    persona: str,
    mode: str,
    examples: list[Example],
    world: World | None = None,
) -> list[Message]:
    """The chat messages that ask for one output for ``persona``.

    Raises:
        ValueError: Unknown mode, or few-shot modes without examples.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    if mode != "zero-shot" and not examples:
        raise ValueError(f"mode {mode} needs examples")
    world_data = world if spec.needs_world else None

    def ask(who: str | None) -> Message:
        text = prompts.render(spec.template, persona=who, world=world_data)
        return {"role": "user", "content": text}

    messages: list[Message] = [{"role": "system", "content": prompts.render("synthesis/system")}]
    if mode != "zero-shot":
        for example in examples:
            who = example.persona if mode == "persona-few-shot" else None
            messages.append(ask(who))
            answer = json.dumps(example.output, ensure_ascii=False)
            messages.append({"role": "assistant", "content": answer})
    messages.append(ask(persona))
    return messages


def generation_request(
    spec: TaskSpec,
    persona: str,
    mode: str,
    examples: list[Example],
    world: World | None,
    item_key: str,
    seed: int,
    temperature: float | None,
) -> LLMRequest:
    """The request that generates item ``item_key``; its seed comes from the item."""
    return LLMRequest(
        messages=messages_for(spec, persona, mode, examples, world),
        schema=spec.output,
        temperature=temperature,
        max_tokens=spec.max_tokens,
        seed=request_seed(seed, "synthesize", spec.name, mode, item_key),
        tag=f"synthesize:{spec.name}",
    )


def solve_request(
    problem: str, attempt: int, seed: int, temperature: float
) -> LLMRequest[MathSolution]:
    """Attempt ``attempt`` at solving a math problem; attempts differ in seed and sample."""
    return LLMRequest(
        messages=[
            {"role": "system", "content": prompts.render("synthesis/system")},
            {"role": "user", "content": prompts.render("synthesis/solve_math", problem=problem)},
        ],
        schema=MathSolution,
        temperature=temperature,
        max_tokens=SOLVE_MAX_TOKENS,
        seed=request_seed(seed, "solve", problem, attempt),
        sample_index=attempt,
        tag="synthesize:solve",
    )
