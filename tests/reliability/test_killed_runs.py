"""Killed runs: each job is SIGKILLed (its whole process tree: JVM, Python workers, Horovod ranks) at
seeded points; the tables it writes stay readable at their previous version or at a complete new
one, re-running the job finishes, and the final tables equal those of an uninterrupted run.

Every case starts from a private copy of the tiny pipeline's stage before the job (kill_harness):
ingest and preprocess find the previous day's outputs (an ingest of the first part of the files and
its features), recommend finds the night already computed and re-runs it with shorter lists (so the
partition it replaces holds different rows), train starts from fresh features. The job then runs as
``spark-submit jobs/<job>.py`` and is killed ``delay`` seconds after its kill phase (seed ``s`` takes
phase ``s mod n``; the delay comes from ``random.Random("<job>/<seed>")``); the re-run is the same
command line through the job's entry point on the tests' session. The uninterrupted reference is
the pipeline's own run of that job from the same stage.

Compared with chispa (row order ignored) after the run-specific columns are dropped: ``ingested_at``
(bronze, quarantine), ``run_id`` (quarantine, nightly tables), ``created_at`` (nightly tables,
product embeddings); gold.runs is checked apart (exactly one new row: the re-run's, succeeded).
Training is not bit-reproducible across runs (and a resumed run continues on other random streams),
so for train the embeddings are compared on their keys and shapes, not their values, and the test
shows the re-run resuming from the killed run's checkpoint.

Counts (cases, faults injected, reference rows, rows lost, rows extra) are printed and written to the
``killed_runs`` section of ``$HYBRIDREC_RELIABILITY_REPORT`` (default: reliability-report.json in
pytest's session temporary folder).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chispa import assert_df_equality
from kill_harness import (
    RENIGHT_ARGS,
    Diff,
    KilledRun,
    KillPlan,
    Phase,
    Pipeline,
    Tally,
    compare,
    content,
    exists,
    latest_commit,
    pipeline,
    read_delta,
    report_path,
    run_and_kill,
    run_in_process,
    submit_command,
    table_dir,
    update_report,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from hybridrec.config import Config, load_config
from hybridrec.tables import (
    ALS_TABLES,
    INTERACTIONS,
    PRODUCT_EMBEDDINGS,
    PRODUCTS,
    QUARANTINE_INTERACTIONS,
    QUARANTINE_PRODUCTS,
    RECOMMENDATIONS,
    RUNS,
    SIMILAR_ITEMS,
    TableSpec,
)

pytestmark = pytest.mark.cluster

PHASES: dict[str, tuple[Phase, ...]] = {
    "ingest": (
        Phase("catalog read, validating", line=r"products: read \d+ rows", max_delay_s=1.0),
        Phase("bronze.products merged", commit_of=PRODUCTS.logical_name, max_delay_s=0.3),
        Phase("interactions read, validating", line=r"interactions: read \d+ rows", max_delay_s=1.5),
    ),
    "preprocess": (
        Phase("reading bronze.products", line=r"reading bronze\.products version", max_delay_s=2.0),
        Phase("vocabulary built, text features writing", line=r"vocabulary: \d+ ids", max_delay_s=1.0),
        Phase("photos decoding", line=r"decoding \d+ photos", max_delay_s=1.0),
    ),
    "train": (
        Phase("text model: epoch 1 checkpointed", checkpoint_epoch=1, max_delay_s=0.2),
        Phase("text model exported, embeddings running", line=r"\[train text\] test accuracy", max_delay_s=1.0),
    ),
    "recommend": (
        Phase("gold.als_user_factors replaced", commit_of="gold.als_user_factors", max_delay_s=0.3),
        Phase("ALS refit done, scoring", line=r"\[recommend als\]", max_delay_s=2.0),
        Phase("gold.recommendations replaced", commit_of=RECOMMENDATIONS.logical_name, max_delay_s=0.3),
    ),
}
SEEDS: dict[str, tuple[int, ...]] = {
    "ingest": (0, 1, 2),
    "preprocess": (0, 1, 2),
    "train": (0, 1),
    "recommend": (0, 1, 2),
}
BEFORE = {"ingest": "before_ingest", "preprocess": "ingested", "train": "preprocessed", "recommend": "night"}
AFTER = {"ingest": "ingested", "preprocess": "preprocessed", "train": "trained", "recommend": "renight"}
ARGS: dict[str, tuple[str, ...]] = {"recommend": RENIGHT_ARGS}
WRITES: dict[str, tuple[TableSpec, ...]] = {
    "ingest": (PRODUCTS, INTERACTIONS, QUARANTINE_PRODUCTS, QUARANTINE_INTERACTIONS),
    "recommend": (RECOMMENDATIONS, SIMILAR_ITEMS, *ALS_TABLES, PRODUCT_EMBEDDINGS),
}
FEATURE_MANIFEST_VOLATILE = ("created_at", "run_id")


def _plans(job: str) -> list:
    return [pytest.param(KillPlan.for_seed(job, PHASES[job], s), id=f"{job}-seed{s}") for s in SEEDS[job]]


@pytest.fixture(scope="module")
def built(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    return pipeline(tmp_path_factory)


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest, built: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tally]:
    counts = Tally()
    yield counts
    if not counts.cases:
        return
    path = report_path(tmp_path_factory)
    update_report(path, "killed_runs", {**counts.as_json(), "pipeline_seconds": built.seconds})
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\n{counts.summary()} -> {path}")


# ---- helpers -------------------------------------------------------------------------------------


def _kill(built: Pipeline, plan: KillPlan, dest: Path) -> tuple[Path, KilledRun]:
    conf = built.scenario(BEFORE[plan.job], dest)
    killed = run_and_kill(submit_command(plan.job, conf, *ARGS.get(plan.job, ())), conf, plan)
    assert killed.returncode == -9, f"{plan.describe()}: exit code {killed.returncode}\n{killed.tail()}"
    return conf, killed


def _rerun(conf: Path, job: str) -> float:
    t0 = time.monotonic()
    code = run_in_process(job, conf, *ARGS.get(job, ()))
    assert code == 0, f"the re-run of jobs/{job}.py after the kill exited {code}"
    return round(time.monotonic() - t0, 1)


def _case(tally: Tally, killed: KilledRun, **extra: object) -> dict:
    tally.faults_injected += 1
    case = {
        "job": killed.plan.job,
        "seed": killed.plan.seed,
        "phase": killed.plan.phase.name,
        "delay_s": killed.plan.delay_s,
        "phase_reached_after_s": killed.reached_after_s,
        "killed_after_s": killed.killed_after_s,
        "processes_killed": len(killed.killed_pids),
        **extra,
    }
    tally.cases.append(case)
    return case


def _runs_count(spark: SparkSession, cfg: Config) -> int:
    return read_delta(spark, table_dir(cfg, RUNS)).count() if exists(spark, cfg, RUNS) else 0


def _assert_one_new_run(spark: SparkSession, cfg: Config, job: str, before: int) -> None:
    """The killed run left at most its `running` row in gold.runs (written at start, never ended:
    `hybridrec runs` shows it stale); the re-run left one succeeded row."""
    runs = read_delta(spark, table_dir(cfg, RUNS)).orderBy("started_at").collect()
    new = runs[before:]
    states = [(r.job, r.status) for r in new]
    assert states in ([(job, "succeeded")], [(job, "running"), (job, "succeeded")]), (
        f"gold.runs should have gained the killed run's running row and the re-run's, got "
        f"{[(r.job, r.status, r.message) for r in new]}"
    )


def _left_state(spark: SparkSession, cfg: Config, ref_cfg: Config, spec: TableSpec, before: int) -> str:
    """What the kill left of one table: the previous version (still readable by version) or a complete
    new one equal to the reference; never anything in between."""
    path, name = table_dir(cfg, spec), spec.logical_name
    now = latest_commit(path)
    assert now >= before, f"{name}: version went back from {before} to {now}"
    if before >= 0:
        read_delta(spark, path, before).count()  # the previous version stays readable, by number too
    if now == before:
        read_delta(spark, path).count()
        return "previous version" if before >= 0 else "absent, as before"
    current = content(read_delta(spark, path), name)
    reference = content(read_delta(spark, table_dir(ref_cfg, spec)), name)
    vs_reference = compare(current, reference)
    if vs_reference.equal:
        return f"complete new version {now}"
    assert before >= 0, f"{name} was created by the killed run but differs from the reference: {vs_reference}"
    vs_previous = compare(current, content(read_delta(spark, path, before), name))
    assert vs_previous.equal, (
        f"{name} after the kill (version {now}) is neither its previous version {before} ({vs_previous}) "
        f"nor the complete new one ({vs_reference}): a partial write is visible"
    )
    return f"version {now}, same rows as version {before}"


def _assert_equal(tally: Tally, name: str, actual: DataFrame, expected: DataFrame) -> Diff:
    diff = compare(actual, expected)
    tally.add_diff(diff)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    assert diff.equal, f"{name}: {diff}"
    return diff


# ---- Delta-writing jobs: ingest, recommend -----------------------------------------------------------


@pytest.mark.parametrize("plan", _plans("ingest") + _plans("recommend"))
def test_killed_job_leaves_complete_versions_and_its_rerun_equals_an_uninterrupted_run(
    spark: SparkSession, built: Pipeline, tally: Tally, plan: KillPlan, tmp_path: Path
) -> None:
    ref_cfg = built.cfg(AFTER[plan.job])
    before_cfg = built.cfg(BEFORE[plan.job])
    before = {s.logical_name: latest_commit(table_dir(before_cfg, s)) for s in WRITES[plan.job]}
    runs_before = _runs_count(spark, before_cfg)
    conf, killed = _kill(built, plan, tmp_path / "scenario")
    cfg = load_config(conf)
    left = {s.logical_name: _left_state(spark, cfg, ref_cfg, s, before[s.logical_name]) for s in WRITES[plan.job]}

    rerun_s = _rerun(conf, plan.job)
    rows: dict[str, dict] = {}
    for spec in WRITES[plan.job]:
        name = spec.logical_name
        actual = content(read_delta(spark, table_dir(cfg, spec)), name)
        expected = content(read_delta(spark, table_dir(ref_cfg, spec)), name)
        rows[name] = vars(_assert_equal(tally, name, actual, expected))
    _assert_one_new_run(spark, cfg, plan.job, runs_before)
    _case(tally, killed, left_after_kill=left, rerun_seconds=rerun_s, rows=rows)


# ---- preprocess: Parquet features swapped in as a whole -------------------------------------------


def _features_listing(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}


def _manifest(features: Path) -> dict:
    manifest = json.loads((features / "manifest.json").read_text(encoding="utf-8"))
    for key in FEATURE_MANIFEST_VOLATILE:
        manifest.pop(key)
    manifest["source"].pop("location")  # the scenario's own warehouse folder
    return manifest


@pytest.mark.parametrize("plan", _plans("preprocess"))
def test_killed_preprocess_keeps_the_previous_features_and_its_rerun_equals_an_uninterrupted_run(
    spark: SparkSession, built: Pipeline, tally: Tally, plan: KillPlan, tmp_path: Path
) -> None:
    ref = Path(built.cfg(AFTER[plan.job]).paths.features)
    previous = Path(built.cfg(BEFORE[plan.job]).paths.features)
    runs_before = _runs_count(spark, built.cfg(BEFORE[plan.job]))
    conf, killed = _kill(built, plan, tmp_path / "scenario")
    cfg = load_config(conf)
    features = Path(cfg.paths.features)
    if _features_listing(features) == _features_listing(previous):
        left = "previous features, file for file"
    else:  # the kill came after the swap: then they must be the complete new features
        assert _manifest(features) == _manifest(ref), (
            "after the kill the features are neither the previous nor new ones"
        )
        left = "complete new features"
    leftovers = sorted(p.name for p in features.parent.glob(f"{features.name}.*"))

    rerun_s = _rerun(conf, plan.job)
    rows: dict[str, dict] = {}
    for name in ("text", "images", "image_errors"):
        assert (features / name).is_dir() == (ref / name).is_dir(), name
        if not (ref / name).is_dir():
            continue
        actual = content(spark.read.parquet(str(features / name)), f"features/{name}")
        expected = content(spark.read.parquet(str(ref / name)), f"features/{name}")
        rows[name] = vars(_assert_equal(tally, f"features/{name}", actual, expected))
    for name in ("vocab.json", "labels.json"):
        assert json.loads((features / name).read_text()) == json.loads((ref / name).read_text()), name
    assert _manifest(features) == _manifest(ref)
    stale = sorted(p.name for p in features.parent.glob(f"{features.name}.*"))
    assert not stale, f"the re-run left staging or moved-aside folders: {stale}"
    _assert_one_new_run(spark, cfg, plan.job, runs_before)
    _case(
        tally,
        killed,
        left_after_kill={"features": left, "staging_left_by_kill": leftovers},
        rerun_seconds=rerun_s,
        rows=rows,
    )


# ---- train: Horovod resumes from the killed run's checkpoint ---------------------------------------


def _embedding_keys(df: DataFrame) -> DataFrame:
    """What training must reproduce exactly: one row per product and version, which vectors it has."""
    return df.select(
        "product_id",
        "model_version",
        "predicted_by",
        F.col("image_emb").isNull().alias("no_image"),
        F.size("text_emb").alias("text_dim"),
        F.size("fused_emb").alias("fused_dim"),
        F.col("predicted_category").isNotNull().alias("predicted"),
    )


def _state(cfg: Config, version: str) -> dict | None:
    path = Path(cfg.paths.checkpoints) / version / "text" / "state.json"
    return json.loads(path.read_text()) if path.is_file() else None


@pytest.mark.parametrize("plan", _plans("train"))
def test_killed_training_resumes_from_its_checkpoint(
    spark: SparkSession, built: Pipeline, tally: Tally, plan: KillPlan, tmp_path: Path
) -> None:
    ref_cfg = built.cfg(AFTER[plan.job])
    version = json.loads((Path(ref_cfg.paths.models) / "current.json").read_text())["version"]
    runs_before = _runs_count(spark, built.cfg(BEFORE[plan.job]))
    conf, killed = _kill(built, plan, tmp_path / "scenario")
    cfg = load_config(conf)
    assert not (Path(cfg.paths.models) / "current.json").exists(), "the killed run published a model version"
    if latest_commit(table_dir(cfg, PRODUCT_EMBEDDINGS)) >= 0:  # the kill came after the embeddings' commit
        left = compare(
            _embedding_keys(read_delta(spark, table_dir(cfg, PRODUCT_EMBEDDINGS))),
            _embedding_keys(read_delta(spark, table_dir(ref_cfg, PRODUCT_EMBEDDINGS))),
        )
        assert left.equal, f"{PRODUCT_EMBEDDINGS.logical_name} after the kill is not a complete version: {left}"
    state = _state(cfg, version)
    assert state is not None and state["epoch"] >= 1, f"no checkpoint of an epoch after the kill: {state}"
    mid_training = plan.phase is PHASES["train"][0]
    if mid_training:
        assert not state["done"], f"the kill landed after training finished: {state}"

    rerun_s = _rerun(conf, plan.job)
    metrics = json.loads((Path(cfg.paths.models) / version / "metrics.json").read_text())["models"]["text"]
    if mid_training:
        assert metrics.get("resumed_from_epoch", 0) >= 1, f"the re-run did not resume: {metrics}"
        assert metrics["resumed_from_epoch"] == state["epoch"]
        assert [h["epoch"] for h in metrics["history"]] == list(range(1, cfg.train.epochs + 1))
        resumed = {"resumed_from_epoch": metrics["resumed_from_epoch"], "epochs_done": metrics["epochs_done"]}
    else:
        assert metrics.get("reused"), f"the finished model was trained again: {metrics}"
        resumed = {"reused_trained_model": True, "epochs_done": metrics["epochs_done"]}
    actual = _embedding_keys(read_delta(spark, table_dir(cfg, PRODUCT_EMBEDDINGS)))
    expected = _embedding_keys(read_delta(spark, table_dir(ref_cfg, PRODUCT_EMBEDDINGS)))
    rows = vars(_assert_equal(tally, PRODUCT_EMBEDDINGS.logical_name, actual, expected))
    _assert_one_new_run(spark, cfg, plan.job, runs_before)
    _case(
        tally,
        killed,
        left_after_kill={"checkpoint_epoch": state["epoch"], "done": state["done"]},
        rerun=resumed,
        rerun_seconds=rerun_s,
        rows={PRODUCT_EMBEDDINGS.logical_name: rows},
    )
