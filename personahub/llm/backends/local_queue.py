"""Which option call a free copy of the embedded model scores next.

Each copy (``local_instances``) keeps the prompt it evaluated last, and the next prompt only
evaluates what it does not share with it (:mod:`personahub.llm.backends.local_scoring`). Taken
first come, first served, a survey respondent's questions alternate between the copies, and
every copy evaluates the respondent's persona again. So a free copy takes, among the waiting
option calls, the one whose prompt extends its own last prompt furthest *beyond what the other
copies' last prompts share with it*: a respondent's next question stays on the copy that holds
the respondent, and a copy that holds none takes a fresh respondent rather than one another copy
is working through. Ties go to the call waiting longest.

The order changes no answer: llama.cpp evaluates a reused prefix exactly as a fresh one, and
each call's distribution is its own prompt's. A copy never waits while calls wait: it always
takes one (only which one is chosen).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from personahub.llm.backends.base import BackendCall, BackendReply

Tokens = Callable[[BackendCall], list[int]]
"""A call's prompt tokens (computed by the copy that looks at it: every copy tokenises alike)."""


def shared_prefix(done: Sequence[int], tokens: Sequence[int]) -> int:
    """How many leading tokens ``done`` and ``tokens`` share."""
    common = 0
    for a, b in zip(done, tokens, strict=False):
        if a != b:
            break
        common += 1
    return common


@dataclass(eq=False)
class ScoreTask:
    """One waiting option call and the future its reply goes to.

    Attributes:
        call: The option call.
        order: Arrival number (ties go to the lowest).
        future: Resolved with the reply, or the error, by the copy that scores it.
        tokens: Its prompt tokens, once a copy has looked at it; ``()`` when they could not be
            computed (the error then surfaces when the call is scored).
    """

    call: BackendCall
    order: int
    future: Future[BackendReply] = field(default_factory=Future)
    tokens: Sequence[int] | None = None


class PrefixQueue:
    """The waiting option calls of one local backend, and the last prompt each copy took."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[ScoreTask] = []
        self._heads: dict[int, Sequence[int]] = {}
        self._arrivals = itertools.count()

    def add(self, call: BackendCall) -> ScoreTask:
        """Queue ``call``; each call added must be matched by one :meth:`take`."""
        task = ScoreTask(call, next(self._arrivals))
        with self._lock:
            self._waiting.append(task)
        return task

    def take(self, copy: int, tokens: Tokens | None) -> ScoreTask:
        """The call copy ``copy`` scores next (see the module docstring); with ``tokens`` None
        (no copy could be had), the one waiting longest."""
        with self._lock:
            if tokens is None:
                task = min(self._waiting, key=lambda t: t.order)
            else:
                for waiting in self._waiting:
                    if waiting.tokens is None:
                        try:
                            waiting.tokens = tokens(waiting.call)
                        except ValueError:  # no chat template: the scoring says so, per call
                            waiting.tokens = ()
                task = max(self._waiting, key=lambda t: (self._lead(copy, t.tokens), -t.order))
                self._heads[copy] = task.tokens or ()
            self._waiting.remove(task)
            return task

    def _lead(self, copy: int, tokens: Sequence[int] | None) -> int:
        """How much further ``tokens`` extend copy ``copy``'s last prompt than any other
        copy's."""
        assert tokens is not None
        own = shared_prefix(self._heads.get(copy, ()), tokens)
        others = [shared_prefix(head, tokens) for c, head in self._heads.items() if c != copy]
        return own - max(others, default=0)
