"""Inputs that cannot be judged row by row stop ``jobs/ingest.py`` with one clear message (exit 1,
the failure and its message in ``gold.runs``), before anything of that input is written.

Decisions:
- a column the config maps but the file lacks is an error naming the config key, the column and the
  columns the file has: every row would otherwise be quarantined for the same reason;
- a column the file has but the config does not map is ignored (see ``bad_inputs``: the ``case``
  column of every bad catalog is one), so a supplier adding a column does not stop the night;
- a catalog with a header and no rows is not an error: read 0 = accepted 0 + quarantined 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ingest_job import run_ingest

from hybridrec.tables import PRODUCTS, table_exists, table_ref

pytestmark = pytest.mark.spark


_run = run_ingest


GENERIC_COLUMNS = {"id": "id", "title": "title", "description": "description", "category": "category", "image": None}
PRODUCTS_OK = b"id,title,description,category\np1,Mug,White mug,kitchen\n"


@pytest.mark.parametrize(
    ("files", "catalog", "interactions", "expected"),
    [
        pytest.param(
            {"products.csv": b"id,title,category\np1,Mug,kitchen\n"},
            {"path": "products.csv", "columns": GENERIC_COLUMNS},
            None,
            ["catalog.columns.description is 'description'", "columns: id, title, category"],
            id="generic-catalog-missing-column",
        ),
        pytest.param(
            {"train.csv": b"ImgId,title,description\nB001,Mug,White mug\n"},
            {"path": "train.csv", "layout": "retail_products"},
            None,
            ["catalog.columns.category is 'categories'", "columns: ImgId, title, description"],
            id="retail-train-csv-missing-column",
        ),
        pytest.param(
            {"products.csv": PRODUCTS_OK, "events.csv": b"user_id,product_id,event\nu1,p1,view\n"},
            {"path": "products.csv", "columns": GENERIC_COLUMNS},
            {"path": "events.csv"},
            ["interactions.columns.timestamp is 'ts'", "columns: user_id, product_id, event"],
            id="interactions-missing-column",
        ),
        pytest.param(
            {"products.csv": b""},
            {"path": "products.csv", "columns": GENERIC_COLUMNS},
            None,
            ["catalog.columns.id is 'id'", "(columns: none)"],
            id="zero-byte-catalog",
        ),
    ],
)
def test_a_file_that_lacks_a_mapped_column_stops_the_job_with_the_column(
    spark: Any,
    tmp_path: Path,
    files: dict[str, bytes],
    catalog: dict[str, Any],
    interactions: dict[str, Any] | None,
    expected: list[str],
) -> None:
    code, run, cfg = _run(spark, tmp_path, files, catalog, interactions)
    assert code == 1 and run["status"] == "failed"
    for fragment in expected:
        assert fragment in run["message"], run["message"]
    assert "fix " in run["message"]  # and says what to change
    if interactions is None:  # the catalog failed: nothing was written to bronze
        assert not table_exists(spark, table_ref(cfg, PRODUCTS))


def test_a_catalog_with_only_a_header_ingests_nothing(spark: Any, tmp_path: Path) -> None:
    code, run, _ = _run(
        spark,
        tmp_path,
        {"products.csv": b"id,title,description,category\n"},
        {"path": "products.csv", "columns": GENERIC_COLUMNS},
    )
    assert code == 0, run["message"]
    counts = run["counts"]
    assert (counts["products_read"], counts["products_accepted"], counts["products_quarantined"]) == (0, 0, 0)
