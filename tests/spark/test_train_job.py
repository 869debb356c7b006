"""The train job entry point: clear message without features, one gold.runs row per run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from pyspark.sql import functions as F

import train as train_job
from hybridrec.job import run_job
from hybridrec.tables import RUNS, read_table, table_ref

REPO_ROOT = Path(__file__).resolve().parents[2]


def _config_file(tmp_path: Path) -> Path:
    cfg = {
        "spark": {"master": "local[2]", "shuffle_partitions": 4, "ui_enabled": False},
        "paths": {"warehouse": "wh", "features": "features", "models": "models"},
    }
    p = tmp_path / "test.yaml"
    p.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return p


def test_train_without_features_fails_clearly_and_records_the_run(spark, tmp_path, caplog) -> None:
    conf = _config_file(tmp_path)
    rc = run_job("train", train_job.main, ["--config", str(conf)], train_job.build_parser())
    assert rc == 1
    assert "no features yet" in caplog.text and "run jobs/preprocess.py first" in caplog.text
    from hybridrec.config import load_config

    runs = read_table(spark, table_ref(load_config(conf), RUNS))
    row = runs.where(F.col("job") == "train").collect()
    assert len(row) == 1 and row[0].status == "failed"
    assert "jobs/preprocess.py" in row[0].message and row[0].duration_s >= 0


def test_train_with_a_bad_override_exits_2(spark, tmp_path, capsys) -> None:
    conf = _config_file(tmp_path)
    rc = run_job("train", train_job.main, ["--config", str(conf), "--set", "train.epochs=x"], train_job.job_parser())
    assert rc == 2
    assert "train.epochs must be an integer" in capsys.readouterr().err


def test_spark_submit_runs_the_train_job(tmp_path) -> None:
    """The documented command, in a real spark-submit (its own JVM, local jars, loopback)."""
    conf = _config_file(tmp_path)
    spark_submit = Path(sys.executable).parent / "spark-submit"
    proc = subprocess.run(
        [str(spark_submit), "--master", "local[1]", str(REPO_ROOT / "jobs" / "train.py"), "--config", str(conf)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    out = proc.stdout + proc.stderr  # spark-submit relays the Python process's output on stdout
    assert proc.returncode == 1, out[-3000:]
    assert "no features yet" in out and "run jobs/preprocess.py first" in out
    assert "master=local[1]" in out  # spark-submit's --master wins over the config
