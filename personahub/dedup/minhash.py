"""Near-duplicate removal with MinHash + LSH over word 1-grams.

Signatures come from :class:`~personahub.dedup.signatures.MinHasher` (vectorised, equal to
datasketch's ``MinHash`` for the same tokens); :func:`tokenize`, :class:`MinHasher` and
``DEFAULT_SCHEME`` stay importable from here.

LSH: the banding of datasketch's :class:`~datasketch.MinHashLSH` (its b bands x r rows
chosen for the threshold). Buckets are plain dicts from a 64-bit hash of the band to a row
number, filled and probed a whole batch at a time: datasketch's storage takes a byte string
key and allocates a Python set per bucket, which was most of the time of the first
version. :meth:`MinHashDeduper.to_minhash_lsh` builds the equivalent datasketch index when
one is wanted. A candidate counts as a duplicate only if its estimated Jaccard (signature
agreement) is at least the threshold, which removes LSH's false positives.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from itertools import repeat

import numpy as np
from datasketch import LeanMinHash, MinHashLSH

from personahub.dedup.signatures import DEFAULT_SCHEME, MinHasher, datasketch_has_schemes, tokenize

__all__ = ["DEFAULT_SCHEME", "MinHashDeduper", "MinHasher", "tokenize"]


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
        kwargs = {"scheme": self.hasher.scheme} if datasketch_has_schemes() else {}
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
