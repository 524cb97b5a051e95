"""The dialogue engine: conversations of up to T turns, many at once, each in order.

Turn ``t`` of every open conversation goes to the gateway as one batch, so pairs talk
concurrently while the lines of one conversation stay in order (turn ``t + 1`` is only asked
once turn ``t`` is known). Each line is a structured answer (:class:`Line`): what the
speaker says, whether they now feel warmer, the same or cooler toward the other, and whether
they want to end the conversation. A scripted speaker (the player with fixed lines) says
its lines without a model call. A failed turn is recorded with its error and ends that
conversation; the others go on. A line that repeats an earlier line of the conversation
(word-set Jaccard >= 0.8) is not recorded and ends the conversation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from personahub import prompts
from personahub.llm import LLMClient, LLMRequest, LLMResult
from personahub.llm.seeds import plain_text, request_seed

LINE_MAX_TOKENS = 160
MEMORIES_SHOWN = 4
REPEAT_JACCARD = 0.8  # word-set overlap at which a line counts as said before


class Line(BaseModel):
    """One line of dialogue, as the model answers it."""

    say: str = Field(min_length=2, max_length=240, pattern=plain_text(240, 2))
    feeling: Literal["warmer", "same", "cooler"]
    end: bool


@dataclass
class Speaker:
    """Someone in a conversation: an NPC, or the player.

    Attributes:
        id: Agent id (``PLAYER_ID`` for the player).
        label: Name and role, as the other side sees them.
        system_prompt: The speaker's system message; None for a scripted speaker.
        script: Lines a scripted speaker says, in order.
        memories: What the speaker remembers (most recent last).
        relation_to: Words for the speaker's relationship with another id ("" if none).
    """

    id: int
    label: str
    system_prompt: str | None
    script: list[str] = field(default_factory=list)
    memories: list[str] = field(default_factory=list)
    relation_to: Callable[[int], str] = lambda _other: ""


@dataclass
class Conversation:
    """One conversation between ``first`` (who opens) and ``second``."""

    number: int
    step: int
    topic: str
    first: Speaker
    second: Speaker
    max_turns: int
    lines: list[tuple[Speaker, str]] = field(default_factory=list)
    feelings: dict[int, list[str]] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False
    failed: bool = False
    repeats: int = 0

    def speaker(self) -> Speaker:
        return self.first if len(self.lines) % 2 == 0 else self.second

    def listener(self) -> Speaker:
        return self.second if len(self.lines) % 2 == 0 else self.first

    def request(self, run_seed: int, temperature: float | None) -> LLMRequest:
        """The next turn's request, from the speaker's point of view."""
        speaker, listener = self.speaker(), self.listener()
        assert speaker.system_prompt is not None
        user = prompts.render(
            "npc_turn",
            package="sandbox",
            partner=listener.label,
            relation=speaker.relation_to(listener.id),
            topic=self.topic,
            memories=speaker.memories[-MEMORIES_SHOWN:],
            lines=[{"name": s.label.split(",")[0], "text": text} for s, text in self.lines],
        )
        return LLMRequest(
            messages=[
                {"role": "system", "content": speaker.system_prompt},
                {"role": "user", "content": user},
            ],
            schema=Line,
            temperature=temperature,
            max_tokens=LINE_MAX_TOKENS,
            seed=request_seed(run_seed, self.step, self.number, len(self.lines)),
            tag="npc_turn",
        )

    def _row(self, content: str, result: LLMResult | None) -> dict[str, Any]:
        # Every row has every key: a bulk insert takes its columns from the first row.
        error = result.error if result is not None else None
        return {
            "step": self.step,
            "conversation": self.number,
            "turn": len(self.rows),
            "speaker": self.speaker().id,
            "listener": self.listener().id,
            "topic": self.topic,
            "content": content,
            "prompt_tokens": result.usage.prompt_tokens if result is not None else 0,
            "completion_tokens": result.usage.completion_tokens if result is not None else 0,
            "error_kind": error.kind.value if error else None,
            "error_message": error.message if error else None,
        }

    def say_scripted(self) -> None:
        """The scripted speaker's next line, or the end when the script is spent."""
        speaker = self.speaker()
        if not speaker.script:
            self.done = True
            return
        text = speaker.script.pop(0)
        self.rows.append(self._row(text, None))
        self.lines.append((speaker, text))
        self._close_if_full()

    def apply(self, result: LLMResult) -> None:
        """Record the model's line (or its failure) for the current speaker."""
        speaker = self.speaker()
        line = result.parsed
        if not isinstance(line, Line):
            self.rows.append(self._row("", result))
            self.done = self.failed = True
            return
        text = " ".join(line.say.split())
        if self._repeats(text):
            # Small models loop: a line said before ends the conversation instead of
            # padding it (and the training data) with copies.
            self.repeats += 1
            self.done = True
            return
        self.rows.append(self._row(text, result))
        self.lines.append((speaker, text))
        self.feelings.setdefault(speaker.id, []).append(line.feeling)
        # Nobody walks away before the other has answered once.
        if line.end and len(self.lines) >= 2:
            self.done = True
        self._close_if_full()

    def _repeats(self, text: str) -> bool:
        words = set(text.lower().split())
        for _, earlier in self.lines:
            seen = set(earlier.lower().split())
            union = words | seen
            if union and len(words & seen) / len(union) >= REPEAT_JACCARD:
                return True
        return False

    def _close_if_full(self) -> None:
        if len(self.lines) >= self.max_turns:
            self.done = True

    def last_line_of(self, speaker_id: int) -> str:
        return next((t for s, t in reversed(self.lines) if s.id == speaker_id), "")


async def hold_conversations(
    client: LLMClient,
    conversations: list[Conversation],
    run_seed: int,
    temperature: float | None = None,
    on_turn: Callable[[int, int], None] | None = None,
) -> None:
    """Run every conversation to its end, one batched turn at a time.

    Args:
        client: The gateway.
        conversations: Conversations to hold (mutated in place).
        run_seed: Mixed into every request's seed.
        temperature: Sampling temperature (the gateway default when None).
        on_turn: Called after each batched turn with (lines said, conversations still open).
    """
    while True:
        open_now = [c for c in conversations if not c.done]
        for conversation in open_now:
            while not conversation.done and conversation.speaker().system_prompt is None:
                conversation.say_scripted()
        asking = [c for c in open_now if not c.done]
        if not asking:
            return
        requests = [c.request(run_seed, temperature) for c in asking]
        results = await client.batch(requests)
        for conversation, result in zip(asking, results, strict=True):
            conversation.apply(result)
        if on_turn is not None:
            on_turn(len(asking), sum(not c.done for c in conversations))
