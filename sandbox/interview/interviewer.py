"""Interviews and crowd surveys: questions put to a run's agents in character, through the
one gateway, recorded in the run database's ``interviews`` table.

An interview is a chat: each turn sends the agent's persona and memory as of the chosen step
(:mod:`sandbox.interview.memory`), the interview's earlier turns, and the new question. A
survey asks one new question of a seeded sample of agents at the run's last step, as a
structured answer (one of the given options, or free text), and counts the answers.

Both go through the gateway client built from the run's recorded LLM configuration
(:func:`interview_client`), so the response cache, the budget and metering apply. Their rows
never enter ``interactions``: the forecast and the report cannot count them.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model
from sqlalchemy import func, insert, select
from sqlmodel import Session, col

from personahub import prompts
from personahub.llm import LLMClient, LLMRequest, LLMResult, Message
from personahub.llm.seeds import request_seed
from sandbox.interview.memory import agent_memory, agent_row, persona_text
from sandbox.run_llm import client_for_resume
from sandbox.rundb import InterviewRow, RunDatabase, RunRow

INTERVIEW_MAX_TOKENS = 300
SURVEY_MAX_TOKENS = 200
MAX_QUESTION_CHARS = 2000
MAX_SURVEY_SAMPLE = 500
INTERVIEW_SEED = 1_000_003
"""Offsets the request seeds of interviews and surveys from those of the run's own steps."""


class InterviewError(ValueError):
    """A question that cannot be asked (no such agent, empty question, ...); one line."""


class SurveyAnswer(BaseModel):
    """A free-text survey answer."""

    answer: str = Field(max_length=300)
    why: str = Field("", max_length=400)


def _answer_schema(options: list[str]) -> type[BaseModel]:
    """A survey answer restricted to ``options``."""
    choice: Any = Literal[tuple(options)]
    return create_model("SurveyChoice", answer=(choice, ...), why=(str, Field("", max_length=400)))


@dataclass(frozen=True, slots=True)
class Reply:
    """One answered (or failed) interview turn."""

    session: str
    turn: int
    agent_id: int
    step: int
    question: str
    text: str
    error: str | None
    tokens: int
    cached: bool


@dataclass(frozen=True, slots=True)
class SurveyResult:
    """A survey's answers: per option (or distinct free answer) its count and share."""

    session: str
    question: str
    asked: int
    answered: int
    counts: dict[str, int]
    failed: int

    def share(self, answer: str) -> float:
        return self.counts.get(answer, 0) / self.answered if self.answered else 0.0


def interview_client(
    run: RunRow, cli: dict[str, Any] | None = None, config: Path | None = None
) -> LLMClient:
    """The gateway client of ``run``'s recorded LLM configuration, with ``cli`` overrides."""
    return client_for_resume(run, cli or {}, config)


def _clean_question(question: str) -> str:
    question = question.strip()
    if not question:
        raise InterviewError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise InterviewError(f"the question is longer than {MAX_QUESTION_CHARS} characters")
    return question


