"""The settings of one persona build (:class:`BuildOptions`), checked before any model call."""

from __future__ import annotations

from dataclasses import dataclass

from personahub.build.text_to_persona import ANGLES, DEFAULT_ANGLES, GRANULARITIES


@dataclass
class BuildOptions:
    """Settings of one build.

    Attributes:
        angles: Text-to-Persona angles (read, write, like, dislike).
        granularity: ``coarse`` or ``fine``.
        hops: Persona-to-Persona hops (0: Text-to-Persona only).
        per_hop: Related personas asked per parent and hop.
        limit: Read at most this many input texts (None: all).
        chunk_size: Texts or parent personas per LLM batch and store transaction.
        concurrency: Requests in flight (None: the gateway's setting).
        min_words: Quality filter: fewest words.
        max_words: Quality filter: most words.
        minhash_threshold: Jaccard threshold of MinHash dedup.
        embedding_threshold: Cosine threshold of embedding dedup.
        min_relevance: Drop Text-to-Persona personas whose cosine to their source text is
            below this (None: keep them all, the relevance is still stored and reported).
        seed: Mixed into every request's sampling seed.
    """

    angles: tuple[str, ...] = DEFAULT_ANGLES
    granularity: str = "coarse"
    hops: int = 2
    per_hop: int = 2
    limit: int | None = None
    chunk_size: int = 64
    concurrency: int | None = None
    min_words: int = 3
    max_words: int = 60
    minhash_threshold: float = 0.9
    embedding_threshold: float = 0.9
    min_relevance: float | None = None
    seed: int = 0

    def validate(self) -> None:
        """Raise ValueError with one readable line if a setting is out of range."""
        bad = [a for a in self.angles if a not in ANGLES]
        if bad or not self.angles:
            what = f"unknown angle {bad[0]!r}" if bad else "no angle given"
            raise ValueError(f"{what}; choose from {', '.join(ANGLES)}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(
                f"unknown granularity {self.granularity!r}; choose from {', '.join(GRANULARITIES)}"
            )
        for name, value, low in (
            ("hops", self.hops, 0),
            ("per_hop", self.per_hop, 1),
            ("chunk_size", self.chunk_size, 1),
            ("min_words", self.min_words, 1),
        ):
            if value < low:
                raise ValueError(f"{name} must be at least {low}, got {value}")
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"limit must not be negative, got {self.limit}")
        if self.max_words < self.min_words:
            raise ValueError("max_words must be at least min_words")
