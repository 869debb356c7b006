"""Kill -9 harness: run a job of jobs/ as ``spark-submit``, SIGKILL its whole process tree at a seeded
point, then compare what it left and what a re-run writes with an uninterrupted run.

Pieces:

- ``pipeline(...)``: one tiny pipeline built once per test session (demo data → ingest of the first
  part of the files → preprocess → ingest of all files → preprocess → train → the night twice),
  each stage run in-process through the job entry points, with a frozen copy of the folder after
  each stage. A kill case copies the stage before its job (the "previous version"), the copy after
  the job is its uninterrupted reference. Inputs (the demo files) live in one shared folder named by
  absolute path, so the paths the jobs store (image_path, source_file) are the same in every copy.
- ``Phase`` / ``KillPlan``: where a kill lands. A phase is something the harness can observe, a line
  of the job's output or a new commit in a Delta table's ``_delta_log``; a plan adds a delay drawn
  from ``random.Random("<job>/<seed>")`` after the phase is reached. Seed ``s`` takes phase
  ``s mod n`` of the job, so three seeds land in three different phases.
- ``run_and_kill``: starts the job in its own session, waits for the plan's point, then stops the
  job's process tree (``SIGSTOP`` until no new process appears: the JVM, Python workers, Horovod
  ranks) and ``SIGKILL``s all of it; fails if the job ended before the point.
- ``content`` / ``compare``: a table's rows without its run-specific columns (``VOLATILE``), map
  columns as sorted entry arrays (sortable, so chispa can ignore row order), and the multiset
  difference with a reference (rows lost, rows extra).
- ``Tally``: faults injected and rows compared / lost / extra, written as JSON.
"""

from __future__ import annotations

import csv
import importlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

import psutil
import pytest
import yaml
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from tiny_catalog import write_tiny_config

from hybridrec.config import Config, load_config
from hybridrec.demo.raw_files import write_demo_data
from hybridrec.job import run_job
from hybridrec.models.worker import read_state
from hybridrec.tables import TABLES, TableSpec, table_exists, table_ref

REPO_ROOT = Path(__file__).resolve().parents[2]

NIGHT = "2026-01-01"  # the demo window ends here
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"
READER_PYTHON = REPO_ROOT / ".venv-reader" / "bin" / "python"
CONFIG_NAME = "tiny.yaml"

# Columns that name the run or its time and so differ between any two runs; everything else must match.
VOLATILE: dict[str, tuple[str, ...]] = {
    "bronze.products": ("ingested_at",),
    "bronze.interactions": ("ingested_at",),
    "quarantine.products": ("run_id", "ingested_at"),
    "quarantine.interactions": ("run_id", "ingested_at"),
    "gold.recommendations": ("run_id", "created_at"),
    "gold.similar_items": ("run_id", "created_at"),
    "gold.product_embeddings": ("created_at",),
}

# Small everything: one text model trained for a few steps, a rank-8 ALS, short lists. Training runs
# 40 two-step epochs without early stopping: after the first epoch (~15 s: graph building) each takes
# ~0.15 s, so the kill after "epoch 1" has a window of seconds to land mid-training (with 6 epochs,
# early stopping after epoch 6, the run sometimes finished before the kill arrived).
SECTIONS: dict[str, dict] = {
    "train": {
        "models": ["text"],
        "epochs": 40,
        "early_stopping_patience": 0,
        "max_steps_per_epoch": 2,
        "fusion_epochs": 1,
    },
    "als": {"rank": 8, "max_iter": 4, "evaluate": False, "top_k": 30},
    "recommend": {
        "top_n": 10,
        "max_per_category": 4,
        "similar_top_m": 5,
        "content_candidates": 30,
        "cold_candidates": 10,
        "vacuum": False,
    },
}
# The night is computed twice: the second run, with shorter lists, replaces the first one's partition.
NIGHT_ARGS = ("--run-date", NIGHT)
RENIGHT_ARGS = ("--run-date", NIGHT, "--set", "recommend.top_n=8")
# The first ingest reads these shares of the files, the second one all of them.
PART_PRODUCTS, PART_EVENTS = 0.8, 0.6


# ---- running jobs --------------------------------------------------------------------------------


