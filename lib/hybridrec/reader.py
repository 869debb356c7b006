"""Read the nightly tables (gold.recommendations, gold.similar_items) without Spark.

For downstream systems (a web backend, a batch export, a notebook) that want one night's lists as a
pandas DataFrame without a JVM: the tables are read with delta-rs (the ``deltalake`` package), which
follows the Delta log itself, so a night that jobs/recommend.py re-ran shows only its latest rows and
a half-written run shows nothing.

The Spark stack pins pyarrow 14 (Petastorm) while deltalake 1.6 needs pyarrow >= 21, so this module
runs in its own environment, ``.venv-reader`` (``make reader-env``; pins in reader/constraints.txt).
It imports neither Spark nor deltalake at module level, so the Spark environment can import it for
``format_table``.

Reads go through deltalake's DataFusion ``QueryBuilder`` with the night and the user (or product) as
a SQL predicate: only the files of that night's ``run_date`` partition are opened, and within them
Parquet statistics skip row groups of other users. Unlike ``DeltaTable.to_pandas`` it also reads
tables with deletion vectors (on by default for new Databricks tables), v2 checkpoints and column
mapping. Tables with type widening cannot be read by deltalake 1.6.6 at all.

    from hybridrec.reader import read_recommendations
    recs = read_recommendations("data/warehouse/gold/recommendations", user_id="u42")

    .venv-reader/bin/python -m hybridrec.reader recs --table data/warehouse/gold/recommendations \\
        --user u42 [--date 2026-11-24] [--out recs.parquet | --json]
    .venv-reader/bin/python -m hybridrec.reader similar --table data/warehouse/gold/similar_items \\
        --product p7

Cloud tables (s3://, abfss://, gs://) take delta-rs ``storage_options`` (``--storage-option K=V``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybridrec.errors import HybridrecError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa

RUN_DATE = "run_date"

# Columns shown by the text output (the Parquet and JSON outputs carry every column).
RECOMMENDATION_COLUMNS = ("user_id", "rank", "product_id", "score", "source", "category", "reason")
SIMILAR_COLUMNS = ("product_id", "rank", "similar_product_id", "score", "source")

_SQL_NAME = "nightly"


class ReaderError(HybridrecError):
    """The table or night asked for cannot be read; the message names it and the fix."""


class TableNotFoundError(ReaderError):
    """No Delta table at the given location."""


class CorruptTableError(ReaderError):
    """The table's Delta log cannot be read (a commit file cut short or damaged)."""


class NightNotFoundError(ReaderError):
    """The table has no partition for the requested run_date (or no night at all)."""


@dataclass(frozen=True)
class _Kind:
    """One of the two nightly tables: the column a lookup filters on and what a row is called."""

    key: str
    what: str
    columns: tuple[str, ...]


_RECS = _Kind("user_id", "recommendations", RECOMMENDATION_COLUMNS)
_SIMILAR = _Kind("product_id", "similar items", SIMILAR_COLUMNS)


def latest_run_date(table_uri: str | Path, storage_options: Mapping[str, str] | None = None) -> dt.date | None:
    """The newest ``run_date`` in the table, or None when it has no night yet.

    Answered from the Delta log's partition values alone: no data file is opened.
    """
    nights = _nights(_open_table(table_uri, storage_options), table_uri)
    return nights[-1] if nights else None


def read_recommendations(
    table_uri: str | Path,
    user_id: str | None = None,
    run_date: dt.date | str | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One night of gold.recommendations as pandas, sorted by user_id, rank.

    ``run_date`` (a date or ``YYYY-MM-DD``) defaults to the latest night; ``user_id`` narrows to one
    user. An unknown user gives an empty frame with the table's columns. Raises
    ``TableNotFoundError`` / ``NightNotFoundError`` for a missing table or night.
    """
    return _read(table_uri, _RECS, user_id, run_date, storage_options)[1].to_pandas()


def read_similar_items(
    table_uri: str | Path,
    product_id: str | None = None,
    run_date: dt.date | str | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One night of gold.similar_items as pandas, sorted by product_id, rank (see read_recommendations)."""
    return _read(table_uri, _SIMILAR, product_id, run_date, storage_options)[1].to_pandas()


def format_table(
    df: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    max_width: int = 40,
    float_digits: int = 4,
    null: str = "-",
) -> str:
    """Render ``df`` as a fixed-width text table: a header, a rule, one line per row.

    Numbers are right-aligned (floats with ``float_digits`` decimals), text left-aligned and cut to
    ``max_width`` characters with ``...``; dates print as ISO, missing values as ``null``. An empty
    frame prints its header and ``(no rows)``. ``columns`` picks and orders columns (default: all).
    """
    import pandas as pd

    names = list(df.columns) if columns is None else list(columns)
    missing = [c for c in names if c not in df.columns]
    if missing:
        raise ValueError(f"format_table: no column {', '.join(map(repr, missing))} in {list(df.columns)}")
    if max_width < 4:
        raise ValueError(f"format_table: max_width must be at least 4, got {max_width}")
    cells = [[_cell(v, max_width, float_digits, null) for v in df[c].tolist()] for c in names]
    right = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in names]
    widths = [max([len(terminal_text(str(c))), *map(len, col)]) for c, col in zip(names, cells)]

    def line(values: Sequence[str]) -> str:
        parts = (v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right))
        return "  ".join(parts).rstrip()

    lines = [line([terminal_text(str(c)) for c in names]), "  ".join("-" * w for w in widths)]
    lines += [line(row) for row in zip(*cells)]
    if df.empty:
        lines.append("(no rows)")
    return "\n".join(lines)


