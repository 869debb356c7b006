"""Run dates and cutoffs: the rules that turn a night, a command-line string or a log's last event
into the instant before which a step uses the data.

Why one module: the nightly job, the ALS job, the ALS refit and the offline evaluation all pick a
cutoff, and a night fitted by one of them must mean the same instant in the others (a run date D
uses the events before D 00:00 UTC). The rules are plain functions (the command-line parsers raise
``argparse.ArgumentTypeError`` so that argparse prints their message as it is); reading a table to
find the last event stays with the caller, which names the table in its own error.

Every time here is naive UTC (``runs.utcnow``): a cutoff is compared with Delta timestamps through
``utc_timestamp``, and the last event is collected as epoch microseconds, because a collected
timestamp would be converted to the driver's local time.
"""

from __future__ import annotations

import argparse
import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

_EPOCH = dt.datetime(1970, 1, 1)


def start_of_day(day: dt.date) -> dt.datetime:
    """``day`` at 00:00 UTC (naive): the cutoff of a run date, whose night uses the events before it."""
    return dt.datetime.combine(day, dt.time())


def naive_utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` as naive UTC: an aware time is converted, a naive one is taken to be UTC already."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def parse_run_date(value: str) -> dt.date:
    """argparse type for ``--run-date YYYY-MM-DD``."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2026-11-24") from exc


def parse_cutoff(value: str) -> dt.datetime:
    """argparse type for ``--cutoff``: ISO-8601 with a time zone (``Z``), kept as naive UTC."""
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a time like 2026-01-01T00:00:00Z") from exc
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} must name its time zone (end it with Z)")
    return naive_utc(moment)


def date_cutoff(value: str) -> dt.datetime:
    """A configured cutoff date (``YYYY-MM-DD``, e.g. ``evaluate.cutoff``) at 00:00 UTC."""
    return start_of_day(dt.date.fromisoformat(value))


def utc_timestamp(moment: dt.datetime) -> Column:
    """A Python datetime as a Spark timestamp literal; naive datetimes are UTC (``runs.utcnow``)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return F.lit(aware).cast("timestamp")


def last_event(events: DataFrame, column: str = "ts") -> dt.datetime | None:
    """The latest ``column`` of ``events`` as naive UTC, None when there is none (one small aggregate)."""
    last = events.agg(F.unix_micros(F.max(column))).first()[0]
    if last is None:
        return None
    return _EPOCH + dt.timedelta(microseconds=int(last))


def cutoff_after(last: dt.datetime) -> dt.datetime:
    """Just after ``last`` (one second): a cutoff that uses every event up to it."""
    return last + dt.timedelta(seconds=1)


def default_evaluation_cutoff(last: dt.datetime, test_days: float) -> dt.datetime:
    """``test_days`` before the day after ``last`` (00:00 UTC), so that a test window of
    ``test_days`` from the cutoff holds every event up to ``last``."""
    end = start_of_day(last.date() + dt.timedelta(days=1))
    return end - dt.timedelta(days=test_days)


def evaluation_cutoff_date(run_date: dt.date, test_days: float) -> dt.date:
    """The cutoff date of an evaluation run for ``run_date``: ``test_days`` before the night, so
    that the test window ends where the night begins."""
    return run_date - dt.timedelta(days=test_days)
