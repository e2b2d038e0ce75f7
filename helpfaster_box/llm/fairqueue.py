"""Bounded waiting room for generation requests, served fairly across tenants.

Plain FIFO lets one organization that sends a burst delay everyone else by the
length of its burst. Instead the next request comes from the tenant with the
fewest sequences currently decoding, then the one served least recently, then
the oldest request: an idle tenant's single request goes ahead of a busy
tenant's backlog.

Not thread-safe by itself; the engine guards it with its lock.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator
from typing import Generic, Protocol, TypeVar


class _Tenanted(Protocol):
    tenant: str


T = TypeVar("T", bound=_Tenanted)

_FORGET_AFTER = 4096  # tenants remembered for "served least recently"


class QueueFull(Exception):
    """The waiting room (or this tenant's share of it) has no seat left."""


class FairQueue(Generic[T]):
    def __init__(self, capacity: int, per_tenant: int | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        # A quarter of the room stays open to other tenants, so one tenant's flood
        # turns into 503s for that tenant rather than for everybody.
        self.per_tenant = per_tenant if per_tenant is not None else max(1, capacity * 3 // 4)
        self._waiting: dict[str, deque[tuple[int, T]]] = {}
        self._size = 0
        self._arrival = itertools.count()
        self._served = itertools.count(1)
        self._last_served: dict[str, int] = {}

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[T]:
        for items in self._waiting.values():
            for _, item in items:
                yield item

    def put(self, item: T) -> None:
        items = self._waiting.get(item.tenant)
        if self._size >= self.capacity or (items is not None and len(items) >= self.per_tenant):
            raise QueueFull()
        if items is None:
            items = self._waiting[item.tenant] = deque()
        items.append((next(self._arrival), item))
        self._size += 1

    def peek(self, active: Callable[[str], int] = lambda tenant: 0) -> T | None:
        """The request that should be admitted next. `active(tenant)` is how many
        of the tenant's sequences are decoding right now."""
        best_key: tuple[int, int, int] | None = None
        best: T | None = None
        for tenant, items in self._waiting.items():
            arrival, item = items[0]
            key = (active(tenant), self._last_served.get(tenant, 0), arrival)
            if best_key is None or key < best_key:
                best_key, best = key, item
        return best

    def pop(self, item: T) -> None:
        """Take `item` (from peek) out of the queue and record its tenant as served."""
        self.remove(item)
        self._last_served[item.tenant] = next(self._served)
        if len(self._last_served) > _FORGET_AFTER:
            oldest = sorted(self._last_served, key=self._last_served.__getitem__)
            for tenant in oldest[: _FORGET_AFTER // 2]:
                del self._last_served[tenant]

    def remove(self, item: T) -> bool:
        """Drop `item` if it is still waiting (e.g. its client went away)."""
        items = self._waiting.get(item.tenant)
        if not items:
            return False
        for entry in items:
            if entry[1] is item:
                items.remove(entry)
                break
        else:
            return False
        self._size -= 1
        if not items:
            del self._waiting[item.tenant]
        return True

    def drain(self) -> list[T]:
        items = list(self)
        self._waiting.clear()
        self._size = 0
        return items