# C0 and C1 controls, DEL, and the bidirectional embeddings, overrides, isolates and marks.
_UNSAFE_FOR_TERMINAL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_text(text: str) -> str:
    """``text`` with every character that could steer a terminal written as a visible escape.

    Why: titles and categories come from supplier files. An ESC sequence in a title can recolour,
    clear or retitle the operator's terminal, BEL rings it, NUL truncates the line in some tools, and
    a bidi override (U+202E) makes ``evil.exe`` read as something else. Every display path (this
    module's ``format_table``, ``hybridrec recs``/``similar``/``examples``) prints through this
    function; the tables keep the text as ingested. Escaped, not stripped, so that the operator sees
    that something is there: ESC prints as ``\x1b``, U+202E as ``\u202e``.

    Ingest (``hybridrec.catalog``, not this module) should quarantine a product whose text holds a
    NUL: no title means a NUL, it is what a UTF-16 file read as UTF-8 looks like, and systems the
    nightly tables feed refuse it (PostgreSQL text, C strings). Other controls and bidi marks stay
    data: right-to-left titles need U+200F, and escaping them here is enough.
    """
    return _UNSAFE_FOR_TERMINAL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _cell(value: Any, max_width: int, float_digits: int, null: str) -> str:
    import pandas as pd

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return null
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float):
        text = f"{value:.{float_digits}f}" if math.isfinite(value) else str(value)
    elif isinstance(value, dt.datetime):  # also pandas Timestamp
        text = value.isoformat(sep=" ")
    elif isinstance(value, dt.date):
        text = value.isoformat()
    else:
        text = terminal_text(" ".join(str(value).split()))  # newlines and tabs would break the layout
    return text if len(text) <= max_width else text[: max_width - 3] + "..."


def _open_table(table_uri: str | Path, storage_options: Mapping[str, str] | None) -> Any:
    try:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError as DeltaTableNotFound
    except ImportError as exc:
        raise ReaderError(
            "the deltalake package is not installed here: run `make reader-env` and use "
            ".venv-reader/bin/python (pins in reader/constraints.txt)"
        ) from exc
    try:
        return DeltaTable(str(table_uri), storage_options=dict(storage_options or {}) or None)
    except DeltaTableNotFound as exc:
        raise TableNotFoundError(
            f"no Delta table at {table_uri}: run jobs/recommend.py first (or check the path)"
        ) from exc
    except Exception as exc:  # delta-rs raises one DeltaError class for everything
        error = _corrupt_or(exc, table_uri)
        if error is exc:
            raise
        raise error from exc


# delta-rs' words for a commit file it cannot parse (its message never names the file).
_CORRUPT_LOG_HINTS = ("Json error", "Truncated record", "Invalid JSON", "EOF while parsing", "Failed to parse")


def _corrupt_or(exc: Exception, table_uri: str | Path) -> Exception:
    """``CorruptTableError`` naming the table, the broken commit and the repair when ``exc`` is a
    log that does not parse; ``exc`` itself otherwise (delta-rs prints a Rust backtrace into it)."""
    from hybridrec.delta_log import corrupt_without_file, find_broken_commit, repair_advice

    text = str(exc)
    if type(exc).__name__ != "DeltaError" or not any(h in text for h in _CORRUPT_LOG_HINTS):
        return exc
    folder = Path(str(table_uri))
    name = f"{folder.parent.name}.{folder.name}" if folder.parent.name else folder.name
    broken = find_broken_commit(str(table_uri))
    if broken is not None:
        return CorruptTableError(repair_advice(name, broken))
    return CorruptTableError(corrupt_without_file(name, str(table_uri), text.splitlines()[0][:200]))


def _nights(table: Any, table_uri: str | Path) -> list[dt.date]:
    if RUN_DATE not in table.metadata().partition_columns:
        raise ReaderError(f"{table_uri} is not partitioned by {RUN_DATE}: not a hybridrec nightly table")
    values = {p.get(RUN_DATE) for p in table.partitions()}
    return sorted(dt.date.fromisoformat(v) for v in values if v)


