"""Uniform sampling without replacement in one pass over a stream of unknown length."""
from __future__ import annotations

import numpy as np


class Reservoir:
    """Keeps the ``n`` stream positions (and optionally rows) with the smallest uniform keys.

    Every row gets a key from ``random_state.random_sample``, drawn in stream order, so the
    sample depends only on the seed and the row order, not on how the stream is chunked.
    Memory is O(n) plus the chunk being offered.
    """

    def __init__(self, n: int, random_state: np.random.RandomState):
        if n < 1:
            raise ValueError(f"the sample size must be at least 1, got {n}")
        self.n = n
        self.random_state = random_state
        self.n_seen = 0
        self._keys: list | np.ndarray = []
        self._positions: list | np.ndarray = []
        self._rows: list | np.ndarray = []
        self._n_kept = 0
        self._full = False

    def offer(self, n_rows: int, rows: np.ndarray | None = None) -> None:
        """The next ``n_rows`` rows of the stream (their data, when the rows are to be kept)."""
        keys = self.random_state.random_sample(n_rows)
        positions = self.n_seen + np.arange(n_rows)
        self.n_seen += n_rows
        start = 0
        if not self._full:
            start = min(n_rows, self.n - self._n_kept)
            self._n_kept += start
            self._keys.append(keys[:start])
            self._positions.append(positions[:start])
            if rows is not None:
                self._rows.append(rows[:start])
            if self._n_kept == self.n:
                self._keys = np.concatenate(self._keys)
                self._positions = np.concatenate(self._positions)
                self._rows = np.concatenate(self._rows) if rows is not None else None
                self._full = True
        if start == n_rows:
            return
        cand = start + np.flatnonzero(keys[start:] < self._keys.max())
        if cand.size == 0:
            return
        keep = np.argpartition(np.concatenate([self._keys, keys[cand]]), self.n - 1)[: self.n]
        entering = cand[keep[keep >= self.n] - self.n]
        free = np.setdiff1d(np.arange(self.n), keep[keep < self.n], assume_unique=True)
        self._keys[free] = keys[entering]
        self._positions[free] = positions[entering]
        if rows is not None:
            self._rows[free] = rows[entering]

    def result(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Kept positions in stream order, and the kept rows in the same order (or None)."""
        if not self._full:
            positions = np.concatenate(self._positions) if self._positions else np.empty(0, dtype=np.intp)
            rows = np.concatenate(self._rows) if self._rows else None
            return positions, rows
        order = np.argsort(self._positions, kind="stable")
        return self._positions[order], None if self._rows is None else self._rows[order]
