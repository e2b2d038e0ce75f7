"""The analytics period: local days in any zone, exact at DST transitions, and its limits."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pytest

from helpfaster_box.analytics import topics
from helpfaster_box.analytics.period import resolve_period
from helpfaster_box.errors import Invalid


@pytest.mark.parametrize(
    "tz", ["UTC", "Europe/Oslo", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe"]
)
def test_the_sql_local_day_matches_zoneinfo_for_every_instant_of_a_year(tz):
    period = resolve_period("2025-01-01", "2025-12-31", tz, 366)
    rng = random.Random(3)
    span = (period.end - period.start).total_seconds()
    instants = [period.start + timedelta(seconds=rng.uniform(0, span)) for _ in range(3000)]
    # and the seconds around every transition
    for until, _ in period.segments[:-1]:
        assert until is not None
        instants += [until + timedelta(seconds=s) for s in (-3601, -1, 0, 1, 3601)]
    params: dict = {}
    expr = period.day_sql("ts", params)
    con = duckdb.connect()
    con.execute("CREATE TABLE t (ts TIMESTAMP)")
    con.executemany("INSERT INTO t VALUES (?)", [[i] for i in instants])
    got = con.execute(f"SELECT ts, {expr} FROM t ORDER BY ts", params).fetchall()
    zone = ZoneInfo(tz)
    for ts, day in got:
        assert day == ts.replace(tzinfo=UTC).astimezone(zone).date(), (ts, tz)
    assert period.days[0].isoformat() == "2025-01-01" and period.days[-1].isoformat() == "2025-12-31"


def test_date_only_bounds_are_local_days_and_to_includes_its_whole_day():
    p = resolve_period("2026-03-29", "2026-03-29", "Europe/Oslo", 366)
    assert p.start == datetime(2026, 3, 28, 23, 0)  # CET midnight
    assert p.end == datetime(2026, 3, 29, 21, 59, 59, 999999)  # a 23-hour day: CEST from 02:00
    assert [d.isoformat() for d in p.days] == ["2026-03-29"]
    q = resolve_period("2026-03-29T08:00:00", "2026-03-29T09:00:00Z", "Europe/Oslo", 366)
    assert q.start == datetime(2026, 3, 29, 6, 0) and q.end == datetime(2026, 3, 29, 9, 0)


def test_default_period_is_thirty_local_days_ending_now():
    p = resolve_period(None, None, "Pacific/Kiritimati", 366)
    assert len(p.days) == 30
    now_local = datetime.now(UTC).astimezone(ZoneInfo("Pacific/Kiritimati"))
    assert p.days[-1] == now_local.date()


@pytest.mark.parametrize(
    ("start", "end", "tz", "field"),
    [
        ("2026-02-01", "2026-01-01", "UTC", "from"),
        ("2026-01-01", "2026-01-02", "Mars/Olympus_Mons", "timezone"),
        ("2026-01-01", "2026-01-02", "../../etc/passwd", "timezone"),
        ("2024-01-01", "2025-06-01", "UTC", "from"),
        ("yesterday", None, "UTC", "from"),
        (None, "2026-13-45", "UTC", "to"),
    ],
)
def test_bad_periods_are_invalid_naming_the_field(start, end, tz, field):
    with pytest.raises(Invalid) as err:
        resolve_period(start, end, tz, 366)
    assert err.value.details[0]["field"] == field


def test_topic_ids_follow_their_centroids_and_new_clusters_get_none():
    rng = np.random.default_rng(1)
    old = [rng.normal(size=8) for _ in range(3)]
    new = [old[2] + 0.01, old[0] - 0.01, rng.normal(size=8)]
    assert topics.match_ids(new, [("a", old[0]), ("b", old[1]), ("c", old[2])])[:2] == ["c", "a"]
    assert topics.match_ids(new, [])[2] is None


def test_keywords_leave_out_stop_words_and_question_words():
    labels = np.array([0, 0, 1, 1])
    texts = ["How do I reset my password?", "I forgot my password", "Where is my invoice?", "Invoice wrong"]
    kw = topics.ctfidf_keywords(texts, labels, 2)
    assert kw[0][0] == "password" and kw[1][0] == "invoice"
    assert not {"how", "do", "my", "where", "is"} & {w for k in kw for w in k}


def test_few_questions_make_one_topic_and_none_make_none():
    x = np.eye(4, 8, dtype=np.float32)
    assert len(topics.cluster_questions(["a b c"] * 4, x)) == 1
    assert topics.cluster_questions([], np.zeros((0, 8), dtype=np.float32)) == []
