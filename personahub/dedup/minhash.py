"""Near-duplicate removal with MinHash + LSH over word 1-grams.

Signatures are computed for a whole batch at once with numpy: every distinct token is
hashed once (datasketch's sha1-based 32-bit hash, cached), the permutations are applied
to all tokens of a chunk of documents as one matrix operation, and ``np.minimum.reduceat``
takes the per-document minimum. The values equal datasketch's ``MinHash`` built from the
same tokens (same seed-derived permutations, same scheme), so our sketches and decisions
can be checked against a plain datasketch loop and used with its ``MinHashLSH``.

LSH: the banding of datasketch's :class:`~datasketch.MinHashLSH` (its b bands x r rows
chosen for the threshold). Buckets are plain dicts from a 64-bit hash of the band to a row
number, filled and probed a whole batch at a time: datasketch's storage takes a byte string
key and allocates a Python set per bucket, which was most of the time of the first
version. :meth:`MinHashDeduper.to_minhash_lsh` builds the equivalent datasketch index when
one is wanted. A candidate counts as a duplicate only if its estimated Jaccard (signature
agreement) is at least the threshold, which removes LSH's false positives.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Hashable, Sequence
from itertools import chain, repeat
from operator import methodcaller

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH
from datasketch.hashfunc import sha1_hash32

_TOKEN = re.compile(r"\w+")
_MERSENNE_PRIME = np.uint64((1 << 61) - 1)
_MAX_HASH = np.uint64((1 << 32) - 1)
# Tokens per numpy chunk: the (num_perm x tokens) matrix (4 MiB at 128 perms) stays in cache.
_CHUNK_TOKENS = 8192
_VOCAB_LIMIT = 2_000_000


def _datasketch_has_schemes() -> bool:
    return "scheme" in inspect.signature(MinHash.__init__).parameters


DEFAULT_SCHEME = "affine32" if _datasketch_has_schemes() else "legacy"


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
        kwargs = {"scheme": scheme} if _datasketch_has_schemes() else {}
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


class _BandIndex:
    """One LSH band: band hash -> kept row.

    A bucket holds a row number (>= 0), or ``-2 - i`` when several rows share the key and
    live in ``overflow[i]``; plain ints let lookups run as one C-level pass into numpy.
    """

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.overflow: list[list[int]] = []

    def lookup(self, keys: list[int]) -> np.ndarray:
        """The bucket code of each key (-1 when empty)."""
        return np.fromiter(map(self.buckets.get, keys, repeat(-1)), np.int64, len(keys))

    def rows(self, code: int) -> list[int]:
        """The rows behind a bucket code."""
        return [code] if code >= 0 else self.overflow[-code - 2]

    def add(self, keys: list[int], rows: list[int]) -> None:
        """Put each row in the bucket of its key."""
        buckets = self.buckets
        if len(set(keys)) == len(keys) and not any(map(buckets.__contains__, keys)):
            buckets.update(zip(keys, rows, strict=True))  # the usual case, all in C
            return
        for key, row in zip(keys, rows, strict=True):
            code = buckets.get(key, -1)
            if code == -1:
                buckets[key] = row
            elif code >= 0:
                self.overflow.append([code, row])
                buckets[key] = -1 - len(self.overflow)
            else:
                self.overflow[-code - 2].append(row)


class MinHashDeduper:
    """Incremental near-duplicate filter (Jaccard of word sets >= threshold).

    Each item is compared with everything kept before it, in this batch or earlier ones, so
    feeding items in one batch or many gives the same decisions.

    Args:
        threshold: Jaccard similarity at or above which an item is a near-duplicate.
        num_perm: MinHash permutations.
        seed: Permutation seed.
        scheme: datasketch permutation scheme (see :class:`MinHasher`).
        verify: Confirm LSH candidates by estimated Jaccard (drops LSH false positives).
    """

    def __init__(
        self,
        threshold: float = 0.9,
        num_perm: int = 128,
        seed: int = 1,
        scheme: str = DEFAULT_SCHEME,
        verify: bool = True,
    ) -> None:
        self.threshold = threshold
        self.verify = verify
        self.hasher = MinHasher(num_perm=num_perm, seed=seed, scheme=scheme)
        # datasketch chooses the banding (b, r) for the threshold; rows are kept items
        # numbered in keep order.
        self.hashranges: list[tuple[int, int]] = MinHashLSH(threshold, num_perm).hashranges
        self._bands = [_BandIndex() for _ in self.hashranges]
        self._keys: list[Hashable] = []
        self._seen: set[Hashable] = set()
        self._signatures = np.empty((1024, num_perm), dtype=self.hasher.dtype)
        self._dropped: dict[Hashable, Hashable] = {}
        # Agreement needed for "estimated Jaccard >= threshold" (0 accepts every candidate).
        self._min_equal = int(np.ceil(threshold * num_perm - 1e-9)) if verify else 0
        self._band_mix = np.random.RandomState(seed).randint(
            1, 2**62, size=num_perm, dtype=np.uint64
        ) | np.uint64(1)

    def __len__(self) -> int:
        """Number of kept (indexed) items."""
        return len(self._keys)

    def band_hashes(self, signatures: np.ndarray) -> np.ndarray:
        """An ``(n, b)`` array: a 64-bit hash of each band of each signature.

        A random linear map of the band's r values (mod 2**64). Two different bands collide
        with probability about 2**-64; a collision would only add a candidate, which must
        still pass the Jaccard check, so decisions are those of exact band keys.
        """
        out = np.empty((len(signatures), len(self.hashranges)), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for band, (start, end) in enumerate(self.hashranges):
                mixed = signatures[:, start:end].astype(np.uint64) * self._band_mix[start:end]
                out[:, band] = mixed.sum(axis=1, dtype=np.uint64)
        return out

    @staticmethod
    def _shared_in_batch(hashes: np.ndarray) -> np.ndarray:
        """Items whose band hash (in some band) occurs more than once in the batch."""
        shared = np.zeros(len(hashes), dtype=bool)
        for column in hashes.T:
            _, inverse, counts = np.unique(column, return_inverse=True, return_counts=True)
            shared |= counts[inverse.reshape(-1)] > 1
        return shared

    def _keep_signatures(self, rows: np.ndarray) -> None:
        needed = len(self._keys) + len(rows)
        if needed > len(self._signatures):
            grown = np.empty((max(needed, 2 * len(self._signatures)), rows.shape[1]), rows.dtype)
            grown[: len(self._keys)] = self._signatures[: len(self._keys)]
            self._signatures = grown
        self._signatures[len(self._keys) : needed] = rows

    def _prior_matches(self, signatures: np.ndarray, bands: list[list[int]]) -> np.ndarray:
        """For each item, the lowest kept row among its LSH candidates in the index that
        passes the Jaccard check, or -1."""
        n = len(signatures)
        best = np.full(n, -1, dtype=np.int64)
        if not self._keys:
            return best
        items_parts: list[np.ndarray] = []
        rows_parts: list[np.ndarray] = []
        for index, keys in zip(self._bands, bands, strict=True):
            codes = index.lookup(keys)
            single = np.flatnonzero(codes >= 0)
            items_parts.append(single.astype(np.int64))
            rows_parts.append(codes[single])
            for i in np.flatnonzero(codes <= -2).tolist():  # shared buckets: rare
                shared = index.rows(int(codes[i]))
                items_parts.append(np.full(len(shared), i, dtype=np.int64))
                rows_parts.append(np.asarray(shared, dtype=np.int64))
        # A pair found in several bands is checked once: unique (item, row), sorted by item
        # then row, so that the first passing row of an item is its lowest.
        pairs = np.unique(np.concatenate(items_parts) << 32 | np.concatenate(rows_parts))
        if not len(pairs):
            return best
        item_arr, row_arr = pairs >> 32, pairs & 0xFFFFFFFF
        # Checked in slices so that the compared pairs stay a few MiB.
        passed = np.empty(len(item_arr), dtype=bool)
        step = 16_384
        for start in range(0, len(item_arr), step):
            sl = slice(start, start + step)
            equal = np.count_nonzero(
                self._signatures[row_arr[sl]] == signatures[item_arr[sl]], axis=1
            )
            passed[sl] = equal >= self._min_equal
        item_arr, row_arr = item_arr[passed], row_arr[passed]
        first_items, first = np.unique(item_arr, return_index=True)
        best[first_items] = row_arr[first]
        return best

    def add_batch(self, keys: Sequence[Hashable], texts: Sequence[str]) -> list[bool]:
        """Decide keep (True) or drop (False) for each item, in order, and index the kept.

        Args:
            keys: Unique identifiers of the items (e.g. persona ids).
            texts: The texts.

        Returns:
            One flag per item.

        Raises:
            ValueError: If lengths differ or a key was already added.
        """
        if len(keys) != len(texts):
            raise ValueError("keys and texts differ in length")
        keys = list(keys)
        if len(set(keys)) != len(keys) or not self._seen.isdisjoint(keys):
            raise ValueError("a key was already added (keys must be unique)")
        self._seen.update(keys)
        if not keys:
            return []
        signatures = self.hasher.signatures(texts)
        hashes = self.band_hashes(signatures)
        bands = [column.tolist() for column in hashes.T]
        prior = self._prior_matches(signatures, bands)
        keep = prior < 0
        dropped = np.flatnonzero(~keep).tolist()
        self._dropped.update(
            zip(
                [keys[i] for i in dropped],
                [self._keys[r] for r in prior[dropped].tolist()],
                strict=True,
            )
        )
        # Only items sharing a band key with another item of this batch can be near-duplicates
        # of something kept earlier in the batch; check those one by one, in order.
        buckets: list[dict[int, list[int]]] = [{} for _ in bands]
        for i in np.flatnonzero(keep & self._shared_in_batch(hashes)).tolist():
            candidates: set[int] = set()
            for bucket, band in zip(buckets, bands, strict=True):
                found = bucket.get(band[i])
                if found:
                    candidates.update(found)
            if candidates:
                ordered = sorted(candidates)
                equal = np.count_nonzero(signatures[ordered] == signatures[i], axis=1)
                hit = np.flatnonzero(equal >= self._min_equal)
                if len(hit):
                    keep[i] = False
                    self._dropped[keys[i]] = keys[ordered[int(hit[0])]]
                    continue
            for bucket, band in zip(buckets, bands, strict=True):
                bucket.setdefault(band[i], []).append(i)
        self._index(np.flatnonzero(keep).tolist(), bands, signatures, keys)
        return keep.tolist()

    def _index(
        self,
        kept: list[int],
        bands: list[list[int]],
        signatures: np.ndarray,
        keys: list[Hashable],
    ) -> None:
        """Add kept items to the band index and keep their signatures."""
        if not kept:
            return
        first_row = len(self._keys)
        self._keep_signatures(signatures[kept])
        rows = list(range(first_row, first_row + len(kept)))
        for index, band in zip(self._bands, bands, strict=True):
            index.add([band[i] for i in kept], rows)
        self._keys.extend(keys[i] for i in kept)

    def to_minhash_lsh(self) -> MinHashLSH:
        """A datasketch ``MinHashLSH`` holding the kept items (keyed by their keys)."""
        lsh = MinHashLSH(threshold=self.threshold, num_perm=self.hasher.num_perm)
        kwargs = {"scheme": self.hasher.scheme} if _datasketch_has_schemes() else {}
        with lsh.insertion_session() as session:
            for row, key in enumerate(self._keys):
                values = self._signatures[row]
                session.insert(key, LeanMinHash(seed=self.hasher.seed, hashvalues=values, **kwargs))
        return lsh

    def duplicates_of(self, key: Hashable) -> Hashable | None:
        """The kept item that ``key`` was dropped as a near-duplicate of (None if kept)."""
        return self._dropped.get(key)

    @property
    def dropped(self) -> dict[Hashable, Hashable]:
        """Dropped key -> kept key it duplicates."""
        return dict(self._dropped)