def run_in_process(job: str, conf: Path, *args: str) -> int:
    """A job through its entry point on the tests' SparkSession (as tests/e2e do); its exit code."""
    module = importlib.import_module(job)
    parser = module.build_parser() if hasattr(module, "build_parser") else module.job_parser()
    return run_job(job, module.main, ["--config", str(conf), *args], parser)


def submit_command(job: str, conf: Path, *args: str) -> list[str]:
    """``spark-submit jobs/<job>.py --config <conf> ...``: the job in a JVM of its own."""
    return [
        str(SPARK_SUBMIT),
        "--master",
        "local[2]",
        str(REPO_ROOT / "jobs" / f"{job}.py"),
        "--config",
        str(conf),
        *args,
    ]


def job_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        PYTHONUNBUFFERED="1",
        SPARK_LOCAL_IP=env.get("SPARK_LOCAL_IP", "127.0.0.1"),
    )
    return env


# ---- the pipeline and its frozen stages ----------------------------------------------------------

STAGES = ("before_ingest", "ingested", "preprocessed", "trained", "night", "renight")


@dataclass
class Pipeline:
    """Frozen copies of the tiny pipeline's folder after each stage (see the module docstring)."""

    raw: Path
    stages: dict[str, Path]
    seconds: dict[str, float | str]

    def scenario(self, stage: str, dest: Path) -> Path:
        """A private copy of ``stage`` in ``dest``; returns its config file."""
        shutil.copytree(self.stages[stage], dest)
        return dest / CONFIG_NAME

    def cfg(self, stage: str) -> Config:
        return load_config(self.stages[stage] / CONFIG_NAME)


_PIPELINE: Pipeline | None = None
# Development aid: the folder of a pipeline an earlier session built (<basetemp>/kill_pipeline0), reused
# instead of building one (about 7 job runs). Only valid while lib/ and conf/ are unchanged since.
PIPELINE_ENV = "HYBRIDREC_KILL_PIPELINE"


def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """The session's pipeline, built on first use (several test modules share it)."""
    global _PIPELINE
    if _PIPELINE is None:
        reuse = os.environ.get(PIPELINE_ENV)
        _PIPELINE = _load_pipeline(Path(reuse)) if reuse else _build_pipeline(tmp_path_factory.mktemp("kill_pipeline"))
    return _PIPELINE


def _load_pipeline(base: Path) -> Pipeline:
    stages = {stage: base / "stages" / stage for stage in STAGES}
    missing = [s for s, path in stages.items() if not (path / CONFIG_NAME).is_file()]
    if missing:
        raise RuntimeError(f"${PIPELINE_ENV}={base} is not a complete pipeline (stages missing: {missing}); unset it")
    record = base / "pipeline.json"
    seconds = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
    return Pipeline(raw=base / "raw", stages=stages, seconds={"reused_from": str(base), **seconds})


def write_config(root: Path, raw: Path) -> Path:
    """The tiny e2e config with outputs under ``root`` and the shared inputs under ``raw``."""
    root.mkdir(parents=True, exist_ok=True)
    conf = write_tiny_config(root, **SECTIONS)
    data = yaml.safe_load(conf.read_text(encoding="utf-8"))
    data["paths"]["raw"] = str(raw)
    data["catalog"].update(path=str(raw / "catalog" / "products.csv"), image_root=str(raw / "catalog" / "images"))
    data["interactions"]["path"] = str(raw / "interactions" / "interactions.csv")
    conf.write_text(yaml.safe_dump(data), encoding="utf-8")
    return conf


def _head_csv(src: Path, dest: Path, share: float) -> None:
    """The header and the first ``share`` of the records of a CSV file (quoted newlines kept)."""
    with src.open(encoding="utf-8", newline="") as f:
        header, *records = list(csv.reader(f))
    with dest.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *records[: int(len(records) * share)]])


