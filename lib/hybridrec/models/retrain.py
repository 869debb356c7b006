"""Whether the catalog changed in a way only training can follow: the nightly job's early trigger.

New products need no training: the nightly job embeds them with the current models
(``recommend.embed_new_products``). A new *category* does: once it has
``features.min_examples_per_class`` products it becomes a class of the next label map, and the
current classifiers (and the embeddings they learnt to separate) know nothing of it. So the check
compares the classes the catalog would give today (the same rule preprocess applies,
``features.labels.build_label_map``) with the classes of the current model version; the
Databricks job trains when they differ or when there is no model yet, besides its weekly training.

On Databricks the check is the notebook task ``catalog_check`` (notebooks/catalog_changed.py calls
``run_notebook``): only a notebook can set the task values a condition task reads
(``{{tasks.catalog_check.values.retrain}}``). It gets the same ``--config`` / ``--set`` arguments
as the script tasks, as a JSON list in its ``args`` widget.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from hybridrec.config import Config, load_config
from hybridrec.errors import MissingInputError
from hybridrec.features.labels import build_label_map, catalog_counts
from hybridrec.job import job_parser
from hybridrec.models.training import current_version
from hybridrec.tables import PRODUCTS, require_table

log = logging.getLogger(__name__)
ARGS_WIDGET = "args"  # the notebook task's parameter: the common job arguments as a JSON list


@dataclass(frozen=True)
class CatalogChange:
    """The catalog's classes against the current model's (``model_version`` None: no model yet)."""

    model_version: str | None
    catalog_classes: tuple[str, ...]
    new_classes: tuple[str, ...]

    @property
    def retrain(self) -> bool:
        return self.model_version is None or bool(self.new_classes)

    def task_values(self) -> dict[str, int]:
        """What the catalog_check task sets for the job's ``catalog_changed`` condition."""
        return {"retrain": int(self.retrain), "new_classes": len(self.new_classes)}

    def describe(self) -> str:
        if self.model_version is None:
            return f"no trained model yet: train ({len(self.catalog_classes)} classes in the catalog)"
        if not self.new_classes:
            return f"every class of the catalog is known to model {self.model_version}"
        shown = ", ".join(self.new_classes[:5]) + (" ..." if len(self.new_classes) > 5 else "")
        return f"{len(self.new_classes)} classes new since model {self.model_version} ({shown}): retrain"


def model_classes(cfg: Config, version: str) -> set[str]:
    """The classes of a trained model version (its ``labels.json``)."""
    path = Path(cfg.paths.models) / version / "labels.json"
    if not path.is_file():
        raise MissingInputError(f"model version {version} has no labels.json at {path}: re-run jobs/train.py")
    return set(json.loads(path.read_text(encoding="utf-8"))["classes"])


def catalog_change(spark: SparkSession, cfg: Config) -> CatalogChange:
    """Compare bronze.products' classes (preprocess's rule) with the current model's."""
    products = require_table(spark, cfg, PRODUCTS, "jobs/ingest.py").select("category", "image_path")
    classes = tuple(build_label_map(catalog_counts(products), cfg.features.min_examples_per_class).classes)
    try:
        version: str | None = current_version(cfg)
    except MissingInputError:
        version = None
    new: tuple[str, ...] = ()
    if version is not None:
        known = model_classes(cfg, version)
        new = tuple(c for c in classes if c not in known)
    change = CatalogChange(version, classes, new)
    log.info("catalog change: %s", change.describe())
    return change


def run_notebook(spark: SparkSession, dbutils: Any) -> CatalogChange:
    """The body of notebooks/catalog_changed.py: read the ``args`` widget (``["--config", ...,
    "--set", ...]``), compare, set the task values ``retrain`` and ``new_classes``."""
    raw = dbutils.widgets.get(ARGS_WIDGET)
    try:
        argv = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the {ARGS_WIDGET} parameter must be a JSON list of job arguments, got {raw!r}") from exc
    args = job_parser(__doc__).parse_args([str(a) for a in argv])
    change = catalog_change(spark, load_config(args.config, args.overrides))
    for key, value in change.task_values().items():
        dbutils.jobs.taskValues.set(key=key, value=value)
    print(f"catalog check: {change.describe()}; task values {change.task_values()}", flush=True)
    return change