class Interviewer:
    """Asks a run's agents questions and records them.

    Args:
        database: The run database, opened for writing (interview rows are written here).
        run: The run.
        llm: The gateway client (:func:`interview_client`).
    """

    def __init__(self, database: RunDatabase, run: RunRow, llm: LLMClient):
        self.database = database
        self.run = run
        self.llm = llm

    def _system(self, agent_id: int, step: int) -> str:
        agent = agent_row(self.database, self.run.id, agent_id)
        if agent is None:
            raise InterviewError(f"run {self.run.id} has no agent {agent_id}")
        return prompts.render(
            "interview_system",
            package="sandbox",
            persona=persona_text(agent),
            memory=agent_memory(self.database, self.run.id, agent_id, step),
            step=step,
        )

    def _step(self, step: int | None) -> int:
        last = max(self.run.last_step, 0)
        return last if step is None else max(0, min(step, last))

    def history(self, session: str) -> list[InterviewRow]:
        """The turns of an interview so far, oldest first."""
        with Session(self.database.engine) as db:
            query = (
                select(InterviewRow)
                .where(
                    col(InterviewRow.run_id) == self.run.id, col(InterviewRow.session) == session
                )
                .order_by(col(InterviewRow.turn))
            )
            return list(db.execute(query).scalars())

    async def ask(
        self, agent_id: int, question: str, session: str | None = None, step: int | None = None
    ) -> Reply:
        """One interview turn: the agent's answer to ``question``, recorded.

        Args:
            agent_id: The agent.
            question: What to ask.
            session: The interview to continue (its earlier turns are sent along), or None
                for a new one.
            step: The step whose memory the agent answers from (default: the last one); a
                continued interview keeps its own.
        """
        question = _clean_question(question)
        earlier = self.history(session) if session else []
        if earlier and earlier[0].agent_id != agent_id:
            raise InterviewError(f"interview {session} is with agent {earlier[0].agent_id}")
        at = earlier[0].step if earlier else self._step(step)
        messages: list[Message] = [{"role": "system", "content": self._system(agent_id, at)}]
        for row in earlier:
            if row.error_kind is None:
                messages += [
                    {"role": "user", "content": row.question},
                    {"role": "assistant", "content": row.reply},
                ]
        messages.append({"role": "user", "content": question})
        turn = len(earlier)
        request: LLMRequest[Any] = LLMRequest(
            messages=messages,
            max_tokens=INTERVIEW_MAX_TOKENS,
            seed=request_seed(self.run.seed + INTERVIEW_SEED, turn, agent_id),
            tag="interview",
        )
        result = await self.llm.complete(request)
        session = session or uuid.uuid4().hex[:12]
        self._store([self._row("interview", session, turn, agent_id, at, question, result)])
        return Reply(
            session=session,
            turn=turn,
            agent_id=agent_id,
            step=at,
            question=question,
            text=result.text,
            error=str(result.error) if result.error else None,
            tokens=result.usage.total_tokens,
            cached=result.cached,
        )

    def sample(self, size: int, seed: int) -> list[int]:
        """A seeded sample of ``size`` agent ids (all of them when fewer)."""
        ids = [a.agent_id for a in self.database.agents(self.run.id)]
        return sorted(random.Random(seed).sample(ids, min(size, len(ids))))

    async def survey(
        self, question: str, options: list[str] | None = None, sample: int = 20, seed: int = 0
    ) -> SurveyResult:
        """Ask ``question`` of ``sample`` agents (seeded) at the run's last step; recorded."""
        question = _clean_question(question)
        options = [o.strip() for o in options or [] if o.strip()]
        if len(set(options)) == 1:
            raise InterviewError("a survey with options needs at least two different ones")
        if not 1 <= sample <= MAX_SURVEY_SAMPLE:
            raise InterviewError(f"the sample must be 1 to {MAX_SURVEY_SAMPLE} agents")
        schema = _answer_schema(list(dict.fromkeys(options))) if options else SurveyAnswer
        step = self._step(None)
        agents = self.sample(sample, seed)
        ask = prompts.render("survey_question", package="sandbox", ask=question, options=options)
        requests: list[LLMRequest[Any]] = [
            LLMRequest(
                messages=[
                    {"role": "system", "content": self._system(agent_id, step)},
                    {"role": "user", "content": ask},
                ],
                schema=schema,
                max_tokens=SURVEY_MAX_TOKENS,
                seed=request_seed(self.run.seed + INTERVIEW_SEED, seed, agent_id),
                tag="survey",
            )
            for agent_id in agents
        ]
        results = await self.llm.batch(requests)
        session = uuid.uuid4().hex[:12]
        self._store(
            [
                self._row("survey", session, 0, agent_id, step, question, result)
                for agent_id, result in zip(agents, results, strict=True)
            ]
        )
        answers = Counter(str(r.parsed.answer).strip() for r in results if r.parsed is not None)
        answered = sum(answers.values())
        return SurveyResult(
            session=session,
            question=question,
            asked=len(agents),
            answered=answered,
            # Options in the asked order, unanswered ones at 0; free answers, most common first.
            counts={o: answers[o] for o in options} if options else dict(answers.most_common()),
            failed=len(agents) - answered,
        )

    def _row(
        self,
        kind: str,
        session: str,
        turn: int,
        agent_id: int,
        step: int,
        question: str,
        result: LLMResult[Any],
    ) -> dict[str, Any]:
        return {
            "run_id": self.run.id,
            "agent_id": agent_id,
            "kind": kind,
            "session": session,
            "turn": turn,
            "step": step,
            "question": question,
            "messages": [dict(m) for m in result.messages],
            "reply": result.text,
            "parsed": result.raw_json(),
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
            "latency_s": result.latency_s,
            "cached": result.cached,
            "error_kind": result.error.kind.value if result.error else None,
            "error_message": result.error.message if result.error else None,
        }

    def _store(self, rows: list[dict[str, Any]]) -> None:
        with Session(self.database.engine) as db:
            db.execute(insert(InterviewRow), rows)
            db.commit()


def interview_count(database: RunDatabase, run_id: str) -> int:
    """How many interview and survey rows a run has."""
    with Session(database.engine) as db:
        query = select(func.count()).where(col(InterviewRow.run_id) == run_id)
        return int(db.execute(query).scalar_one())
