"""The whole night on a tiny catalog: ingest → preprocess → train (2 Horovod processes) → new
products listed after training → jobs/recommend.py, through the real entry points.

Checks what downstream systems rely on: every active user gets N distinct products they have not
bought, at most max_per_category per category, with a source and a reason; cold products appear in
lists and in similar_items; products listed after training got vectors from the current models;
re-running a night leaves identical content and row count, with the replace visible in the Delta
history, and other nights untouched; a job killed (SIGKILL of its JVM) while writing leaves the
tables at their previous, readable version and a re-run completes it without duplicates (and,
keeping one night, deletes the older one); bad
run dates and missing upstream tables fail with a message naming the fix.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from tiny_catalog import REPO_ROOT, ingest_and_preprocess, write_tiny_config

import ingest as ingest_job
import recommend as recommend_job
import train as train_job
import train_ranker as train_ranker_job
from hybridrec.config import load_config
from hybridrec.hybrid.nightly import FAULT_ENV
from hybridrec.job import run_job
from hybridrec.tables import (
    INTERACTIONS,
    PRODUCT_EMBEDDINGS,
    PRODUCTS,
    RECOMMENDATIONS,
    RUNS,
    SIMILAR_ITEMS,
    delta_table,
    read_table,
    table_ref,
)

pytestmark = pytest.mark.e2e
NIGHT = "2026-01-01"
TOP_N, PER_CATEGORY, SIMILAR_M = 10, 4, 5
NEW_PRODUCTS = ("new-1", "new-2", "new-3")
VOLATILE = ("run_id", "created_at")


def _recommend(conf: Path, *extra: str) -> int:
    return run_job("recommend", recommend_job.main, ["--config", str(conf), *extra], recommend_job.build_parser())


@pytest.fixture(scope="module")
def night(spark, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("nightly_e2e")
    conf = write_tiny_config(
        tmp,
        train={"epochs": 1},
        recommend={
            "top_n": TOP_N,
            "max_per_category": PER_CATEGORY,
            "similar_top_m": SIMILAR_M,
            "content_candidates": 30,
            "cold_candidates": 10,
            # a catalog attribute weighs the lexical terms: the night reads bronze.products.attributes
            "lexical_attributes": ["category", "colour"],
            # as conf/fashion.yaml: each product's lexical share from its predicted type's probability
            "similar_lexical_doubt": True,
            # as conf/fashion.yaml: each product's best neighbours vote for their category
            "similar_type_vote": 3,
        },
        als={"rank": 8, "max_iter": 5, "evaluate": False, "top_k": 30},
    )
    ingest_and_preprocess(conf)
    assert run_job("train", train_job.main, ["--config", str(conf)], train_job.build_parser()) == 0
    # Three products are listed after training: copies of existing rows under new ids.
    cfg = load_config(conf)
    catalog = Path(cfg.catalog.path)
    with catalog.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    with catalog.open("a", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        for new_id, row in zip(NEW_PRODUCTS, rows[:3]):
            writer.writerow({**row, "id": new_id, "title": f"{row['title']} (new)"})
    assert run_job("ingest", ingest_job.main, ["--config", str(conf)], ingest_job.job_parser()) == 0
    assert _recommend(conf, "--run-date", NIGHT) == 0
    return conf


def _night(spark, conf: Path, spec, date: str = NIGHT) -> DataFrame:
    return read_table(spark, table_ref(load_config(conf), spec)).filter(F.col("run_date") == F.lit(date))


def test_every_active_user_gets_n_distinct_unbought_products_with_reasons(spark, night) -> None:
    cfg = load_config(night)
    recs = _night(spark, night, RECOMMENDATIONS).cache()
    events = read_table(spark, table_ref(cfg, INTERACTIONS)).filter(F.col("ts") < F.lit(NIGHT).cast("timestamp"))
    active = {r.user_id for r in events.select("user_id").distinct().collect()}
    per_user = recs.groupBy("user_id").agg(
        F.count(F.lit(1)).alias("n"),
        F.countDistinct("product_id").alias("distinct"),
        F.sort_array(F.collect_list("rank")).alias("ranks"),
    )
    rows = per_user.collect()
    assert {r.user_id for r in rows} == active
    assert all(r.n == TOP_N and r.distinct == TOP_N and r.ranks == list(range(1, TOP_N + 1)) for r in rows)
    bought = events.filter(F.col("event") == "purchase").select("user_id", "product_id").distinct()
    assert recs.join(bought, ["user_id", "product_id"]).count() == 0
    assert recs.groupBy("user_id", "category").count().agg(F.max("count")).first()[0] <= PER_CATEGORY
    assert {r.source for r in recs.select("source").distinct().collect()} <= {
        "als",
        "content",
        "blend",
        "repeat",
        "popular",
    }
    assert recs.filter(F.length("reason") < 5).count() == 0
    similar = recs.filter(F.col("reason").startswith("similar to ")).first()
    assert similar is not None and similar.reason_product_id is not None
    # Ranks follow the scores (ties by product id).
    ordered = recs.orderBy("user_id", "rank").collect()
    for a, b in zip(ordered, ordered[1:]):
        if a.user_id == b.user_id:
            assert (a.score, b.product_id) >= (b.score, a.product_id)
    runs = read_table(spark, table_ref(cfg, RUNS)).filter(F.col("job") == "recommend").collect()
    assert [r.status for r in runs] == ["succeeded"]
    c = runs[0].counts
    assert c["recommendations"] == recs.count() == TOP_N * len(active)
    assert c["active_users"] == c["users_with_recommendations"] + c["users_without_recommendations"] == len(active)
    assert c["events_read"] == c["events_used"] + sum(v for k, v in c.items() if k.startswith("events_dropped_"))


def test_cold_and_new_products_are_recommended_and_have_similar_items(spark, night) -> None:
    cfg = load_config(night)
    events = read_table(spark, table_ref(cfg, INTERACTIONS)).filter(F.col("ts") < F.lit(NIGHT).cast("timestamp"))
    products = read_table(spark, table_ref(cfg, PRODUCTS)).select("product_id")
    cold = products.join(events.select("product_id").distinct(), "product_id", "left_anti")
    recs, similar = _night(spark, night, RECOMMENDATIONS), _night(spark, night, SIMILAR_ITEMS)
    assert recs.join(cold, "product_id", "left_semi").count() > 0, "cold products reach some lists"
    # Products listed after training got vectors of the current model version tonight.
    emb = read_table(spark, table_ref(cfg, PRODUCT_EMBEDDINGS))
    assert emb.filter(F.col("product_id").isin(*NEW_PRODUCTS)).select("model_version").distinct().count() == 1
    assert emb.groupBy("product_id", "model_version").count().filter("count > 1").count() == 0
    # Every product (cold and new ones included) has M similar products, never itself.
    per_product = similar.groupBy("product_id").count()
    assert per_product.count() == products.count()
    assert per_product.filter(F.col("count") != SIMILAR_M).count() == 0
    assert similar.filter(F.col("product_id") == F.col("similar_product_id")).count() == 0
    assert similar.filter(F.col("product_id").isin(*NEW_PRODUCTS)).count() == SIMILAR_M * len(NEW_PRODUCTS)
    counts = read_table(spark, table_ref(cfg, RUNS)).filter(F.col("job") == "recommend").first().counts
    assert counts["new_products_embedded"] == len(NEW_PRODUCTS)
    assert counts["cold_products_with_similar"] == cold.count()


def _content(df: DataFrame) -> DataFrame:
    return df.drop(*VOLATILE)


def test_rerunning_a_night_replaces_it_with_identical_content(spark, night) -> None:
    cfg = load_config(night)
    before = {s.name: _content(_night(spark, night, s)).collect() for s in (RECOMMENDATIONS, SIMILAR_ITEMS)}
    versions = {
        s.name: delta_table(spark, table_ref(cfg, s)).history(1).first().version
        for s in (RECOMMENDATIONS, SIMILAR_ITEMS)
    }
    assert _recommend(night, "--run-date", NIGHT) == 0
    for spec in (RECOMMENDATIONS, SIMILAR_ITEMS):
        after = _content(_night(spark, night, spec))
        expected = spark.createDataFrame(before[spec.name], after.schema)
        assert_df_equality(after, expected, ignore_row_order=True, ignore_nullable=True)
        assert after.count() == len(before[spec.name])
        new = delta_table(spark, table_ref(cfg, spec)).history().filter(F.col("version") > versions[spec.name])
        writes = new.filter(F.col("operation") == "WRITE").collect()
        assert len(writes) == 1 and writes[0].operationParameters["mode"] == "Overwrite"
        assert "run_date" in writes[0].operationParameters.get("predicate", "")


def test_an_earlier_night_is_added_and_the_later_one_kept(spark, night) -> None:
    later = _content(_night(spark, night, RECOMMENDATIONS)).collect()
    assert _recommend(night, "--run-date", "2025-12-31") == 0
    earlier = _night(spark, night, RECOMMENDATIONS, "2025-12-31")
    assert earlier.count() > 0
    kept = _content(_night(spark, night, RECOMMENDATIONS))
    assert_df_equality(kept, spark.createDataFrame(later, kept.schema), ignore_row_order=True, ignore_nullable=True)


def test_a_job_killed_while_writing_leaves_the_previous_version_and_a_rerun_completes(spark, night, tmp_path) -> None:
    cfg = load_config(night)
    ref = table_ref(cfg, RECOMMENDATIONS)
    version = delta_table(spark, ref).history(1).first().version
    before = _content(_night(spark, night, RECOMMENDATIONS)).collect()
    env = {**os.environ, FAULT_ENV: "kill_during_write", "PYSPARK_PYTHON": sys.executable}
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "spark-submit"),
            "--master",
            "local[2]",
            str(REPO_ROOT / "jobs" / "recommend.py"),
            "--config",
            str(night),
            "--run-date",
            NIGHT,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode != 0, (proc.stdout + proc.stderr)[-3000:]
    assert "[recommend recommendations]" not in proc.stdout  # it died inside that stage
    assert delta_table(spark, ref).history(1).first().version == version
    still = _content(_night(spark, night, RECOMMENDATIONS))
    assert_df_equality(still, spark.createDataFrame(before, still.schema), ignore_row_order=True, ignore_nullable=True)
    # The re-run completes the night; keeping one night now deletes 2025-12-31 (retention).
    assert _recommend(night, "--run-date", NIGHT, "--set", "recommend.keep_nights=1") == 0
    assert _night(spark, night, RECOMMENDATIONS, "2025-12-31").count() == 0
    assert _night(spark, night, SIMILAR_ITEMS, "2025-12-31").count() == 0
    counts = read_table(spark, table_ref(cfg, RUNS)).orderBy(F.desc("started_at")).first().counts
    assert counts["recommendations_nights_deleted"] == 1 and counts["similar_items_nights_deleted"] == 1
    again = _night(spark, night, RECOMMENDATIONS)
    assert again.count() == len(before)
    assert again.groupBy("user_id", "product_id").count().filter("count > 1").count() == 0
    assert_df_equality(
        _content(again), spark.createDataFrame(before, still.schema), ignore_row_order=True, ignore_nullable=True
    )


def test_bad_run_dates_and_missing_upstream_fail_clearly(night, tmp_path, capsys, caplog) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _recommend(night, "--run-date", "2026-13-01")
    assert exit_info.value.code == 2
    assert "is not a date like 2026-11-24" in capsys.readouterr().err
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    assert _recommend(night, "--run-date", future) == 1
    assert "after today" in caplog.text
    empty = write_tiny_config(tmp_path)
    assert _recommend(empty, "--run-date", NIGHT) == 1
    assert "run jobs/ingest.py first" in caplog.text


def test_a_trained_ranker_orders_the_next_night_and_gold_runs_says_so(spark, night) -> None:
    """Last in this module: it leaves a current ranker behind. Without one the night said
    "blend"; after jobs/train_ranker.py the same night is ordered by the ranker and keeps every
    promise of the lists (N distinct products per active user, nothing bought, the category cap)."""
    cfg = load_config(night)

    def last_night():
        ok = (F.col("job") == "recommend") & (F.col("status") == "succeeded")
        return read_table(spark, table_ref(cfg, RUNS)).filter(ok).orderBy(F.desc("started_at")).first()

    blend_run = last_night()
    assert blend_run.message.startswith("lists ordered by blend: no ranker trained yet")
    assert blend_run.counts["ranker_used"] == 0
    code = run_job(
        "train_ranker",
        train_ranker_job.main,
        ["--config", str(night), "--run-date", NIGHT],
        train_ranker_job.build_parser(),
    )
    assert code == 0
    trained = read_table(spark, table_ref(cfg, RUNS)).filter(F.col("job") == "train_ranker").first()
    assert trained.status == "succeeded" and trained.counts["positives"] > 0
    version = trained.message.split()[1]
    assert (Path(cfg.paths.models) / "ranker" / version / "ranker.json").is_file()
    assert _recommend(night, "--run-date", NIGHT) == 0
    run = last_night()
    assert run.message == f"lists ordered by learned ranker {version}" and run.counts["ranker_used"] == 1
    assert run.counts["ranker_pairs_scored"] > 0 and "ranker_pairs_scored" not in blend_run.counts
    recs = _night(spark, night, RECOMMENDATIONS).cache()
    events = read_table(spark, table_ref(cfg, INTERACTIONS)).filter(F.col("ts") < F.lit(NIGHT).cast("timestamp"))
    active = {r.user_id for r in events.select("user_id").distinct().collect()}
    per_user = recs.groupBy("user_id").agg(F.count(F.lit(1)).alias("n"), F.countDistinct("product_id").alias("d"))
    rows = per_user.collect()
    assert {r.user_id for r in rows} == active and all(r.n == r.d == TOP_N for r in rows)
    bought = events.filter(F.col("event") == "purchase").select("user_id", "product_id").distinct()
    assert recs.join(bought, ["user_id", "product_id"]).count() == 0
    assert recs.groupBy("user_id", "category").count().agg(F.max("count")).first()[0] <= PER_CATEGORY
    assert recs.filter(F.length("reason") < 5).count() == 0
    # ranker.use=off goes back to the blend, and says so
    assert _recommend(night, "--run-date", NIGHT, "--set", "ranker.use=off") == 0
    off = last_night()
    assert off.message == "lists ordered by blend (ranker.use=off)"