def _build_pipeline(base: Path) -> Pipeline:
    raw, work = base / "raw", base / "work"
    conf = write_config(work, raw)
    write_demo_data(load_config(conf))
    cfg = load_config(conf)
    part_products = raw / "catalog" / "products_part.csv"
    part_events = raw / "interactions" / "interactions_part.csv"
    _head_csv(Path(cfg.catalog.path), part_products, PART_PRODUCTS)
    _head_csv(Path(cfg.interactions.path), part_events, PART_EVENTS)
    stages: dict[str, Path] = {}
    seconds: dict[str, float] = {}

    def step(name: str, job: str, *args: str) -> None:
        t0 = time.monotonic()
        code = run_in_process(job, conf, *args)
        assert code == 0, f"pipeline step {name}: jobs/{job}.py {' '.join(args)} exited {code}"
        seconds[name] = round(time.monotonic() - t0, 1)

    def freeze(stage: str) -> None:
        # MLflow's file store records absolute artifact paths: copies start without it.
        stages[stage] = base / "stages" / stage
        shutil.copytree(work, stages[stage], ignore=shutil.ignore_patterns("mlruns"))

    step("ingest_part", "ingest", "--set", f"catalog.path={part_products}", "--set", f"interactions.path={part_events}")
    step("preprocess_part", "preprocess")
    freeze("before_ingest")
    step("ingest", "ingest")
    freeze("ingested")
    step("preprocess", "preprocess")
    freeze("preprocessed")
    step("train", "train")
    freeze("trained")
    step("night", "recommend", *NIGHT_ARGS)
    freeze("night")
    step("renight", "recommend", *RENIGHT_ARGS)
    freeze("renight")
    (base / "pipeline.json").write_text(json.dumps(seconds), encoding="utf-8")
    return Pipeline(raw=raw, stages=stages, seconds=seconds)


