"""Bad input at ingest: every case of ``bad_inputs`` ends where it must (bronze, or the quarantine
with its reason code), the job never crashes on data, and read = accepted + quarantined holds in the
tables and in the ``gold.runs`` row, in both catalog layouts.

Ingest runs once per layout (through ``jobs/ingest.py``); each test only looks its case up, so the
suite costs two ingest runs and one preprocess run however many cases it has. Whole-file cases
(encodings, compression, headers that differ between files, Parquet type clashes) are each read
on their own through the readers and validation, without writing tables; that a ``HybridrecError``
becomes exit code 1 and its one sentence is ``test_clear_errors``' and ``test_ingest_hardening``'s
concern.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from bad_inputs import (
    DESCRIPTION_100KB,
    GENERIC,
    LAYOUTS,
    RETAIL,
    UNCLOSED_COMMENTS_100KB,
    Case,
    FileCase,
    IngestRun,
    cases_for,
    file_cases,
    ingested,
    interaction_case_list,
)

from hybridrec.catalog import reasons, sources, validation
from hybridrec.config import CatalogColumns, CatalogConfig, InteractionColumns, InteractionsConfig
from hybridrec.errors import HybridrecError

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory) -> dict[str, IngestRun]:
    return {layout: ingested(spark, tmp_path_factory, layout) for layout in LAYOUTS}


def _expected(case: Case) -> list[str | None]:
    return sorted(case.outcomes, key=lambda r: (r is not None, r or ""))


def _details(rows: list[dict], tag: str) -> list[str]:
    return [f"{r['reason']}: {r['detail']}" for r in rows if (r["raw"].get("case") == tag)]


PRODUCT_PARAMS = [
    pytest.param(layout, case, id=f"{layout}-{case.tag}") for layout in LAYOUTS for case in cases_for(layout)
]
INTERACTION_PARAMS = [pytest.param(case, id=case.tag) for case in interaction_case_list()]
FILE_PARAMS = [pytest.param(case, id=case.tag) for case in file_cases()]
FILE_CASE_NOW = dt.datetime(2025, 6, 1)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_job_succeeds_on_bad_data(runs, layout: str) -> None:
    run = runs[layout]
    assert run.exit_code == 0, run.run_row["message"]
    assert run.run_row["job"] == "ingest" and run.run_row["status"] == "succeeded"


@pytest.mark.parametrize(("layout", "case"), PRODUCT_PARAMS)
def test_product_case(runs, layout: str, case: Case) -> None:
    run = runs[layout]
    got = run.product_outcomes.get(case.tag)
    assert got == _expected(case), (
        f"{case.tag} ({case.why}): expected {_expected(case)}, got {got}; {_details(run.quarantine_products, case.tag)}"
    )
    for r in run.quarantine_products:
        if r["raw"].get("case") == case.tag:
            assert r["detail"], "every quarantine row says why"
            assert r["source_file"] == str(run.catalog.path)


@pytest.mark.parametrize("case", INTERACTION_PARAMS)
def test_interaction_case(runs, case: Case) -> None:
    run = runs[GENERIC]
    got = run.interaction_outcomes.get(case.tag)
    assert got == _expected(case), (
        f"{case.tag} ({case.why}): expected {_expected(case)}, got {got}; "
        f"{_details(run.quarantine_interactions, case.tag)}"
    )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_no_row_is_lost_and_counts_reconcile(runs, layout: str) -> None:
    """read = accepted + quarantined in gold.runs, equal to the rows written to the file and to
    the rows found in bronze and the quarantine; every row is traced back to its case."""
    run = runs[layout]
    counts = run.run_row["counts"]
    n_rows = run.catalog.n_rows
    assert counts["products_read"] == n_rows
    assert counts["products_accepted"] + counts["products_quarantined"] == n_rows
    assert counts["products_accepted"] == len(run.bronze_products)
    assert counts["products_quarantined"] == len(run.quarantine_products)
    per_reason: dict[str, int] = {}
    for r in run.quarantine_products:
        per_reason[r["reason"]] = per_reason.get(r["reason"], 0) + 1
    prefix = "products_quarantined_"
    assert per_reason == {k[len(prefix) :]: v for k, v in counts.items() if k.startswith(prefix)}
    assert set(per_reason) <= set(reasons.PRODUCT_REASONS)
    assert set(run.product_outcomes) == set(run.catalog.cases)  # no stray or untraceable row
    assert sum(len(v) for v in run.product_outcomes.values()) == n_rows


def test_no_interaction_is_lost_and_counts_reconcile(runs) -> None:
    run = runs[GENERIC]
    assert run.interactions is not None
    counts = run.run_row["counts"]
    n_rows = run.interactions.n_rows
    assert counts["interactions_read"] == n_rows
    assert counts["interactions_accepted"] + counts["interactions_quarantined"] == n_rows
    assert counts["interactions_accepted"] == run.n_bronze_interactions
    assert counts["interactions_quarantined"] == len(run.quarantine_interactions)
    prefix = "interactions_quarantined_"
    per_reason: dict[str, int] = {}
    for r in run.quarantine_interactions:
        per_reason[r["reason"]] = per_reason.get(r["reason"], 0) + 1
    assert per_reason == {k[len(prefix) :]: v for k, v in counts.items() if k.startswith(prefix)}
    assert set(run.interaction_outcomes) == set(run.interactions.cases)
    assert sum(len(v) for v in run.interaction_outcomes.values()) == n_rows


@pytest.mark.parametrize("layout", LAYOUTS)
def test_accepted_odd_rows_keep_their_content(runs, layout: str) -> None:
    run = runs[layout]
    p = run.bronze_products
    assert p["txt_100kb"]["description"] == DESCRIPTION_100KB  # whole, not cut
    assert p["txt_100kb_unclosed_comments"]["description"] == UNCLOSED_COMMENTS_100KB
    assert "<script>" in p["txt_html"]["description"]  # bronze keeps text as delivered
    assert p["txt_emoji"]["title"] == "Платье 👗 dress ❤️"
    assert p["good_multiline"]["description"] == 'Two lines,\nand a "quoted" word'
    assert p["txt_empty_with_image"]["title"] is None and p["txt_empty_with_image"]["image_path"]
    root = str(run.catalog.image_root)
    for pid, row in p.items():
        assert row["image_path"] is None or row["image_path"].startswith(root + "/"), pid
    if layout == RETAIL:
        assert all(row["image_path"] for row in p.values())  # ImgId always names a photo


def test_quarantine_details_say_what_was_wrong(runs) -> None:
    by_tag = {r["raw"].get("case"): r for r in runs[GENERIC].quarantine_products}
    assert "DecompressionBombError" in by_tag["img_bomb_png"]["detail"]
    assert "DecompressionBombWarning" in by_tag["img_bomb_over_warning"]["detail"]
    assert by_tag["img_zero_bytes"]["detail"] == "empty file (0 bytes)"
    assert "truncated" in by_tag["img_truncated_jpeg"]["detail"].lower()
    assert "outside the image root" in by_tag["img_escape_etc_passwd"]["detail"]
    assert "is a link to" in by_tag["img_escape_symlink"]["detail"]
    assert "U+FFFD" in by_tag["txt_bad_utf8_title"]["detail"]
    # The rejected row is kept as delivered, bad bytes decoded as U+FFFD.
    assert by_tag["img_escape_etc_passwd"]["raw"]["image"] == "../../etc/passwd"
    assert by_tag["row_extra_cell"]["raw"]["_corrupt_record"].endswith(",EXTRA")


def test_preprocess_survives_the_accepted_odd_inputs(spark, runs) -> None:
    """Every accepted photo (CMYK, 16-bit, RGBA, bilevel, PNG/WebP/GIF named .jpg, EXIF-rotated)
    decodes in preprocess, and every accepted text (100 kB, HTML, unclosed comments, emoji) gets
    its token row: no product is lost between bronze and the features."""
    import dataclasses

    from hybridrec.features.preprocess import preprocess

    run = runs[GENERIC]
    cfg = dataclasses.replace(
        run.cfg,
        features=dataclasses.replace(run.cfg.features, min_examples_per_class=1, image_size=16),
    )
    counts = preprocess(spark, cfg).counts
    with_photo = sum(1 for r in run.bronze_products.values() if r["image_path"])
    assert counts["image_errors"] == 0
    assert counts["image_rows"] == with_photo == run.run_row["counts"]["products_with_image"]
    assert counts["text_rows"] == len(run.bronze_products)


def _read_file_case(spark, case: FileCase, folder: Path):
    """Read (and for a catalog, validate) the folder of ``case``; the validated rows or raw rows."""
    if case.what == "interactions":
        inter = InteractionsConfig(
            path=str(folder), file_format=case.file_format, columns=InteractionColumns(rating=None)
        )
        return sources.read_interactions(spark, inter).df
    cat = CatalogConfig(
        path=str(folder),
        file_format=case.file_format,
        columns=CatalogColumns(listed_at="listed_at"),
        require_category=False,
    )
    raw = sources.read_catalog(spark, cat)
    std = validation.standardize_products(raw.df, raw.columns, cat)
    return validation.validate_products(std, cat, None, FILE_CASE_NOW)


@pytest.mark.parametrize("case", FILE_PARAMS)
def test_file_case(spark, tmp_path: Path, case: FileCase) -> None:
    folder = tmp_path / case.tag
    folder.mkdir()
    for name, data in case.files.items():
        (folder / name).write_bytes(data)
    if case.error:
        with pytest.raises(HybridrecError) as err:
            _read_file_case(spark, case, folder)
        message = str(err.value)
        assert "\n" not in message, "one sentence, no trace"
        for fragment in case.error:
            assert fragment in message, f"{case.tag} ({case.why}): {fragment!r} not in {message!r}"
        return
    rows = _read_file_case(spark, case, folder).select("product_id", "title", validation.REASON).collect()
    got = sorted((r[validation.REASON] for r in rows), key=lambda r: (r is not None, r or ""))
    assert got == sorted(case.outcomes, key=lambda r: (r is not None, r or "")), (
        f"{case.tag} ({case.why}): {[r.asDict() for r in rows]}"
    )
    titles = {r["product_id"]: r["title"] for r in rows}
    for pid, title in case.titles:
        assert titles.get(pid) == title, f"{case.tag} ({case.why}): {titles}"
