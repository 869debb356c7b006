"""Runtime failures a user can act on end with one sentence naming the thing and the fix (issue 22,
items 9, 10, 11, 13): no Spark, Py4J or Rust trace unless ``--debug``/``HYBRIDREC_DEBUG=1`` asks.

- a warehouse that is a file or cannot be written stops the job before Spark starts (exit 2);
- a truncated ``_delta_log/*.json`` names the table, the broken commit, the last good version and
  the repair, in ``hybridrec recs`` and in the Spark-free reader (exit 1);
- a run that loses a commit race to another run of the same night says the other run won and that
  nothing needs doing (exit 1: this run did not write what it was asked to; the scheduler should not
  report it as done, but the night is complete, which the message says);
- ``gold.runs`` holds a ``running`` row from the start of a run, replaced by its outcome at the end;
  ``hybridrec runs`` shows a ``running`` row older than the threshold as ``stale``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from pyspark.sql import SparkSession

from conftest import REPO_ROOT, TEST_SPARK
from hybridrec import cli, tables
from hybridrec.config import Config, load_config
from hybridrec.job import JobContext, job_parser, run_job
from hybridrec.run_dates import parse_run_date
from hybridrec.runs import RunRecord, run_state, start_run, utcnow

pytestmark = pytest.mark.spark

NIGHT = dt.date(2026, 11, 24)
READER_PYTHON = REPO_ROOT / ".venv-reader" / "bin" / "python"
TRACE_MARKS = ("Traceback", "\tat org.", "Py4JJavaError", "<unknown>", "java.")


def _conf(tmp_path: Path, warehouse: Path | None = None) -> Path:
    conf = tmp_path / "job.yaml"
    paths = {k: str(tmp_path / k) for k in ("features", "models", "raw", "checkpoints", "report")}
    paths["warehouse"] = str(warehouse or tmp_path / "warehouse")
    conf.write_text(yaml.safe_dump({"spark": dict(TEST_SPARK), "paths": paths}), encoding="utf-8")
    return conf


def _parser() -> argparse.ArgumentParser:
    parser = job_parser("test job")
    parser.add_argument("--run-date", type=parse_run_date, default=None)
    return parser


def _no_trace(text: str) -> None:
    for mark in TRACE_MARKS:
        assert mark not in text, f"a trace reached the user ({mark!r}):\n{text[:2000]}"


def _runs(spark: SparkSession, cfg: Config) -> list[dict[str, Any]]:
    rows = tables.read_table(spark, tables.table_ref(cfg, tables.RUNS)).orderBy("started_at").collect()
    return [r.asDict(recursive=True) for r in rows]


# ---- 9. paths.warehouse is a file or read-only -------------------------------------------------


def test_a_warehouse_that_is_a_file_stops_the_job_before_spark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = tmp_path / "warehouse"
    warehouse.write_text("not a folder")
    code = run_job("ingest", lambda ctx: None, ["--config", str(_conf(tmp_path, warehouse))], _parser())
    err = capsys.readouterr().err
    assert code == 2
    assert f"paths.warehouse = {warehouse} cannot be used: {warehouse} is a file" in err
    assert "--set paths.warehouse=" in err
    _no_trace(err)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody can write into: chmod for users, ``chattr +i`` for root (root ignores modes)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    undo: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(folder)]).returncode:
            pytest.skip("running as root without chattr +i: no way to make a folder read-only")
        undo = ["chattr", "-i", str(folder)]
    else:
        folder.chmod(0o555)
    try:
        yield folder
    finally:
        if undo:
            subprocess.run(undo, check=False)
        folder.chmod(0o755)


def test_a_read_only_warehouse_stops_the_job_with_the_path(
    tmp_path: Path, read_only: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = read_only / "warehouse"  # not there yet: the folder it would be created in is checked
    code = run_job("recommend", lambda ctx: None, ["--config", str(_conf(tmp_path, warehouse))], _parser())
    err = capsys.readouterr().err
    assert code == 2
    assert f"paths.warehouse = {warehouse} cannot be used: {read_only} cannot be written" in err
    _no_trace(err)


# ---- 10. a truncated _delta_log/*.json ---------------------------------------------------------


def _night_rows(night: dt.date, n: int = 3) -> list[tuple]:
    return [
        (night, f"u{i}", 1, f"p{i}", 1.0, "als", "popular", None, "c", None, "v1", "r", dt.datetime(2026, 1, 1))
        for i in range(n)
    ]


def _truncate_newest(table: Path) -> Path:
    log = sorted((table / "_delta_log").glob("*.json"))[-1]
    data = log.read_bytes()
    log.write_bytes(data[: len(data) // 2])
    return log


@pytest.fixture
def corrupt_recs(spark: SparkSession, tmp_path: Path) -> tuple[Path, Path]:
    """gold.recommendations with three commits, the newest cut in half; (config, broken file)."""
    conf = _conf(tmp_path)
    ref = tables.table_ref(load_config(conf), tables.RECOMMENDATIONS)
    for night in (NIGHT - dt.timedelta(days=1), NIGHT):
        df = spark.createDataFrame(_night_rows(night), tables.RECOMMENDATIONS.schema)
        tables.write_table(df, ref, mode="overwrite", replace_where=f"run_date = '{night}'")
    return conf, _truncate_newest(Path(ref.path))


def test_hybridrec_recs_names_the_corrupt_table_and_the_repair(
    corrupt_recs: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HYBRIDREC_DEBUG", raising=False)
    conf, broken = corrupt_recs
    code = cli.main(["recs", "--user", "u1", "--config", str(conf)])
    err = capsys.readouterr().err
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "gold.recommendations at" in err and "is corrupt" in err
    assert f"newest commit {broken}" in err
    assert "read version 1 with time travel (versionAsOf 1)" in err and "out of _delta_log" in err
    _no_trace(err)


def test_hybridrec_debug_shows_the_trace(
    corrupt_recs: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYBRIDREC_DEBUG", "1")
    code = cli.main(["recs", "--user", "u1", "--config", str(corrupt_recs[0])])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" in err and "is corrupt" in err


def test_the_advice_works_moving_the_broken_commit_leaves_the_last_good_version(
    spark: SparkSession, corrupt_recs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    conf, broken = corrupt_recs
    broken.rename(broken.with_suffix(".json.broken"))
    crc = broken.parent / f".{broken.name}.crc"
    if crc.exists():
        crc.unlink()
    assert cli.main(["recs", "--user", "u1", "--config", str(conf)]) == 0
    assert str(NIGHT - dt.timedelta(days=1)) in capsys.readouterr().out


def test_the_spark_free_reader_names_the_corrupt_table(
    corrupt_recs: tuple[Path, Path],
) -> None:
    if not READER_PYTHON.exists():
        pytest.skip(f"{READER_PYTHON} is missing: run `make reader-env`")
    conf, broken = corrupt_recs
    table = broken.parent.parent
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "lib")}
    env.pop("HYBRIDREC_DEBUG", None)
    proc = subprocess.run(
        [str(READER_PYTHON), "-m", "hybridrec.reader", "recs", "--table", str(table)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert f"gold.recommendations at {table} is corrupt" in proc.stderr
    assert f"newest commit {broken}" in proc.stderr and "versionAsOf 1" in proc.stderr
    _no_trace(proc.stderr)


# ---- 11. two runs of the same night at once ------------------------------------------------------


def _blocked_until(flag: Path, started: Path):  # a mapInPandas function
    def wait(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        started.touch()
        deadline = time.monotonic() + 120
        while not flag.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        yield from batches

    return wait


def test_a_run_that_loses_the_race_for_its_night_says_the_other_won(
    spark: SparkSession,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """This run's write of gold.als_candidates is held open while another run of the same night
    replaces the partition and commits; Delta then refuses this run's commit."""
    conf = _conf(tmp_path)
    cfg = load_config(conf)
    spec = tables.ALS_CANDIDATES
    ref = tables.table_ref(cfg, spec)
    where = f"run_date = '{NIGHT}'"

    def rows(version: str) -> Any:
        return spark.createDataFrame([(NIGHT, f"u{i}", 1, "p1", 1.0, version) for i in range(4)], spec.schema)

    tables.write_table(rows("v0"), ref, mode="overwrite", replace_where=where)
    flag, started = tmp_path / "other-run-committed", tmp_path / "this-run-writing"

    def other_run() -> None:
        deadline = time.monotonic() + 120
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        other = RunRecord(
            run_id="otherrun0001", job="recommend", started_at=utcnow(), run_date=NIGHT, host="node-7", pid=4242
        )
        start_run(spark, cfg, other)
        tables.write_table(rows("winner"), ref, mode="overwrite", replace_where=where)
        flag.touch()

    def main(ctx: JobContext) -> None:
        slow = rows("loser").coalesce(1)
        slow = slow.mapInPandas(_blocked_until(flag, started), slow.schema)
        thread = threading.Thread(target=other_run)
        thread.start()
        try:
            tables.write_table(slow, ref, mode="overwrite", replace_where=where)
        finally:
            thread.join()

    with caplog.at_level("INFO", logger="hybridrec"):
        code = run_job("recommend", main, ["--config", str(conf), "--run-date", str(NIGHT)], _parser())
    message = (
        "another recommend run for night 2026-11-24 (probably run otherrun0001 on node-7, pid 4242) "
        "committed gold.als_candidates first and won; its result stands and nothing needs doing"
    )
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert code == 1
    assert len(errors) == 1 and message in errors[0], errors
    _no_trace("\n".join(errors) + capsys.readouterr().err)
    # The table holds the winner's night, whole.
    night = tables.read_table(spark, ref).filter(f"run_date = '{NIGHT}'").toPandas()
    assert set(night["model_version"]) == {"winner"} and len(night) == 4
    mine = [r for r in _runs(spark, cfg) if r["run_id"] != "otherrun0001"]
    assert len(mine) == 1 and mine[0]["status"] == "failed" and message in mine[0]["message"]


