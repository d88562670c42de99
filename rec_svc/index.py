"""hnswlib indexes, safe to query while tracks are added live (rec_svc.holder swaps versions).

hnswlib allows concurrent `add_items` calls but not `add_items` next to `knn_query`, and
`resize_index` next to nothing: every operation on one index holds that index's lock.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import hnswlib
import numpy as np

log = logging.getLogger(__name__)

SPACE = "cosine"
# Above this many excluded ids a query filters inside the graph search instead of over-fetching.
_OVERFETCH_LIMIT = 512


class AnnIndex:
    """One hnswlib index whose integer labels are row numbers into `keys` (track or user ids)."""

    def __init__(self, index: hnswlib.Index, keys: list[uuid.UUID], ef: int) -> None:
        self._index = index
        self.keys = keys
        self.rows = {key: row for row, key in enumerate(keys)}
        self.ef = ef
        self.deleted: set[int] = set()
        self._lock = threading.Lock()

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        keys: Sequence[uuid.UUID],
        *,
        m: int = 16,
        ef_construction: int = 200,
        ef: int = 64,
        threads: int = 1,
        seed: int = 100,
    ) -> AnnIndex:
        """Index `vectors` (row i is labelled i). One thread by default: the build is then deterministic."""
        n, dim = vectors.shape
        index = hnswlib.Index(space=SPACE, dim=dim)
        index.init_index(max_elements=max(n, 16), ef_construction=ef_construction, M=m, random_seed=seed)
        if n:
            index.add_items(vectors, np.arange(n, dtype=np.int64), num_threads=threads)
        index.set_ef(ef)
        return cls(index, list(keys), ef)

    @classmethod
    def load(cls, path: Path, dim: int, keys: list[uuid.UUID], ef: int, headroom: int = 1024) -> AnnIndex:
        """Load a saved index with room for `headroom` live additions before the first resize."""
        index = hnswlib.Index(space=SPACE, dim=dim)
        index.load_index(str(path), max_elements=len(keys) + headroom)
        if index.get_current_count() != len(keys):
            raise ValueError(f"{path}: {index.get_current_count()} vectors but {len(keys)} ids")
        index.set_ef(ef)
        return cls(index, keys, ef)

    def save(self, path: Path) -> None:
        with self._lock:
            self._index.save_index(str(path))

    @property
    def dim(self) -> int:
        return int(self._index.dim)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def live(self) -> int:
        return len(self.keys) - len(self.deleted)

    @property
    def m(self) -> int:
        return int(self._index.M)

    def vectors(self, rows: Iterable[int]) -> np.ndarray:
        """Stored (unit-length) vectors of `rows`."""
        wanted = list(rows)
        if not wanted:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return np.asarray(self._index.get_items(wanted, return_type="numpy"), dtype=np.float32)

    def query(
        self, vectors: np.ndarray, k: int, exclude: frozenset[int] | set[int] = frozenset()
    ) -> list[list[tuple[int, float]]]:
        """The k nearest rows to each query vector as (row, cosine similarity), nearest first."""
        queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if self.live == 0 or k <= 0 or queries.shape[0] == 0:
            return [[] for _ in range(queries.shape[0])]
        skip = set(exclude) | self.deleted if self.deleted else exclude
        use_filter = len(skip) > _OVERFETCH_LIMIT
        fetch = min(k if use_filter else k + len(skip), self.live)
        labels, distances = self._knn(queries, fetch, skip if use_filter else None)
        out: list[list[tuple[int, float]]] = []
        for row_labels, row_dist in zip(labels, distances, strict=True):
            hits = [
                (int(label), 1.0 - float(dist))
                for label, dist in zip(row_labels, row_dist, strict=True)
                if label >= 0 and int(label) not in skip
            ]
            out.append(hits[:k])
        return out

    def _knn(self, queries: np.ndarray, k: int, skip: set[int] | frozenset[int] | None) -> tuple:
        flt = (lambda label: label not in skip) if skip is not None else None
        while True:
            try:
                with self._lock:
                    self._index.set_ef(max(self.ef, k))
                    return self._index.knn_query(queries, k=k, num_threads=1, filter=flt)
            except RuntimeError:
                # hnswlib cannot fill k slots (too many filtered or deleted): ask for fewer.
                if k <= 1:
                    return np.full((queries.shape[0], 0), -1), np.zeros((queries.shape[0], 0))
                k = max(1, k // 2)

    def add(self, keys: Sequence[uuid.UUID], vectors: np.ndarray) -> list[int]:
        """Append new keys (ids already present keep their row and vector); returns their rows."""
        rows: list[int] = []
        fresh_rows: list[int] = []
        fresh_vectors: list[np.ndarray] = []
        for key, vec in zip(keys, vectors, strict=True):
            row = self.rows.get(key)
            if row is None:
                row = len(self.keys)
                self.keys.append(key)
                self.rows[key] = row
                fresh_rows.append(row)
                fresh_vectors.append(vec)
            rows.append(row)
        if fresh_rows:
            with self._lock:
                needed = len(self.keys)
                if needed > self._index.get_max_elements():
                    self._index.resize_index(max(needed, 2 * self._index.get_max_elements()))
                self._index.add_items(
                    np.stack(fresh_vectors), np.asarray(fresh_rows, dtype=np.int64), num_threads=1
                )
        return rows

    def update(self, rows: Sequence[int], vectors: np.ndarray) -> None:
        """Replace the vectors of existing rows (hnswlib re-links an updated element)."""
        if rows:
            with self._lock:
                self._index.add_items(vectors, np.asarray(rows, dtype=np.int64), num_threads=1)

    def delete(self, row: int) -> None:
        if row in self.deleted or row >= len(self.keys):
            return
        with self._lock:
            self._index.mark_deleted(row)
        self.deleted.add(row)
