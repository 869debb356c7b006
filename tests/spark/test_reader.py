"""The Spark-free reader (delta-rs in .venv-reader) returns exactly what Spark reads from the nightly tables.

Spark writes gold.recommendations / gold.similar_items through ``tables.write_table`` (two nights, the
second re-run with replaceWhere as jobs/recommend.py does, a Delta checkpoint in the log); the reader
runs as ``.venv-reader/bin/python -m hybridrec.reader`` and its Parquet output is compared with Spark's
own read of the same night with chispa. The ``hybridrec recs`` / ``similar`` CLI is checked on the
shared session.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from conftest import REPO_ROOT, TEST_SPARK, make_config
from hybridrec import lookup, tables
from hybridrec.cli import main as cli_main
from hybridrec.config import Config

READER_PYTHON = REPO_ROOT / ".venv-reader" / "bin" / "python"
N23, N24 = dt.date(2026, 11, 23), dt.date(2026, 11, 24)
CREATED = dt.datetime(2026, 11, 24, 2, 30, tzinfo=dt.UTC)
ODD_USER = "o'brien\\x"  # a quote and a backslash: the reader's SQL literal must survive both
TITLES = {"p1": "Blue Shirt", "p2": "Red Dress", "p3": "Green Cap", "p4": "Black Boots"}  # p9: none


def _rec(night: dt.date, user: str, rank: int, product: str, score: float) -> tuple:
    reason_product = "p4" if rank == 1 else None
    return (
        night,
        user,
        rank,
        product,
        score,
        "blend" if rank == 1 else "als",
        f"reason {rank}",
        reason_product,
        None if product == "p9" else "Tops",
        "als-1",
        "cnn-1",
        f"run-{night}",
        CREATED,
    )


def _recs(night: dt.date, users: list[str], score_scale: float = 1.0) -> list[tuple]:
    products = ["p1", "p2", "p9"]
    return [
        _rec(night, user, rank, products[(rank + i) % 3], score_scale / rank)
        for i, user in enumerate(users)
        for rank in (1, 2, 3)
    ]


def _similar(night: dt.date, products: list[str]) -> list[tuple]:
    others = ["p2", "p3", "p4", "p9"]
    return [
        (
            night,
            product,
            rank,
            [o for o in others if o != product][rank - 1],
            1.0 - rank / 10,
            "content" if rank > 1 else "both",
            "cnn-1",
            None,
            f"run-{night}",
            CREATED,
        )
        for product in products
        for rank in (1, 2, 3)
    ]


@pytest.fixture(scope="module")
def reader_python() -> Path:
    if not os.access(READER_PYTHON, os.X_OK):
        pytest.fail(
            f"{READER_PYTHON} is missing: run `make reader-env` (make setup does it) to build the "
            "Spark-free reader environment",
            pytrace=False,
        )
    return READER_PYTHON


@pytest.fixture(scope="module")
def nightly(reader_python: Path, spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Config:
    """Two nights of both tables plus bronze.products, written as the nightly job writes them."""
    cfg = make_config(tmp_path_factory.mktemp("reader"))
    recs = tables.table_ref(cfg, tables.RECOMMENDATIONS)
    schema = tables.RECOMMENDATIONS.schema
    tables.write_table(spark.createDataFrame(_recs(N23, ["u1", "u2"]), schema), recs)
    # A checkpoint every 2 commits, so delta-rs reads Spark's checkpoint Parquet as well as JSON commits.
    spark.sql(f"ALTER TABLE delta.`{recs.path}` SET TBLPROPERTIES ('delta.checkpointInterval' = '2')")
    for scale in (0.0, 1.0):  # night 24 run twice: the re-run replaces exactly its partition
        df = spark.createDataFrame(_recs(N24, ["u1", "u3", ODD_USER], scale), schema)
        tables.write_table(df, recs, mode="overwrite", replace_where=f"run_date = '{N24}'")
    assert list(Path(recs.path, "_delta_log").glob("*.checkpoint.parquet"))

    similar = tables.table_ref(cfg, tables.SIMILAR_ITEMS)
    rows = _similar(N23, ["p1", "p2"]) + _similar(N24, ["p1", "p2", "p3"])
    tables.write_table(spark.createDataFrame(rows, tables.SIMILAR_ITEMS.schema), similar)

    products = [
        (pid, title, None, "Tops", None, None, None, f"h{pid}", "products.csv", CREATED)
        for pid, title in TITLES.items()
    ]
    tables.write_table(spark.createDataFrame(products, tables.PRODUCTS.schema), tables.table_ref(cfg, tables.PRODUCTS))
    return cfg


def run_reader(python: Path, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "hybridrec.reader", *map(str, args)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _path(cfg: Config, spec: tables.TableSpec) -> str:
    return str(tables.table_ref(cfg, spec).path)


def _spark_night(spark: SparkSession, cfg: Config, spec: tables.TableSpec, night: dt.date, **key: str) -> DataFrame:
    df = tables.read_table(spark, tables.table_ref(cfg, spec)).filter(F.col("run_date") == F.lit(night))
    for column, value in key.items():
        df = df.filter(F.col(column) == value)
    order = "user_id" if spec is tables.RECOMMENDATIONS else "product_id"
    return df.orderBy(order, "rank")


def _assert_same(spark: SparkSession, parquet: Path, expected: DataFrame) -> None:
    """The reader's Parquet equals Spark's read: same rows in the same order, same column types."""
    actual = spark.read.parquet(str(parquet))
    assert actual.columns == expected.columns
    actual = actual.select(*[F.col(f.name).cast(f.dataType) for f in expected.schema.fields])
    assert_df_equality(actual, expected, ignore_nullable=True, ignore_metadata=True)


def test_user_night_matches_spark(spark, nightly, reader_python, tmp_path) -> None:
    for user, night in (("u1", N23), ("u1", N24), (ODD_USER, N24)):
        out = tmp_path / f"{night}.parquet"
        proc = run_reader(
            reader_python,
            "recs",
            "--table",
            _path(nightly, tables.RECOMMENDATIONS),
            "--user",
            user,
            "--date",
            night,
            "--out",
            out,
        )
        assert proc.returncode == 0, proc.stderr
        expected = _spark_night(spark, nightly, tables.RECOMMENDATIONS, night, user_id=user)
        assert expected.count() == 3
        _assert_same(spark, out, expected)


def test_latest_night_is_the_default(spark, nightly, reader_python, tmp_path) -> None:
    out = tmp_path / "all.parquet"
    proc = run_reader(reader_python, "recs", "--table", _path(nightly, tables.RECOMMENDATIONS), "--out", out)
    assert proc.returncode == 0, proc.stderr
    expected = _spark_night(spark, nightly, tables.RECOMMENDATIONS, N24)
    assert expected.count() == 9 and expected.filter("score = 0").count() == 0  # the re-run's rows only
    _assert_same(spark, out, expected)

    code = (
        "import sys; from hybridrec.reader import latest_run_date, read_recommendations as r; "
        "print(latest_run_date(sys.argv[1])); r(sys.argv[1], user_id='u3').to_parquet(sys.argv[2])"
    )
    api_out = tmp_path / "api.parquet"
    proc = subprocess.run(
        [str(reader_python), "-c", code, _path(nightly, tables.RECOMMENDATIONS), str(api_out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(N24)
    _assert_same(spark, api_out, _spark_night(spark, nightly, tables.RECOMMENDATIONS, N24, user_id="u3"))


def test_similar_items_match_spark(spark, nightly, reader_python, tmp_path) -> None:
    table = _path(nightly, tables.SIMILAR_ITEMS)
    out = tmp_path / "similar.parquet"
    assert run_reader(reader_python, "similar", "--table", table, "--product", "p1", "--out", out).returncode == 0
    _assert_same(spark, out, _spark_night(spark, nightly, tables.SIMILAR_ITEMS, N24, product_id="p1"))

    proc = run_reader(reader_python, "similar", "--table", table, "--product", "p2", "--date", N23, "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [(r["run_date"], r["rank"], r["similar_product_id"]) for r in rows] == [
        ("2026-11-23", 1, "p3"),
        ("2026-11-23", 2, "p4"),
        ("2026-11-23", 3, "p9"),
    ]
    assert rows[0]["created_at"] == "2026-11-24T02:30:00+00:00" and rows[0]["als_model_version"] is None


def test_only_the_nights_files_are_read(spark, nightly, reader_python, tmp_path) -> None:
    """With night 23's data files gone, night 24 still reads: the partition filter prunes files."""
    copy = tmp_path / "recommendations"
    shutil.copytree(_path(nightly, tables.RECOMMENDATIONS), copy)
    removed = list((copy / f"run_date={N23}").glob("*.parquet"))
    assert removed
    for f in removed:
        f.unlink()
    out = tmp_path / "n24.parquet"
    proc = run_reader(reader_python, "recs", "--table", copy, "--user", "u1", "--out", out)
    assert proc.returncode == 0, proc.stderr
    _assert_same(spark, out, _spark_night(spark, nightly, tables.RECOMMENDATIONS, N24, user_id="u1"))
    # The copy really is read: the night whose files are gone fails.
    assert run_reader(reader_python, "recs", "--table", copy, "--date", N23, "--json").returncode != 0