# ---- 13. a running row from the start; killed runs show as stale ---------------------------------


def test_a_run_is_recorded_as_running_then_replaced_by_its_outcome(spark: SparkSession, tmp_path: Path) -> None:
    conf = _conf(tmp_path)
    cfg = load_config(conf)
    seen: list[dict[str, Any]] = []

    def main(ctx: JobContext) -> None:
        seen.extend(r for r in _runs(spark, cfg) if r["run_id"] == ctx.run_id)

    assert run_job("ingest", main, ["--config", str(conf)], _parser()) == 0
    assert len(seen) == 1
    assert seen[0]["status"] == "running" and seen[0]["ended_at"] is None
    assert seen[0]["host"] and seen[0]["pid"] == os.getpid()
    after = _runs(spark, cfg)
    assert len(after) == 1  # the same row, replaced
    assert after[0]["run_id"] == seen[0]["run_id"] and after[0]["status"] == "succeeded"
    assert after[0]["ended_at"] is not None and after[0]["host"] == seen[0]["host"]


def test_hybridrec_runs_marks_an_old_running_row_stale(
    spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = _conf(tmp_path)
    cfg = load_config(conf)
    killed = RunRecord(
        run_id="killed000001",
        job="recommend",
        run_date=NIGHT,
        started_at=utcnow() - dt.timedelta(days=2),
        host="node-3",
        pid=999,
    )
    start_run(spark, cfg, killed)
    assert run_job("ingest", lambda ctx: None, ["--config", str(conf)], _parser()) == 0
    assert cli.main(["runs", "--config", str(conf)]) == 0
    out = capsys.readouterr().out
    killed_line = next(line for line in out.splitlines() if "killed000001" in line)
    assert " stale " in killed_line and "node-3" in killed_line
    ingest_line = next(line for line in out.splitlines() if " ingest " in line)
    assert " succeeded " in ingest_line


def test_run_state_is_stale_only_for_old_running_rows() -> None:
    now, hour = dt.datetime(2026, 11, 24, 12), dt.timedelta(hours=1)
    assert run_state("running", now - 2 * hour, now, 12 * hour) == "running"
    assert run_state("running", now - 13 * hour, now, 12 * hour) == "stale"
    assert run_state("failed", now - 48 * hour, now, 12 * hour) == "failed"


def test_a_gold_runs_table_of_an_older_release_gains_host_and_pid(spark: SparkSession, tmp_path: Path) -> None:
    """Warehouses created before the running row keep working: the columns are added on first use."""
    conf = _conf(tmp_path)
    cfg = load_config(conf)
    ref = tables.table_ref(cfg, tables.RUNS)
    old_schema = tables.RUNS.schema.__class__([f for f in tables.RUNS.schema.fields if f.name not in ("host", "pid")])
    old = spark.createDataFrame(
        [
            (
                "old000000001",
                "ingest",
                None,
                "succeeded",
                dt.datetime(2026, 1, 1),
                dt.datetime(2026, 1, 1),
                0.0,
                {},
                {},
                None,
            )
        ],
        old_schema,
    )
    old.write.format("delta").save(ref.path)
    assert run_job("ingest", lambda ctx: None, ["--config", str(conf)], _parser()) == 0
    rows = {r["run_id"]: r for r in _runs(spark, cfg)}
    assert rows["old000000001"]["host"] is None and rows["old000000001"]["status"] == "succeeded"
    assert [r["status"] for k, r in rows.items() if k != "old000000001"] == ["succeeded"]
