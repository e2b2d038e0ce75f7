"""The ingestion worker's queue: index tidying first, then ingestion round-robin by organization.

With one FIFO, an organization that uploads 200 documents (or one slow one) made every other
organization's 30-byte text source wait behind all of them. Here each organization has its
own FIFO and the worker takes the next job from the organization served least recently, so
another organization's source waits for at most one job per organization ahead of it (each bounded by the parse limits of
knowledge/sandbox.py). Index tidying after a delete is quick and keeps its order ahead of all.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

Job = Callable[[], None]
TIDY = "\x00tidy"  # the lane of index tidying jobs, served before any organization


class FairJobs:
    def __init__(self) -> None:
        self._lanes: dict[str, deque[Job]] = {}
        self._turns: deque[str] = deque()  # organizations with work, in serving order
        self._tidy: deque[Job] = deque()
        self._served: dict[str, int] = {}  # org -> when it was last given a job
        self._clock = 0
        self._closed = False
        self._ready = threading.Condition()

    def put(self, job: Job, org: str = TIDY) -> None:
        with self._ready:
            if org == TIDY:
                self._tidy.append(job)
            else:
                lane = self._lanes.get(org)
                if lane is None:
                    lane = self._lanes[org] = deque()
                    self._turns.append(org)
                lane.append(job)
            self._ready.notify()

    def get(self) -> Job | None:
        """The next job, blocking; None once closed (after the jobs left in it are taken)."""
        with self._ready:
            while True:
                if self._tidy:
                    return self._tidy.popleft()
                if self._turns:
                    # The organization served least recently goes next: one whose document is
                    # running now and that queues another waits behind a newcomer.
                    org = min(self._turns, key=lambda o: self._served.get(o, -1))
                    self._turns.remove(org)
                    self._clock += 1
                    self._served[org] = self._clock
                    if len(self._served) > 10_000:
                        self._served = {o: t for o, t in self._served.items() if o in self._lanes}
                    lane = self._lanes[org]
                    job = lane.popleft()
                    if lane:
                        self._turns.append(org)  # its next job waits for the others' turns
                    else:
                        del self._lanes[org]
                    return job
                if self._closed:
                    return None
                self._ready.wait()

    def close(self, keep: Callable[[Job], bool]) -> list[Job]:
        """Stop: drop the jobs `keep` rejects (returned), leave the rest to be taken."""
        with self._ready:
            dropped = [j for lane in self._lanes.values() for j in lane if not keep(j)]
            dropped += [j for j in self._tidy if not keep(j)]
            for org in list(self._lanes):
                self._lanes[org] = deque(j for j in self._lanes[org] if keep(j))
                if not self._lanes[org]:
                    del self._lanes[org]
            self._turns = deque(o for o in self._turns if o in self._lanes)
            self._tidy = deque(j for j in self._tidy if keep(j))
            self._closed = True
            self._ready.notify_all()
            return dropped
