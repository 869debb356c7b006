"""The whole night on a real multi-node Spark cluster: a standalone master and two workers (1 core
each) on loopback, every job submitted with ``spark-submit --master spark://127.0.0.1:7077``.

1. ingest → preprocess → train (Horovod, 2 processes) → recommend on the tiny catalog: every job ran
   on the standalone master with one executor on each worker; both Horovod runs (image, text) had
   their two ranks in tasks on the two workers' executors (Spark event log + each worker's work dir)
   and metrics.json names ranks 0 and 1; every active user gets N distinct unbought products, and
   the counts of every job reconcile.
2. The nightly job again, with one worker (daemon, executor and Python workers: a lost node) killed
   by SIGKILL while it runs tasks: the job finishes on the remaining worker through task retries and
   stage recomputation, or fails with a message naming the lost executor and a re-run succeeds.
   Either way the night's tables equal the uninterrupted run's (chispa, row order and run-specific
   columns ignored): no row lost, none duplicated. A summary of the fault and its effects is printed.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from cluster_fixture import cluster_fixture  # noqa: F401 - registers the module-scoped "cluster" fixture
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from standalone import (
    SUBMIT_TIMEOUT_S,
    Cluster,
    Submission,
    free_port_run,
    read_events,
    run_job_on_cluster,
    start_job,
)
from tiny_catalog import write_tiny_config

from hybridrec.config import Config, load_config
from hybridrec.demo.raw_files import write_demo_data
from hybridrec.tables import (
    INTERACTIONS,
    PRODUCT_EMBEDDINGS,
    PRODUCTS,
    RECOMMENDATIONS,
    RUNS,
    SIMILAR_ITEMS,
    TableSpec,
    read_table,
    table_ref,
)

pytestmark = pytest.mark.cluster

NIGHT = "2026-01-01"
TOP_N, PER_CATEGORY, SIMILAR_M = 10, 4, 5
# Differ between two runs of the same night by design.
VOLATILE = ("run_id", "created_at")
KEYS = {RECOMMENDATIONS.name: ("run_date", "user_id", "rank"), SIMILAR_ITEMS.name: ("run_date", "product_id", "rank")}
PIPELINE = (("ingest", ()), ("preprocess", ()), ("train", ()), ("recommend", ("--run-date", NIGHT)))


@dataclass
class Night:
    conf: Path
    workdir: Path
    runs: dict[str, Submission] = field(default_factory=dict)

    @property
    def cfg(self) -> Config:
        return load_config(self.conf)


@pytest.fixture(scope="module")
def night(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Night:
    """The tiny catalog through every job of the night, each one a spark-submit to the cluster."""
    work = tmp_path_factory.mktemp("cluster_night")
    conf = write_tiny_config(
        work,
        train={"epochs": 1, "num_proc": 2},
        recommend={
            "top_n": TOP_N,
            "max_per_category": PER_CATEGORY,
            "similar_top_m": SIMILAR_M,
            "content_candidates": 30,
            "cold_candidates": 10,
        },
        als={"rank": 8, "max_iter": 5, "evaluate": False, "top_k": 30},
    )
    result = Night(conf=conf, workdir=work)
    write_demo_data(result.cfg)  # plain Python: the raw files the ingest job reads
    for job, extra in PIPELINE:
        sub = run_job_on_cluster(cluster, job, ["--config", str(conf), *extra], work, job)
        assert sub.returncode == 0, (
            f"{job} failed on the standalone cluster (exit {sub.returncode}); log {sub.log}:\n{sub.tail()}"
        )
        result.runs[job] = sub
    return result


def _night(spark: SparkSession, cfg: Config, spec: TableSpec, date: str = NIGHT) -> DataFrame:
    return read_table(spark, table_ref(cfg, spec)).filter(F.col("run_date") == F.lit(date))


def _content(df: DataFrame) -> DataFrame:
    return df.drop(*VOLATILE)


def test_the_night_runs_on_the_standalone_cluster_with_horovod_ranks_on_both_workers(
    cluster: Cluster, night: Night, spark: SparkSession
) -> None:
    # Every job was an application of the standalone master with one executor on each worker.
    app_ids = {}
    for job, sub in night.runs.items():
        app = read_events(sub.events)
        app_ids[job] = app.app_id
        assert app.master == cluster.master_url, f"{job} ran on {app.master!r}, not {cluster.master_url}"
        assert app.finished, f"{job}: the event log has no application end ({sub.events})"
        placed = {e: cluster.worker_of_executor(app.app_id, e) for e in app.executors_added}
        assert sorted(w for w in placed.values() if w) == [1, 2], (
            f"{job} ({app.app_id}): expected one executor on each of workers 1 and 2, got {placed}"
        )
    completed = {a["id"]: a["state"] for a in cluster.master_json()["completedapps"]}
    assert all(completed.get(a) == "FINISHED" for a in app_ids.values()), (
        f"the master's completed applications {completed} do not list {app_ids} as FINISHED"
    )

    # Horovod: each model's horovod.spark.run job had its 2 tasks (one per rank) on both workers.
    train = read_events(night.runs["train"].events)
    horovod_runs = train.executors_of_group("horovod.spark.run")
    assert len(horovod_runs) == 2, f"expected 2 Horovod runs (image, text), the event log has {horovod_runs}"
    for executors in horovod_runs:
        workers = sorted(w for e in executors if (w := cluster.worker_of_executor(train.app_id, e)))
        assert len(executors) == 2 and workers == [1, 2], (
            f"a Horovod run's tasks ran on executors {sorted(executors)} (workers {workers}), not one per worker"
        )
    cfg = night.cfg
    version = json.loads((Path(cfg.paths.models) / "current.json").read_text())["version"]
    metrics = json.loads((Path(cfg.paths.models) / version / "metrics.json").read_text())
    for model in ("image", "text"):
        m = metrics["models"][model]
        assert m["ranks"] == [0, 1] and m["processes"] == 2, f"{model}: ranks {m['ranks']}, {m['processes']} processes"
    assert re.search(r"\[train image\] epoch 1/1: .* on 2 process\(es\)", night.runs["train"].output()), (
        "rank 0's epoch line for 2 processes is missing from the train log"
    )

    # Tables: every active user has N distinct products not bought; the jobs' counts reconcile.
    events = read_table(spark, table_ref(cfg, INTERACTIONS))
    before = events.filter(F.col("ts") < F.lit(NIGHT).cast("timestamp"))
    active = {r.user_id for r in before.select("user_id").distinct().collect()}
    recs = _night(spark, cfg, RECOMMENDATIONS).cache()
    per_user = {
        r.user_id: (r.n, r.distinct, r.ranks)
        for r in recs.groupBy("user_id")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.countDistinct("product_id").alias("distinct"),
            F.sort_array(F.collect_list("rank")).alias("ranks"),
        )
        .collect()
    }
    assert set(per_user) == active, (
        f"{len(active - set(per_user))} active users without a list, {len(set(per_user) - active)} unexpected"
    )
    wrong = {u: v for u, v in per_user.items() if v != (TOP_N, TOP_N, list(range(1, TOP_N + 1)))}
    assert not wrong, f"users without {TOP_N} distinct ranked products: {dict(list(wrong.items())[:5])}"
    bought = before.filter(F.col("event") == "purchase").select("user_id", "product_id").distinct()
    assert recs.join(bought, ["user_id", "product_id"]).count() == 0, "a bought product was recommended"
    assert recs.groupBy("user_id", "category").count().agg(F.max("count")).first()[0] <= PER_CATEGORY

    runs = {r.job: r for r in read_table(spark, table_ref(cfg, RUNS)).collect()}
    assert {j: r.status for j, r in runs.items()} == {j: "succeeded" for j, _ in PIPELINE}
    products = read_table(spark, table_ref(cfg, PRODUCTS)).count()
    c = runs["ingest"].counts
    for what, table in (("products", PRODUCTS), ("interactions", INTERACTIONS)):
        assert c[f"{what}_read"] == c[f"{what}_accepted"] + c[f"{what}_quarantined"], f"ingest {what}: {c}"
        assert read_table(spark, table_ref(cfg, table)).count() == c[f"{what}_accepted"], f"bronze {what} vs {c}"
    assert runs["preprocess"].counts["text_rows"] == products, runs["preprocess"].counts
    emb = read_table(spark, table_ref(cfg, PRODUCT_EMBEDDINGS)).filter(F.col("model_version") == version)
    assert emb.count() == emb.select("product_id").distinct().count() == products == runs["train"].counts["rows"]
    r = runs["recommend"].counts
    assert r["recommendations"] == recs.count() == TOP_N * len(active), r
    assert r["events_read"] == r["events_used"] + sum(v for k, v in r.items() if k.startswith("events_dropped_")), r
    similar = _night(spark, cfg, SIMILAR_ITEMS).groupBy("product_id").count()
    assert similar.count() == products and similar.filter(F.col("count") != SIMILAR_M).count() == 0


def _busy_workers(cluster: Cluster, ui_port: int) -> list[int]:
    """Workers whose executor of the running application has tasks running (driver's REST API)."""
    base = f"http://127.0.0.1:{ui_port}/api/v1/applications"
    try:
        with urllib.request.urlopen(base, timeout=2) as resp:
            app_id = json.load(resp)[0]["id"]
        with urllib.request.urlopen(f"{base}/{app_id}/executors", timeout=2) as resp:
            executors = json.load(resp)
    except (urllib.error.URLError, OSError, ValueError, IndexError, KeyError):
        return []  # the driver's UI is not up yet, or going away
    busy = [
        cluster.worker_of_executor(app_id, e["id"])
        for e in executors
        if e["id"] != "driver" and e.get("activeTasks", 0) > 0
    ]
    return sorted(w for w in busy if w)


def _compare(spark: SparkSession, baseline: list[Any], after: DataFrame, keys: tuple[str, ...]) -> dict[str, int]:
    expected = spark.createDataFrame(baseline, after.schema)
    return {
        "rows_expected": len(baseline),
        "rows": after.count(),
        "rows_lost": expected.exceptAll(after).count(),
        "rows_unexpected": after.exceptAll(expected).count(),
        "duplicate_keys": after.count() - after.select(*keys).distinct().count(),
    }


def test_a_worker_killed_mid_night_loses_and_duplicates_nothing(
    cluster: Cluster, night: Night, spark: SparkSession, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = night.cfg
    specs = (RECOMMENDATIONS, SIMILAR_ITEMS)
    # The uninterrupted run of the night (the fixture's) is the reference.
    baseline = {s.name: _content(_night(spark, cfg, s)).collect() for s in specs}
    assert all(baseline.values()), "the uninterrupted night wrote nothing to compare with"
    ui_port = free_port_run(1)
    proc, sub = start_job(
        cluster,
        "recommend",
        ["--config", str(night.conf), "--run-date", NIGHT, "--set", "spark.ui_enabled=true"],
        night.workdir,
        "recommend-killed",
        conf={"spark.ui.port": str(ui_port)},
    )
    killed: int | None = None
    pids: list[int] = []
    started = time.monotonic()
    try:
        # Once the first stage is done (ALS is next), kill a worker that is running tasks right now.
        while proc.poll() is None and time.monotonic() - started < SUBMIT_TIMEOUT_S:
            if "[recommend freshness]" in sub.output():
                busy = _busy_workers(cluster, ui_port)
                if busy:
                    killed = busy[-1]
                    pids = cluster.kill_worker(killed)
                    break
            time.sleep(0.2)
        assert killed is not None, (
            f"no worker could be killed mid-job: the job ended (exit {proc.poll()}) before a busy executor "
            f"was seen after its first stage; log:\n{sub.tail()}"
        )
        killed_at = time.monotonic() - started
        rc = proc.wait(timeout=SUBMIT_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    app = read_events(sub.events)
    lost = [e for e in app.executors_added if cluster.worker_of_executor(app.app_id, e) == killed]
    assert lost and all(e in app.executors_removed for e in lost), (
        f"the driver did not record the loss of worker {killed}'s executor(s) {lost}: removed {app.executors_removed}"
    )
    assert cluster.alive_workers() == 1, f"the master still lists 2 ALIVE workers: {cluster.master_json()['workers']}"

    outcome = "finished through task retries on the remaining worker"
    rerun: Submission | None = None
    if rc != 0:
        # A failure must say what happened, then the same command on the remaining worker completes.
        assert re.search(r"ExecutorLostFailure|Lost executor|lost worker|FetchFailed", sub.output()), (
            f"the failed run's log does not say that an executor was lost:\n{sub.tail()}"
        )
        outcome = "failed naming the lost executor; the re-run succeeded"
        rerun = run_job_on_cluster(
            cluster, "recommend", ["--config", str(night.conf), "--run-date", NIGHT], night.workdir, "recommend-rerun"
        )
        assert rerun.returncode == 0, f"the re-run after the failure failed (exit {rerun.returncode}):\n{rerun.tail()}"

    figures = {s.name: _compare(spark, baseline[s.name], _content(_night(spark, cfg, s)), KEYS[s.name]) for s in specs}
    last = (
        read_table(spark, table_ref(cfg, RUNS))
        .filter(F.col("job") == "recommend")
        .orderBy(F.desc("started_at"))
        .first()
    )
    summary = {
        "faults_injected": 1,
        "killed_worker": killed,
        "killed_after_s": round(killed_at, 1),
        "processes_killed": len(pids),
        "executors_lost": len(lost),
        "tasks_failed_executor_lost": app.failed_tasks("ExecutorLostFailure"),
        "tasks_failed_fetch_failed": app.failed_tasks("FetchFailed"),
        # finished map tasks whose shuffle output died with the executor, run again
        "tasks_resubmitted": app.failed_tasks("Resubmitted"),
        "stages_resubmitted": app.resubmitted_stages(),
        "job_exit_code": rc,
        "outcome": outcome,
        "rerun_exit_code": rerun.returncode if rerun else None,
        "tables": figures,
    }
    (night.workdir / "kill_summary.json").write_text(json.dumps(summary, indent=1))
    with capsys.disabled():
        print("\ncluster kill test:", json.dumps(summary, indent=1))

    assert last.status == "succeeded" and last.counts["recommendations"] == len(baseline[RECOMMENDATIONS.name]), (
        f"gold.runs' last recommend run: {last.status}, counts {last.counts}"
    )
    for s in specs:
        f = figures[s.name]
        assert f["rows_lost"] == 0 and f["rows_unexpected"] == 0 and f["duplicate_keys"] == 0, f"{s.name}: {f}"
        after = _content(_night(spark, cfg, s))
        assert_df_equality(
            after, spark.createDataFrame(baseline[s.name], after.schema), ignore_row_order=True, ignore_nullable=True
        )
