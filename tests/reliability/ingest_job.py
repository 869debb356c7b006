"""Run ``jobs/ingest.py`` on files written for one test: the reliability tests' common harness."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import yaml

from conftest import REPO_ROOT, TEST_SPARK
from hybridrec.config import load_config
from hybridrec.job import run_job
from hybridrec.tables import RUNS, read_table, table_ref


def run_ingest(
    spark: Any,
    tmp_path: Path,
    files: dict[str, bytes],
    catalog: dict[str, Any],
    interactions: dict[str, Any] | None = None,
) -> tuple[int, dict[str, Any], Any]:
    """Write ``files`` under tmp_path/raw (an empty raw/images is the image root unless ``catalog``
    names one), run the ingest job: (exit code, its gold.runs row, the config)."""
    raw = tmp_path / "raw"
    (raw / "images").mkdir(parents=True)
    for name, data in files.items():
        (raw / name).parent.mkdir(parents=True, exist_ok=True)
        (raw / name).write_bytes(data)
    conf = tmp_path / "job.yaml"
    conf.write_text(
        yaml.safe_dump(
            {
                "spark": dict(TEST_SPARK),
                "paths": {"warehouse": str(tmp_path / "warehouse")},
                "catalog": {"image_root": str(raw / "images"), **catalog, "path": str(raw / catalog["path"])},
                "interactions": (
                    {**interactions, "path": str(raw / interactions["path"])} if interactions else {"path": None}
                ),
            }
        ),
        encoding="utf-8",
    )
    spec = importlib.util.spec_from_file_location("reliability_ingest_job", REPO_ROOT / "jobs" / "ingest.py")
    job = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(job)
    code = run_job("ingest", job.main, ["--config", str(conf)], job.job_parser())
    cfg = load_config(conf)
    rows = read_table(spark, table_ref(cfg, RUNS)).collect()
    assert len(rows) == 1
    return code, rows[0].asDict(recursive=True), cfg
