"""The tiny catalog the end-to-end tests share: a generated demo catalog with simulated
interactions, small images and small models, run through the real job entry points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

import ingest as ingest_job  # jobs/ (pytest.ini pythonpath)
import preprocess as preprocess_job
from hybridrec.config import load_config
from hybridrec.demo.raw_files import write_demo_data
from hybridrec.job import run_job

REPO_ROOT = Path(__file__).resolve().parents[2]

IMAGE_DIM, TEXT_DIM = 16, 12
TINY_TRAIN = {
    "num_proc": 2,
    "threads_per_proc": 1,
    "epochs": 2,
    "batch_size": 16,
    "max_steps_per_epoch": 3,
    "early_stopping_patience": 0,
    "image_embedding_dim": IMAGE_DIM,
    "text_embedding_dim": TEXT_DIM,
    "token_embedding_dim": 8,
    "lstm_units": 8,
    "fusion_epochs": 2,
    "inference_batch_size": 64,
    "start_timeout": 300,
}


def write_tiny_config(tmp: Path, **sections: dict[str, Any]) -> Path:
    """conf/local.yaml with every path under ``tmp``, a tiny catalog and tiny models."""
    local = yaml.safe_load((REPO_ROOT / "conf" / "local.yaml").read_text(encoding="utf-8"))
    local["spark"].update({"master": "local[2]", "shuffle_partitions": 4, "ui_enabled": False})
    local["paths"] = {k: k for k in local["paths"]}
    local["catalog"].update({"path": "raw/catalog/products.csv", "image_root": "raw/catalog/images"})
    local["interactions"]["path"] = "raw/interactions/interactions.csv"
    local["demo"].update({"n_products": 240, "n_categories": 4, "n_users": 60, "image_size": 32})
    local["features"].update({"image_size": 32, "min_examples_per_class": 5})
    local["train"].update(TINY_TRAIN)
    for name, values in sections.items():
        local.setdefault(name, {}).update(values)
    conf = tmp / "tiny.yaml"
    conf.write_text(yaml.safe_dump(local), encoding="utf-8")
    return conf


def ingest_and_preprocess(conf: Path) -> None:
    """Demo data, then the ingest and preprocess jobs (in this process, on the shared session)."""
    write_demo_data(load_config(conf))
    assert run_job("ingest", ingest_job.main, ["--config", str(conf)], ingest_job.job_parser()) == 0
    assert run_job("preprocess", preprocess_job.main, ["--config", str(conf)], preprocess_job.job_parser()) == 0