def test_deletion_vectors_are_applied(spark, nightly, reader_python, tmp_path) -> None:
    """Databricks enables deletion vectors on new tables; rows they delete must not come back."""
    dv = str(tmp_path / "recs_dv")
    spark.sql(
        f"CREATE TABLE delta.`{dv}` USING delta PARTITIONED BY (run_date) "
        "TBLPROPERTIES ('delta.enableDeletionVectors' = 'true') "
        f"AS SELECT * FROM delta.`{_path(nightly, tables.RECOMMENDATIONS)}`"
    )
    spark.sql(f"DELETE FROM delta.`{dv}` WHERE user_id = 'u1' AND rank = 2")
    assert "deletionVector" in sorted(Path(dv, "_delta_log").glob("*.json"))[-1].read_text()
    out = tmp_path / "dv.parquet"
    proc = run_reader(reader_python, "recs", "--table", dv, "--user", "u1", "--out", out)
    assert proc.returncode == 0, proc.stderr
    expected = spark.read.format("delta").load(dv).filter(f"run_date = '{N24}' AND user_id = 'u1'").orderBy("rank")
    assert [r["rank"] for r in expected.collect()] == [1, 3]
    _assert_same(spark, out, expected)


def test_reader_errors(nightly, reader_python, tmp_path) -> None:
    table = _path(nightly, tables.RECOMMENDATIONS)
    missing = run_reader(reader_python, "recs", "--table", tmp_path / "nope", "--user", "u1")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "no Delta table at" in missing.stderr and "run jobs/recommend.py first" in missing.stderr

    night = run_reader(reader_python, "recs", "--table", table, "--date", "2026-11-01")
    assert night.returncode == 1 and "Traceback" not in night.stderr
    assert "no night 2026-11-01" in night.stderr and "latest 2026-11-24" in night.stderr

    # An unknown user is an empty result with a message, not an error: the columns are still there.
    out = tmp_path / "none.parquet"
    unknown = run_reader(reader_python, "recs", "--table", table, "--user", "u2", "--out", out)
    assert unknown.returncode == 0, unknown.stderr
    assert "no recommendations for user_id 'u2' on 2026-11-24" in unknown.stderr
    import pyarrow.parquet as pq

    empty = pq.read_table(out)
    assert empty.num_rows == 0 and empty.column_names == [f.name for f in tables.RECOMMENDATIONS.schema]

    text = run_reader(reader_python, "recs", "--table", table, "--user", "u2")
    assert text.returncode == 0 and "(no rows)" in text.stdout


