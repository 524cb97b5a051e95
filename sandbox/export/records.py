"""The exported record of each format, as pydantic models: nothing is written unvalidated.

All three formats carry the same conversation, so one set of rules applies to each: an
optional system message first, then a user turn, at least one assistant turn, the last turn
from the assistant, and no empty content. A sample that breaks a rule is dropped as
``invalid`` rather than written as something a fine-tuning job would reject or learn badly.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["system", "user", "assistant"]
Format = Literal["openai", "sharegpt", "parquet"]
Source = Literal["agent", "npc", "interview"]

FORMATS: tuple[Format, ...] = ("openai", "sharegpt", "parquet")
SHAREGPT_SPEAKER: dict[str, str] = {"system": "system", "user": "human", "assistant": "gpt"}


def check_turns(roles: list[str], contents: list[str]) -> None:
    """Raise ValueError when a conversation breaks the rules shared by every format.

    Args:
        roles: The roles in order, as ``system``/``user``/``assistant``.
        contents: The contents in the same order.
    """
    if any(not text.strip() for text in contents):
        raise ValueError("a message has empty content")
    if "system" in roles[1:]:
        raise ValueError("a system message after the first message")
    turns = roles[1:] if roles[:1] == ["system"] else roles
    if not turns or turns[0] != "user":
        raise ValueError("the first non-system message must come from the user")
    if turns[-1] != "assistant":
        raise ValueError("the last message must come from the assistant")


class ChatMessage(BaseModel):
    """One message of the OpenAI chat format."""

    model_config = ConfigDict(extra="forbid")
    role: Role
    content: str


class _Chat(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: list[ChatMessage] = Field(min_length=2)

    @model_validator(mode="after")
    def _turns(self) -> _Chat:
        check_turns([m.role for m in self.messages], [m.content for m in self.messages])
        return self


class OpenAIRecord(_Chat):
    """One line of an OpenAI chat fine-tuning JSONL file: ``{"messages": [...]}``."""


class ShareGPTTurn(BaseModel):
    """One turn of a ShareGPT conversation (``from`` is a keyword in Python)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    speaker: Literal["system", "human", "gpt"] = Field(alias="from")
    value: str


class ShareGPTRecord(BaseModel):
    """One element of a ShareGPT JSON array: ``{"conversations": [{"from", "value"}, ...]}``."""

    model_config = ConfigDict(extra="forbid")
    conversations: list[ShareGPTTurn] = Field(min_length=2)

    @model_validator(mode="after")
    def _turns(self) -> ShareGPTRecord:
        role_of = {speaker: role for role, speaker in SHAREGPT_SPEAKER.items()}
        check_turns(
            [role_of[t.speaker] for t in self.conversations],
            [t.value for t in self.conversations],
        )
        return self


class ParquetRecord(_Chat):
    """One row of the Parquet export: the chat plus where it came from.

    Attributes:
        run_id: The run the sample was taken from.
        source: ``agent`` (a forecast interaction), ``npc`` (one side of a conversation) or
            ``interview`` (an interview, or a survey answer).
        agent_id: The agent whose replies are the assistant turns.
        persona_id: That agent's persona.
        step: The step of the interaction, or of the conversation's first turn.
        conversation: The run-wide conversation number (None for agent samples).
    """

    run_id: str
    source: Source
    agent_id: int
    persona_id: str
    step: int
    conversation: int | None = None


Record = OpenAIRecord | ShareGPTRecord | ParquetRecord
