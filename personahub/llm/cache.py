"""Response cache: SQLite, keyed by a stable hash of everything that determines a reply.

A rerun with the same seed replays from here without model calls. Writes are buffered and
flushed in batches so the cache costs microseconds, not a disk sync, per request.
:class:`CacheLayer` is the cache as the gateway's outer layer: it stores a request's final
text (after any re-asks) with the tokens all its attempts took.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from personahub.llm.gateway import Gateway, Layer
from personahub.llm.repair import ParseFailure, parse_structured
from personahub.llm.schemas import SchemaTable, canonical_json, sampling
from personahub.llm.types import LLMRequest, LLMResult, OptionDistribution, T, Usage

if TYPE_CHECKING:
    from personahub.llm.settings import LLMSettings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    model TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(
    *,
    backend: str,
    model: str,
    messages: Any,
    params: dict[str, Any],
    schema: dict[str, Any] | None,
    sample_index: int,
    schema_json: str | None = None,
) -> str:
    """A stable SHA-256 over the request's defining parts (never the API key or endpoint).

    The hashed text is the canonical JSON of ``[backend, model, messages, params, schema,
    sample_index]``. ``schema_json``, when given, must be ``canonical_json(schema)``: callers
    that send one schema many times pass it precomputed rather than re-encode it per request.
    """
    if schema_json is None:
        schema_json = canonical_json(schema)
    head = canonical_json([backend, model, messages, params])
    payload = f"{head[:-1]},{schema_json},{canonical_json(sample_index)}]"
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedReply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str


class ResponseCache:
    """A SQLite response cache with buffered writes.

    Args:
        path: The SQLite file; parent folders are created.
        flush_every: Pending writes that trigger a flush.
    """

    def __init__(self, path: Path, flush_every: int = 256):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)
        self._pending: dict[str, CachedReply] = {}
        self._lock = threading.Lock()
        self._flush_every = flush_every
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> CachedReply | None:
        with self._lock:
            reply = self._pending.get(key)
            if reply is None:
                row = self._conn.execute(
                    "SELECT text, prompt_tokens, completion_tokens, model FROM responses"
                    " WHERE key = ?",
                    (key,),
                ).fetchone()
                reply = CachedReply(*row) if row else None
        if reply is None:
            self.misses += 1
        else:
            self.hits += 1
        return reply

    def put(self, key: str, reply: CachedReply) -> None:
        with self._lock:
            self._pending[key] = reply
            if len(self._pending) >= self._flush_every:
                self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._pending:
            return
        now = time.time()
        rows = [
            (k, r.text, r.prompt_tokens, r.completion_tokens, r.model, now)
            for k, r in self._pending.items()
        ]
        self._conn.execute("BEGIN")
        self._conn.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)", rows)
        self._conn.execute("COMMIT")
        self._pending.clear()

    def __len__(self) -> int:
        self.flush()
        return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        self.flush()
        self._conn.close()


class CacheLayer(Layer):
    """Answers a request from the cache when it can, and stores what the layers below
    answered (never an error).

    Args:
        inner: The gateway below.
        cache: The response cache.
        settings: Supplies the sampling defaults hashed into keys.
        schemas: The gateway's schema table.
        backend: The backend's name, hashed into keys.
    """

    def __init__(
        self,
        inner: Gateway,
        cache: ResponseCache,
        settings: LLMSettings,
        schemas: SchemaTable,
        backend: str,
    ) -> None:
        super().__init__(inner)
        self.cache = cache
        self.settings = settings
        self.schemas = schemas
        self.backend = backend

    def key(self, request: LLMRequest[Any]) -> str:
        """The cache key of ``request``."""
        temperature, max_tokens = sampling(request, self.settings)
        schema, schema_json = (
            self.schemas.entry(request.schema) if request.schema is not None else (None, None)
        )
        params: dict[str, Any] = {
            "temperature": temperature,
            "max_tokens": max_tokens,
            "seed": request.seed,
        }
        if request.options is not None:
            # Only option requests carry these, so every other key stays as it was.
            params["options"] = list(request.options)
            params["option_samples"] = self.settings.option_samples
        return cache_key(
            backend=self.backend,
            model=self.model,
            messages=list(request.messages),
            params=params,
            schema=schema,
            sample_index=request.sample_index,
            schema_json=schema_json,
        )

    async def complete(self, request: LLMRequest[T]) -> LLMResult[T]:
        started = time.perf_counter()
        key = self.key(request)
        hit = self.lookup(key, request, started)
        if hit is not None:
            return hit
        result = await self.inner.complete(request)
        if result.error is None:
            usage = result.usage
            self.cache.put(
                key,
                CachedReply(result.text, usage.prompt_tokens, usage.completion_tokens, self.model),
            )
        return result

    def lookup(self, key: str, request: LLMRequest[T], started: float) -> LLMResult[T] | None:
        """The cached answer, or None (also when it no longer fits the schema, or is not the
        distribution an option request asks for)."""
        hit = self.cache.get(key)
        if hit is None:
            return None
        parsed = distribution = None
        try:
            if request.schema is not None:
                parsed = parse_structured(hit.text, request.schema)
            if request.options is not None:
                distribution = OptionDistribution.from_text(hit.text)
        except (ParseFailure, ValueError, KeyError):
            return None
        return LLMResult(
            text=hit.text,
            parsed=parsed,
            usage=Usage(hit.prompt_tokens, hit.completion_tokens),
            latency_s=time.perf_counter() - started,
            cached=True,
            model=hit.model,
            endpoint="cache",
            messages=tuple(request.messages),
            distribution=distribution,
        )

    def usage(self) -> dict[str, Any]:
        return {**self.inner.usage(), "cache_misses": self.cache.misses}

    def flush(self) -> None:
        self.cache.flush()
        self.inner.flush()

    async def aclose(self) -> None:
        self.cache.close()
        await self.inner.aclose()
