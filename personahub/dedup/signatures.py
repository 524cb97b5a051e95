"""MinHash signatures of word 1-grams (what :mod:`personahub.dedup.minhash` indexes).

Signatures are computed for a whole batch at once with numpy: every distinct token is
hashed once (datasketch's sha1-based 32-bit hash, cached), the permutations are applied
to all tokens of a chunk of documents as one matrix operation, and ``np.minimum.reduceat``
takes the per-document minimum. The values equal datasketch's ``MinHash`` built from the
same tokens (same seed-derived permutations, same scheme), so our sketches and decisions
can be checked against a plain datasketch loop and used with its ``MinHashLSH``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Sequence
from itertools import chain
from operator import methodcaller

import numpy as np
from datasketch import MinHash
from datasketch.hashfunc import sha1_hash32

_TOKEN = re.compile(r"\w+")
_MERSENNE_PRIME = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)
# Tokens per numpy chunk: the (num_perm x tokens) matrix (4 MiB at 128 perms) stays in cache.
_CHUNK_TOKENS = 8192
_VOCAB_LIMIT = 2_000_000


def datasketch_has_schemes() -> bool:
    """Whether the installed datasketch (>= 2) takes a permutation ``scheme``."""
    return "scheme" in inspect.signature(MinHash.__init__).parameters


DEFAULT_SCHEME = "affine32" if datasketch_has_schemes() else "legacy"


def tokenize(text: str) -> list[str]:
    """Word 1-grams: lowercase, punctuation stripped (``\\w+`` runs)."""
    return _TOKEN.findall(text.lower())


# ASCII fast path of tokenize(): bytes.translate lowercases A-Z and blanks every byte that
# is not [A-Za-z0-9_] (what \w means for ASCII), then bytes.split cuts the words.
_ASCII_WORDS = bytes(
    (c | 0x20 if 65 <= c <= 90 else c) if chr(c).isascii() and (chr(c).isalnum() or c == 95) else 32
    for c in range(256)
)


def _token_bytes(texts: Sequence[str]) -> list[list[bytes]]:
    r""":func:`tokenize` of each text, as UTF-8 bytes (what datasketch hashes).

    All C-level maps: a per-token Python loop would dominate the run time. Non-ASCII texts
    (a few percent of personas) take the regex path so that ``\w`` keeps its Unicode sense.
    """
    words = list(
        map(bytes.split, map(methodcaller("translate", _ASCII_WORDS), map(str.encode, texts)))
    )
    for i in [i for i, ascii_only in enumerate(map(str.isascii, texts)) if not ascii_only]:
        words[i] = [w.encode("utf-8") for w in tokenize(texts[i])]
    return words


def _fmix32(h: np.ndarray) -> np.ndarray:
    # MurmurHash3 finalizer, as datasketch applies it before the affine32 permutations.
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


class MinHasher:
    """Vectorised MinHash signatures, equal to datasketch's for the same token sets.

    Args:
        num_perm: Number of permutations.
        seed: Seed of the permutations (datasketch's default is 1).
        scheme: ``affine32`` (datasketch >= 2 default) or ``legacy`` (datasketch < 2).
    """

    def __init__(self, num_perm: int = 128, seed: int = 1, scheme: str = DEFAULT_SCHEME) -> None:
        if scheme not in ("affine32", "legacy"):
            raise ValueError(f"unsupported scheme {scheme!r} (use affine32 or legacy)")
        self.num_perm, self.seed, self.scheme = num_perm, seed, scheme
        # Draw the permutations exactly as datasketch does (RandomState(seed)).
        kwargs = {"scheme": scheme} if datasketch_has_schemes() else {}
        reference = MinHash(num_perm=num_perm, seed=seed, **kwargs)
        a, b = (np.asarray(p) for p in reference.permutations)
        self.dtype = np.uint32 if scheme == "affine32" else np.uint64
        self._a_col = a.astype(self.dtype)[:, None]
        self._b_col = b.astype(self.dtype)[:, None]
        self.empty = np.full(num_perm, np.iinfo(np.uint32).max, dtype=self.dtype)
        # token (UTF-8) -> its hash, pre-mixed for the scheme (each hashed once per process).
        self._vocab: dict[bytes, int] = {}

    def _token_hashes(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Pre-mixed token hashes of all documents concatenated, and each one's token count."""
        if len(self._vocab) > _VOCAB_LIMIT:
            # An open-ended vocabulary would grow without bound on a big corpus.
            self._vocab.clear()
        vocab = self._vocab
        token_lists = _token_bytes(texts)
        counts = np.fromiter(map(len, token_lists), np.int64, len(token_lists))
        flat = list(chain.from_iterable(token_lists))
        try:
            # Once the vocabulary is warm this single pass is all there is.
            hashes = np.fromiter(map(vocab.__getitem__, flat), self.dtype, len(flat))
        except KeyError:
            new = sorted(set(flat).difference(vocab))
            raw = np.fromiter(map(sha1_hash32, new), np.uint64, len(new))
            mixed = _fmix32(raw.astype(np.uint32)) if self.scheme == "affine32" else raw
            vocab.update(zip(new, mixed.tolist(), strict=True))
            hashes = np.fromiter(map(vocab.__getitem__, flat), self.dtype, len(flat))
        return hashes, counts

    def _permute_t(self, hashes: np.ndarray) -> np.ndarray:
        """Permuted values as a (num_perm, tokens) matrix.

        This layout makes the per-document min a contiguous reduceat along rows, which is
        several times faster than the (tokens, num_perm) layout.
        """
        h = hashes[None, :]
        if self.scheme == "affine32":
            out = self._a_col * h  # wraps modulo 2**32, as datasketch's uint32 maths
            out += self._b_col
            return out
        # Legacy: the uint64 product wraps modulo 2**64 before the prime, as in datasketch.
        return np.bitwise_and((self._a_col * h + self._b_col) % _MERSENNE_PRIME, _MAX_HASH)

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """Return an ``(n, num_perm)`` array of signatures (datasketch's ``hashvalues``).

        A text without tokens gets the empty signature (all maximal), like a datasketch
        MinHash that was never updated.
        """
        out = np.empty((len(texts), self.num_perm), dtype=self.dtype)
        if not len(texts):
            return out
        with np.errstate(over="ignore"):
            hashes, counts = self._token_hashes(texts)
            ends = np.cumsum(counts)
            starts = ends - counts
            first = 0
            while first < len(texts):
                # Take documents until the chunk holds about _CHUNK_TOKENS tokens.
                limit = starts[first] + _CHUNK_TOKENS
                last = max(int(np.searchsorted(ends, limit, side="right")), first + 1)
                begin, stop = int(starts[first]), int(ends[last - 1])
                nonempty = counts[first:last] > 0
                block = np.broadcast_to(self.empty, (last - first, self.num_perm)).copy()
                if stop > begin:
                    permuted = self._permute_t(hashes[begin:stop])
                    # Empty documents are left out: reduceat would give them one value.
                    offsets = starts[first:last][nonempty] - begin
                    block[nonempty] = np.minimum.reduceat(permuted, offsets, axis=1).T
                out[first:last] = block
                first = last
        return out
