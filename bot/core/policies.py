"""A feature's policy file (approval routing, pricing, recommendation weights …), loaded
once on first use and swappable for a test or a reload."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class PolicyHolder(Generic[T]):
    def __init__(self, load: Callable[[], T]) -> None:
        self._load = load
        self._current: T | None = None

    def current(self) -> T:
        if self._current is None:
            self._current = self._load()
        return self._current

    @contextmanager
    def use(self, policy: T) -> Iterator[T]:
        """Swap the policy; restores the previous one afterwards."""
        previous, self._current = self._current, policy
        try:
            yield policy
        finally:
            self._current = previous
