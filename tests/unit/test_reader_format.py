"""format_table renders readable fixed-width tables; hybridrec.reader imports without Spark/deltalake."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pandas as pd
import pytest

from hybridrec.reader import format_table


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rank": [1, 2, 10],
            "product_id": ["p1", "p22", "p333"],
            "score": [0.98765, 0.5, 1 / 3],
            "reason": ["similar to Blue Shirt you viewed", None, "popular in\nShoes"],
            "run_date": [dt.date(2026, 11, 24)] * 3,
        }
    )


def test_columns_align_in_fixed_width() -> None:
    # Numbers right-aligned (floats with 4 decimals), text left-aligned, null as "-", dates ISO.
    text = format_table(_frame(), ["rank", "product_id", "score", "reason", "run_date"])
    assert text.splitlines() == [
        "rank  product_id   score  reason                            run_date",
        "----  ----------  ------  --------------------------------  ----------",
        "   1  p1          0.9877  similar to Blue Shirt you viewed  2026-11-24",
        "   2  p22         0.5000  -                                 2026-11-24",
        "  10  p333        0.3333  popular in Shoes                  2026-11-24",
    ]


def test_header_width_and_right_aligned_numeric_header() -> None:
    df = pd.DataFrame({"a_long_header": [1, 22], "x": ["y", "zz"]})
    lines = format_table(df, None).splitlines()
    assert lines == [
        "a_long_header  x",
        "-------------  --",
        "            1  y",
        "           22  zz",
    ]


def test_long_text_is_cut_and_newlines_flattened() -> None:
    df = pd.DataFrame({"reason": ["x" * 100, "two\nlines\tand tabs"]})
    lines = format_table(df, ["reason"], max_width=12).splitlines()
    assert lines[2] == "xxxxxxxxx..."
    assert lines[3] == "two lines..."
    assert max(len(line) for line in lines) == 12


def test_column_subset_order_and_missing_column() -> None:
    text = format_table(_frame(), ["score", "rank"])
    assert text.splitlines()[0].split() == ["score", "rank"]
    assert "product_id" not in text
    with pytest.raises(ValueError, match="no column 'title'"):
        format_table(_frame(), ["rank", "title"])


def test_empty_frame_prints_header_and_no_rows() -> None:
    text = format_table(_frame().iloc[0:0], ["rank", "product_id"])
    assert text.splitlines() == ["rank  product_id", "----  ----------", "(no rows)"]


def test_timestamps_nan_and_custom_null() -> None:
    df = pd.DataFrame(
        {
            "created_at": pd.to_datetime(["2026-11-24 03:00:00", None], utc=True),
            "score": [float("nan"), 2.0],
        }
    )
    assert format_table(df, null="", float_digits=1).splitlines() == [
        "created_at                 score",
        "-------------------------  -----",
        "2026-11-24 03:00:00+00:00",
        "                             2.0",
    ]


def test_reader_module_imports_without_spark_or_deltalake() -> None:
    """Downstream code may import hybridrec.reader where neither is installed."""
    code = (
        "import sys, hybridrec.reader as r; "
        "loaded = {m.split('.')[0] for m in sys.modules} & {'pyspark', 'deltalake', 'py4j'}; "
        "assert not loaded, loaded; assert callable(r.read_recommendations)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