def _config_file(tmp_path: Path, warehouse: str) -> str:
    path = tmp_path / "lookup.yaml"
    path.write_text(yaml.safe_dump({"spark": dict(TEST_SPARK), "paths": {"warehouse": warehouse}}), encoding="utf-8")
    return str(path)


def test_lookup_functions_add_titles(spark, nightly) -> None:
    recs = lookup.user_recommendations(spark, nightly, "u1")
    assert list(recs["rank"]) == [1, 2, 3] and set(recs["run_date"]) == {N24}
    assert list(recs["title"].fillna("-")) == [TITLES.get(p, "-") for p in recs["product_id"]]
    assert recs["title"].isna().sum() == 1  # p9 is not in bronze.products
    assert lookup.user_recommendations(spark, nightly, "u2").empty
    assert len(lookup.user_recommendations(spark, nightly, "u2", N23)) == 3

    similar = lookup.similar_products(spark, nightly, "p1", N23)
    assert list(similar["similar_product_id"]) == ["p2", "p3", "p4"]
    assert list(similar["similar_title"]) == ["Red Dress", "Green Cap", "Black Boots"]
    assert set(similar["title"]) == {"Blue Shirt"}


def test_hybridrec_recs_and_similar_cli(spark, nightly, tmp_path, capsys) -> None:
    conf = _config_file(tmp_path, str(nightly.paths.warehouse))
    assert cli_main(["recs", "--user", "u1", "--config", conf]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "gold.recommendations for user 'u1', night 2026-11-24:"
    assert out[1].split() == ["rank", "product_id", "title", "score", "source", "category", "reason"]
    assert [line.split()[:2] for line in out[3:]] == [["1", "p2"], ["2", "p9"], ["3", "p1"]]
    assert "Red Dress" in out[3] and "Blue Shirt" in out[5]

    assert cli_main(["recs", "--user", "u2", "--config", conf]) == 1
    assert "user 'u2' has no list in gold.recommendations on 2026-11-24" in capsys.readouterr().err
    assert cli_main(["recs", "--user", "u2", "--date", "2026-11-23", "--config", conf]) == 0
    capsys.readouterr()
    assert cli_main(["recs", "--user", "u1", "--date", "2026-11-01", "--config", conf]) == 1
    assert "has no night 2026-11-01" in capsys.readouterr().err

    assert cli_main(["similar", "--product", "p1", "--config", conf]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "gold.similar_items for product 'p1' (Blue Shirt), night 2026-11-24:"
    assert "Red Dress" in out[3]


def test_hybridrec_recs_cli_without_table(spark, tmp_path, capsys) -> None:
    conf = _config_file(tmp_path, str(tmp_path / "empty-warehouse"))
    assert cli_main(["recs", "--user", "u1", "--config", conf]) == 1
    err = capsys.readouterr().err
    assert "gold.recommendations not found at" in err and "run jobs/recommend.py first" in err