# ---- kill points ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """A point of a job's run the harness can see: an output line matching ``line`` (a regex), a new
    commit of the Delta table ``commit_of`` (a logical name such as ``bronze.products``), or a
    training checkpoint of ``checkpoint_epoch`` or later (``state.json`` of a model under the
    config's checkpoints folder). Lines the Horovod ranks print reach the job's output through
    Horovod's relay, seconds late on the tiny pipeline, so training is watched through its files."""

    name: str
    line: str | None = None
    commit_of: str | None = None
    checkpoint_epoch: int | None = None
    max_delay_s: float = 1.0

    def __post_init__(self) -> None:
        given = [x for x in (self.line, self.commit_of, self.checkpoint_epoch) if x is not None]
        if len(given) != 1:
            raise ValueError(f"phase {self.name}: give exactly one of line, commit_of, checkpoint_epoch")


def checkpoint_epoch(checkpoints: Path) -> int:
    """The highest epoch any model's checkpoint state under ``checkpoints`` records (0: none yet)."""
    best = 0
    for model_dir in checkpoints.glob("*/*"):
        with suppress(OSError):  # a folder cleared while we look: the next poll sees what is there
            state = read_state(model_dir)
            best = max(best, int(state["epoch"])) if state else best
    return best


@dataclass(frozen=True)
class KillPlan:
    job: str
    seed: int
    phase: Phase
    delay_s: float

    @classmethod
    def for_seed(cls, job: str, phases: Sequence[Phase], seed: int) -> KillPlan:
        phase = phases[seed % len(phases)]
        delay = random.Random(f"{job}/{seed}").uniform(0.0, phase.max_delay_s)
        return cls(job, seed, phase, round(delay, 3))

    def describe(self) -> str:
        return f"{self.job} seed {self.seed}: {self.delay_s:.2f}s after '{self.phase.name}'"


def latest_commit(table_dir: Path) -> int:
    """The newest committed version in a Delta table's log (-1: no table yet); no Spark needed."""
    log = table_dir / "_delta_log"
    versions = [int(p.name[:20]) for p in log.glob("*.json") if re.fullmatch(r"\d{20}\.json", p.name)]
    return max(versions, default=-1)


@dataclass
class KilledRun:
    plan: KillPlan
    returncode: int
    reached_after_s: float
    killed_after_s: float
    killed_pids: list[int]
    output: str

    def tail(self, n: int = 4000) -> str:
        return self.output[-n:]


class _Lines:
    """Lines of a process's output, read on a thread, searchable while the process runs."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            with self._lock:
                self.lines.append(line)

    def search(self, pattern: str) -> bool:
        rx = re.compile(pattern)
        with self._lock:
            return any(rx.search(line) for line in self.lines)

    def text(self) -> str:
        self._thread.join(timeout=10)
        with self._lock:
            return "".join(self.lines)


def run_and_kill(cmd: Sequence[str], conf: Path, plan: KillPlan, timeout_s: float = 600.0) -> KilledRun:
    """Run ``cmd`` (in its own session and process group, in the folder of the config file ``conf``),
    SIGKILL its whole process tree at ``plan``.

    Fails when the job exits before the kill point: a kill that did not happen must not pass.
    """
    phase = plan.phase
    root = conf.parent
    cfg = load_config(conf)
    commits = table_dir(cfg, TABLES[phase.commit_of]) if phase.commit_of else None
    committed = latest_commit(commits) if commits else -1
    checkpoints = Path(cfg.paths.checkpoints)

    def reached_phase() -> bool:
        if phase.line:
            return out.search(phase.line)
        if phase.checkpoint_epoch is not None:
            return checkpoint_epoch(checkpoints) >= phase.checkpoint_epoch
        return latest_commit(commits) > committed

    proc = subprocess.Popen(
        list(cmd),
        cwd=root,
        env=job_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,
    )
    out = _Lines(proc.stdout)
    started = time.monotonic()
    killed: list[int] = []
    try:
        while not reached_phase():
            _still_running(proc, out, plan, "before reaching its kill phase")
            if time.monotonic() - started > timeout_s:
                raise AssertionError(f"{plan.describe()}: phase not reached in {timeout_s:.0f}s\n{out.text()[-3000:]}")
            time.sleep(0.05)
        reached = time.monotonic() - started
        while time.monotonic() - started < reached + plan.delay_s:
            _still_running(proc, out, plan, "before the kill delay ran out")
            time.sleep(0.01)
        _still_running(proc, out, plan, "before the kill")
        killed = kill_process_tree(proc.pid)
        killed_at = time.monotonic() - started
    finally:
        if proc.poll() is None and not killed:
            kill_process_tree(proc.pid)
        proc.wait(timeout=60)
    survivors = wait_gone(killed)
    assert not survivors, f"{plan.describe()}: processes survived SIGKILL: {survivors}"
    return KilledRun(plan, proc.returncode, round(reached, 2), round(killed_at, 2), killed, out.text())


def _still_running(proc: subprocess.Popen, out: _Lines, plan: KillPlan, when: str) -> None:
    if proc.poll() is not None:
        raise AssertionError(
            f"{plan.describe()}: the job exited (code {proc.returncode}) {when}, so no fault was injected; "
            f"pick an earlier phase or a shorter delay\n{out.text()[-3000:]}"
        )


def _tree(root_pid: int, pgid: int, sid: int) -> list[psutil.Process]:
    """The process, its descendants, and every process of its group or session."""
    found: dict[int, psutil.Process] = {}
    with suppress(psutil.NoSuchProcess):
        root = psutil.Process(root_pid)
        found[root_pid] = root
        for child in root.children(recursive=True):
            found[child.pid] = child
    for p in psutil.process_iter():
        with suppress(psutil.NoSuchProcess, ProcessLookupError, PermissionError):
            if p.pid not in found and p.pid != os.getpid() and (os.getpgid(p.pid) == pgid or os.getsid(p.pid) == sid):
                found[p.pid] = p
    return list(found.values())


def kill_process_tree(root_pid: int) -> list[int]:
    """SIGSTOP ``root_pid``'s tree until no new process shows up, then SIGKILL every one of them.

    Stopping first means nothing forks, and nothing is re-parented out of sight, while the tree is
    collected; the kill then hits the JVM, its Python workers and any Horovod rank at once.
    """
    try:
        pgid, sid = os.getpgid(root_pid), os.getsid(root_pid)
    except ProcessLookupError:
        return []
    stopped: dict[int, psutil.Process] = {}
    for _ in range(100):
        new = [p for p in _tree(root_pid, pgid, sid) if p.pid not in stopped]
        if not new:
            break
        for p in new:
            with suppress(psutil.NoSuchProcess):
                p.suspend()
            stopped[p.pid] = p
    for p in stopped.values():
        with suppress(psutil.NoSuchProcess):
            p.kill()
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    return sorted(stopped)


def wait_gone(pids: Sequence[int], timeout_s: float = 20.0) -> list[int]:
    """The pids still alive (not zombies) after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for pid in pids:
            with suppress(psutil.NoSuchProcess):
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


# ---- comparing tables ----------------------------------------------------------------------------


def _sortable(dtype: T.DataType, col: F.Column) -> F.Column:
    """Maps are neither sortable nor usable in set operations: as sorted (key, value) arrays they are."""
    if isinstance(dtype, T.MapType):
        return F.array_sort(F.map_entries(col))
    return col


def content(df: DataFrame, logical_name: str, extra_volatile: Sequence[str] = ()) -> DataFrame:
    """``df`` without its run-specific columns, maps as sorted arrays, columns in name order."""
    drop = set(VOLATILE.get(logical_name, ())) | set(extra_volatile)
    fields = sorted((f for f in df.schema.fields if f.name not in drop), key=lambda f: f.name)
    return df.select(*[_sortable(f.dataType, F.col(f.name)).alias(f.name) for f in fields])


@dataclass
class Diff:
    expected: int
    actual: int
    lost: int  # rows of the reference missing from the result (multiset difference)
    extra: int  # rows of the result that the reference does not have (duplicates included)

    @property
    def equal(self) -> bool:
        return self.lost == 0 and self.extra == 0


def compare(actual: DataFrame, expected: DataFrame) -> Diff:
    """Row counts and multiset differences in one Spark job: each distinct row with how often each
    side holds it (``exceptAll`` both ways and two counts would be four jobs)."""
    cols = expected.columns
    side = F.col("_side")
    both = actual.select(*cols, F.lit(1).alias("_side")).unionByName(expected.select(*cols, F.lit(0).alias("_side")))
    per_row = both.groupBy(*cols).agg(F.sum(side).alias("_a"), F.sum(1 - side).alias("_e"))
    row = per_row.agg(
        F.sum("_e").alias("expected"),
        F.sum("_a").alias("actual"),
        F.sum(F.greatest(F.col("_e") - F.col("_a"), F.lit(0))).alias("lost"),
        F.sum(F.greatest(F.col("_a") - F.col("_e"), F.lit(0))).alias("extra"),
    ).first()
    return Diff(**{k: int(row[k] or 0) for k in ("expected", "actual", "lost", "extra")})


def read_delta(spark: SparkSession, path: Path, version: int | None = None) -> DataFrame:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(str(path))


def table_dir(cfg: Config, spec: TableSpec) -> Path:
    ref = table_ref(cfg, spec)
    assert ref.path is not None, "the kill tests use path-based tables (tables.uc_catalog: null)"
    return Path(ref.path)


def exists(spark: SparkSession, cfg: Config, spec: TableSpec) -> bool:
    return table_exists(spark, table_ref(cfg, spec))


# ---- counts --------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the kill suite did: cases, faults injected, and rows compared with the references."""

    cases: list[dict] = field(default_factory=list)
    faults_injected: int = 0
    tables_compared: int = 0
    rows_compared: int = 0
    rows_lost: int = 0
    rows_extra: int = 0

    def add_diff(self, diff: Diff) -> None:
        self.tables_compared += 1
        self.rows_compared += diff.expected
        self.rows_lost += diff.lost
        self.rows_extra += diff.extra

    def summary(self) -> str:
        jobs = sorted({c["job"] for c in self.cases})
        return (
            f"kill -9 suite: {len(self.cases)} cases over {len(jobs)} jobs ({', '.join(jobs)}), "
            f"{self.faults_injected} faults injected, {self.tables_compared} tables compared with "
            f"uninterrupted runs, {self.rows_compared} reference rows, {self.rows_lost} lost, "
            f"{self.rows_extra} extra"
        )

    def as_json(self) -> dict:
        return {
            **{k: v for k, v in asdict(self).items() if k != "cases"},
            "summary": self.summary(),
            "jobs": sorted({c["job"] for c in self.cases}),
            "cases": self.cases,
        }


REPORT_ENV = "HYBRIDREC_RELIABILITY_REPORT"


def report_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``$HYBRIDREC_RELIABILITY_REPORT``, else ``reliability-report.json`` in the session's temporary folder."""
    given = os.environ.get(REPORT_ENV)
    return Path(given) if given else tmp_path_factory.getbasetemp() / "reliability-report.json"


def update_report(path: Path, section: str, data: dict) -> None:
    """Set one section of the JSON report (the kill suite and the reader test each own one)."""
    report = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    report[section] = data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
