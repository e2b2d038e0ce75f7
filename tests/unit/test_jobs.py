"""The ingestion queue: organizations take turns, least recently served first; tidying first."""

from __future__ import annotations

from helpfaster_box.knowledge.jobs import FairJobs


def job(name: str, log: list[str]):
    return lambda: log.append(name)


def test_a_newcomer_goes_before_the_organization_whose_document_is_running():
    q, log = FairJobs(), []
    q.put(job("a1", log), "A")
    first = q.get()  # a1 is running
    assert first is not None
    first()
    q.put(job("a2", log), "A")
    q.put(job("a3", log), "A")
    q.put(job("b1", log), "B")
    q.put(job("tidy", log))
    q.close(keep=lambda _j: True)
    while (j := q.get()) is not None:
        j()
    assert log == ["a1", "tidy", "b1", "a2", "a3"]


def test_organizations_alternate():
    q, log = FairJobs(), []
    for i in range(3):
        q.put(job(f"a{i}", log), "A")
    for i in range(2):
        q.put(job(f"b{i}", log), "B")
    q.put(job("c0", log), "C")
    q.close(keep=lambda _j: True)
    while (j := q.get()) is not None:
        j()
    assert log == ["a0", "b0", "c0", "a1", "b1", "a2"]