def _as_date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ReaderError(f"run date {value!r} is not a date (expected YYYY-MM-DD)") from None


def _resolve_night(table: Any, table_uri: str | Path, run_date: dt.date | str | None) -> dt.date:
    nights = _nights(table, table_uri)
    if not nights:
        raise NightNotFoundError(f"{table_uri} has no night yet: run jobs/recommend.py first")
    if run_date is None:
        return nights[-1]
    night = _as_date(run_date)
    if night not in nights:
        present = (
            ", ".join(map(str, nights)) if len(nights) <= 8 else (f"{len(nights)} from {nights[0]} to {nights[-1]}")
        )
        raise NightNotFoundError(f"no night {night} in {table_uri} (nights present: {present}; latest {nights[-1]})")
    return night


def _sql_string(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _read(
    table_uri: str | Path,
    kind: _Kind,
    key: str | None,
    run_date: dt.date | str | None,
    storage_options: Mapping[str, str] | None,
) -> tuple[dt.date, pa.Table]:
    """The night read and its rows as an Arrow table (plain string columns), sorted by key, rank."""
    table = _open_table(table_uri, storage_options)  # first: it explains a missing deltalake
    import pyarrow as pa
    from deltalake import QueryBuilder

    night = _resolve_night(table, table_uri, run_date)
    where = [f"\"{RUN_DATE}\" = DATE '{night.isoformat()}'"]
    if key is not None:
        where.append(f'"{kind.key}" = {_sql_string(key)}')
    sql = f'SELECT * FROM "{_SQL_NAME}" WHERE {" AND ".join(where)} ORDER BY "{kind.key}", "rank"'
    result = pa.table(QueryBuilder().register(_SQL_NAME, table).execute(sql).read_all())
    # DataFusion returns string_view columns; plain strings are what pandas and Spark expect.
    fields = [f.with_type(pa.string()) if pa.types.is_string_view(f.type) else f for f in result.schema]
    return night, result.cast(pa.schema(fields, metadata=result.schema.metadata))


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (expected YYYY-MM-DD)") from None


def _parse_option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hybridrec.reader``: exit 0 with the rows (possibly none), 1 with an error message."""
    parser = argparse.ArgumentParser(
        prog="python -m hybridrec.reader",
        description="Read one night of gold.recommendations or gold.similar_items without Spark.",
        epilog="Without --out or --json a readable table is printed. An unknown user or product "
        "writes an empty result and says so on stderr (exit 0); a missing table or night exits 1.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, kind, flag, help_ in (
        ("recs", _RECS, "--user", "one user's list (default: every user)"),
        ("similar", _SIMILAR, "--product", "one product's list (default: every product)"),
    ):
        p = sub.add_parser(name, help=f"read gold.{'recommendations' if name == 'recs' else 'similar_items'}")
        p.set_defaults(kind=kind)
        p.add_argument("--table", required=True, help="Delta table folder or URI")
        p.add_argument(flag, dest="key", default=None, help=help_)
        p.add_argument("--date", type=_parse_date, default=None, help="run_date YYYY-MM-DD (default: latest)")
        out = p.add_mutually_exclusive_group()
        out.add_argument("--out", type=Path, default=None, help="write the rows to this Parquet file")
        out.add_argument("--json", action="store_true", help="print the rows as a JSON array")
        p.add_argument("--limit", type=int, default=50, help="rows shown by the text output (default 50)")
        p.add_argument(
            "--storage-option",
            dest="storage_options",
            type=_parse_option,
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="delta-rs storage option for cloud tables",
        )
    args = parser.parse_args(argv)
    kind: _Kind = args.kind
    try:
        night, rows = _read(args.table, kind, args.key, args.date, dict(args.storage_options))
    except ReaderError as exc:
        print(f"hybridrec.reader: error: {exc}", file=sys.stderr)
        return 1
    if rows.num_rows == 0:
        who = f"{kind.key} {args.key!r}" if args.key is not None else "any key"
        print(f"hybridrec.reader: no {kind.what} for {who} on {night} in {args.table}", file=sys.stderr)
    if args.out is not None:
        import pyarrow.parquet as pq

        args.out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(rows, args.out)
        print(f"hybridrec.reader: wrote {rows.num_rows} rows of night {night} to {args.out}", file=sys.stderr)
    elif args.json:
        json.dump(rows.to_pylist(), sys.stdout, default=_json_default)
        sys.stdout.write("\n")
    else:
        df = rows.to_pandas()
        print(f"{kind.what} of night {night} ({len(df)} rows)")
        print(format_table(df.head(max(args.limit, 0)), [c for c in kind.columns if c in df.columns]))
        if len(df) > args.limit:
            print(f"... {len(df) - args.limit} more rows (use --out FILE.parquet or --json for all)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
