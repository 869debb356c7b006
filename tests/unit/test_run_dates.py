"""The run-date and cutoff rules (``hybridrec.run_dates``) that the nightly, ALS and evaluate jobs share."""

from __future__ import annotations

import argparse
import datetime as dt

import pytest

from hybridrec.run_dates import (
    cutoff_after,
    date_cutoff,
    default_evaluation_cutoff,
    evaluation_cutoff_date,
    naive_utc,
    parse_cutoff,
    parse_run_date,
    start_of_day,
)


def test_a_run_date_starts_at_midnight_utc() -> None:
    assert start_of_day(dt.date(2026, 1, 2)) == dt.datetime(2026, 1, 2, 0, 0)
    assert date_cutoff("2025-12-18") == dt.datetime(2025, 12, 18)


def test_parse_cutoff_keeps_naive_utc_and_names_what_is_wrong() -> None:
    assert parse_cutoff("2025-12-25T00:00:00Z") == dt.datetime(2025, 12, 25)
    assert parse_cutoff("2025-12-25T02:30:00+02:00") == dt.datetime(2025, 12, 25, 0, 30)
    with pytest.raises(argparse.ArgumentTypeError, match="is not a time like 2026-01-01T00:00:00Z"):
        parse_cutoff("yesterday")
    with pytest.raises(argparse.ArgumentTypeError, match="must name its time zone"):
        parse_cutoff("2025-12-25T00:00:00")


def test_parse_run_date() -> None:
    assert parse_run_date("2026-11-24") == dt.date(2026, 11, 24)
    with pytest.raises(argparse.ArgumentTypeError, match="is not a date like 2026-11-24"):
        parse_run_date("24.11.2026")


def test_default_evaluation_cutoff_leaves_the_last_day_inside_the_test_window() -> None:
    last = dt.datetime(2025, 12, 31, 17, 5)
    cutoff = default_evaluation_cutoff(last, 14)
    assert cutoff == dt.datetime(2025, 12, 18)
    assert cutoff + dt.timedelta(days=14) > last
    assert evaluation_cutoff_date(dt.date(2026, 1, 1), 14) == dt.date(2025, 12, 18)


def test_cutoff_after_uses_every_event_and_naive_utc_converts_aware_times() -> None:
    last = dt.datetime(2025, 12, 31, 23, 59, 59)
    assert cutoff_after(last) == dt.datetime(2026, 1, 1)
    aware = dt.datetime(2026, 1, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert naive_utc(aware) == dt.datetime(2026, 1, 1) and naive_utc(last) is last
