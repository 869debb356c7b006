"""A dry run of the bundle's nightly job on this machine: every task's exact command line from
resources/hybridrec_nightly.yml (the script's ``__main__`` with that argv, in this process on the
tests' SparkSession, as a Databricks task finds its session running), in the Jobs service's order.

The bundle is resolved for the dev target with local values for its variables (what
``databricks bundle deploy --var ...`` would set: no catalog, a local schema name, output folders
under a temporary directory) and the run is planned for 2026-01-01 (a Thursday) with the job
parameter ``train_from_weekday=8`` (no weekly training): training runs only because the notebook
task catalog_check sets the task value ``retrain=1`` (there is no model yet). The notebook runs
here with a stand-in ``dbutils`` (its ``args`` widget, a task-value store), and the plan is made
again with the values it set, as the Jobs service evaluates ``catalog_changed`` after it. Ingest,
catalog_check, preprocess, train, recommend and evaluate all run. The only change to a command
line is ``--config``: the tiny local config in place of conf/databricks.yaml. Each script then
gets the bundle's ``--set`` overrides and ``--run-date`` exactly as written, so the test also
shows that those overrides send every output where the bundle says (models, features, reports,
the table schema prefix).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import runpy
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from tiny_catalog import REPO_ROOT, write_tiny_config

from hybridrec.config import load_config
from hybridrec.demo.raw_files import write_demo_data
from tools.bundle_check.loader import load_bundle, resolve_target
from tools.bundle_check.plan import PlannedTask, plan_run

pytestmark = pytest.mark.e2e
JOB = "hybridrec_nightly"
NIGHT = "2026-01-01"  # the tiny catalog's simulated window ends here
START = dt.datetime(2026, 1, 1, 2, 0, tzinfo=dt.UTC)  # a Thursday: training only when forced
ORDER = ["ingest", "catalog_check", "preprocess", "train", "recommend", "evaluate"]
DATABRICKS_CONFIG = str(REPO_ROOT / "conf" / "databricks.yaml")


@dataclass
class Outcome:
    task: PlannedTask
    returncode: int | None  # None: not run (script missing, or an upstream task failed)
    output: str
    seconds: float = 0.0
    values: dict[str, object] | None = None  # the task values a notebook task set


@pytest.fixture(scope="module")
def dry_run(spark, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Outcome], dict[str, str]]:
    tmp = tmp_path_factory.mktemp("bundle_dry_run")
    conf = write_tiny_config(
        tmp,
        # the text model only: one Horovod run instead of two (tests/e2e/test_nightly.py trains both)
        train={"epochs": 1, "max_steps_per_epoch": 2, "models": ["text"]},
        als={"rank": 8, "max_iter": 3, "evaluate": False, "top_k": 20},
        recommend={
            "top_n": 5,
            "similar_top_m": 5,
            "als_candidates": 20,
            "content_candidates": 20,
            "cold_candidates": 5,
            "vacuum": False,
        },
        evaluate={"bootstrap_replicates": 20, "gallery_users": 1, "gallery_cold_products": 1, "screenshot": False},
    )
    write_demo_data(load_config(conf))
    local = {
        "catalog": "null",
        "schema": "local",
        "work_dir": str(tmp / "work"),
        "models_dir": str(tmp / "models"),
        "report_dir": str(tmp / "reports"),
        "experiment_dir": "dry-run",
    }
    target = resolve_target(load_bundle(REPO_ROOT), "dev", local)
    params = {"train_from_weekday": "8"}
    outcomes: dict[str, Outcome] = {}
    # ingest and catalog_check run whatever they find; the rest depends on the values the check sets
    first, _ = plan_run(target, JOB, START, params, {"catalog_check": {"retrain": 0}})
    assert [t.key for t in first[:2]] == ["ingest", "catalog_check"]
    failed = False
    for task in first[:2]:
        outcomes[task.key] = _run_task(spark, task, conf, skip="not run: upstream failed" if failed else None)
        failed = failed or outcomes[task.key].returncode != 0
    values = outcomes["catalog_check"].values or {"retrain": 0}
    plan, state = plan_run(target, JOB, START, params, {"catalog_check": values})
    assert plan[:2] == first[:2], "the first tasks' arguments do not depend on the check's values"
    for task in plan[2:]:
        outcomes[task.key] = _run_task(spark, task, conf, skip="not run: upstream failed" if failed else None)
        failed = failed or outcomes[task.key].returncode != 0
    return tmp, outcomes, state


def _run_task(spark, task: PlannedTask, conf: Path, skip: str | None = None) -> Outcome:
    """The task's arguments with the tiny local config in place of conf/databricks.yaml."""
    argv = list(task.argv)
    i = argv.index("--config") + 1
    assert argv[i] == DATABRICKS_CONFIG, f"{task.key} reads {argv[i]}, not conf/databricks.yaml"
    argv[i] = str(conf)
    task = PlannedTask(task.key, task.script, argv, task.notebook)
    if skip or not task.script.is_file():
        return Outcome(task, None, skip or "script missing")
    began = time.monotonic()
    values: dict[str, object] | None = None
    if task.notebook:
        dbutils = NotebookUtils({"args": json.dumps(argv)})
        code, output = _run_script(task.script, [], {"spark": spark, "dbutils": dbutils})
        values = dbutils.values
    else:
        code, output = _run_script(task.script, argv)
    outcome = Outcome(task, code, output, time.monotonic() - began, values)
    print(f"bundle dry run: {task.key} exit {code} in {outcome.seconds:.0f}s", flush=True)
    return outcome


class NotebookUtils:
    """The part of a notebook's ``dbutils`` a task uses: its parameters and the task-value store."""

    def __init__(self, parameters: dict[str, str]) -> None:
        self.values: dict[str, object] = {}
        self.widgets = SimpleNamespace(get=lambda name: parameters[name])
        self.jobs = SimpleNamespace(taskValues=SimpleNamespace(set=self._set))

    def _set(self, key: str, value: object) -> None:
        json.dumps(value)  # the Jobs service keeps JSON values only
        self.values[key] = value


def _run_script(script: Path, argv: list[str], notebook_globals: dict[str, object] | None = None) -> tuple[int, str]:
    """``python script argv...`` in this process: the script's own ``__main__`` block, on the tests'
    shared SparkSession (a Databricks task also finds its session running), exit code and output.
    A notebook runs with ``notebook_globals`` (its ``spark`` and ``dbutils``)."""
    out = io.StringIO()
    saved = sys.argv
    sys.argv = [str(script), *argv]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            runpy.run_path(str(script), init_globals=notebook_globals, run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception:  # noqa: BLE001 - a bug in the job: keep its traceback as the output
        out.write(traceback.format_exc())
        code = 1
    finally:
        sys.argv = saved
    return code, out.getvalue()


def test_the_plan_runs_the_whole_night_with_the_bundles_parameters(dry_run) -> None:
    _, outcomes, _ = dry_run
    assert list(outcomes) == ORDER
    for key in ("recommend", "evaluate"):
        assert outcomes[key].task.argv[-2:] == ["--run-date", NIGHT]
    assert "train.num_proc=1" in outcomes["train"].task.argv  # dev: one GPU worker, one process
    assert all("tables.schema_prefix=local_" in o.task.argv for o in outcomes.values())


def test_the_catalog_check_asks_for_training_when_there_is_no_model_yet(dry_run) -> None:
    _, outcomes, state = dry_run
    check = outcomes["catalog_check"]
    assert check.returncode == 0, check.output[-4000:]
    assert check.values == {"retrain": 1, "new_classes": 0}  # no model: retrain, nothing "new"
    assert "no trained model yet" in check.output
    assert state["train_due"] == "false" and state["catalog_changed"] == "true"


@pytest.mark.parametrize("key", ORDER)
def test_each_task_succeeds_from_its_bundle_command_line(dry_run, key: str) -> None:
    _, outcomes, _ = dry_run
    outcome = outcomes[key]
    command = " ".join([outcome.task.script.name, *outcome.task.argv])
    assert outcome.returncode == 0, f"{command}\n{outcome.output[-4000:]}"


def test_the_outputs_land_where_the_bundle_points_them(dry_run) -> None:
    tmp, outcomes, _ = dry_run
    if any(outcomes[k].returncode != 0 for k in ("ingest", "preprocess", "train", "recommend")):
        pytest.fail("an upstream task failed (see test_each_task_succeeds_from_its_bundle_command_line)")
    assert (tmp / "work" / "features" / "manifest.json").is_file()  # paths.features
    assert (tmp / "models" / "current.json").is_file()  # paths.models
    for table in ("bronze/products", "gold/recommendations", "gold/similar_items", "gold/runs"):
        assert (tmp / "warehouse" / f"local_{table}" / "_delta_log").is_dir(), table  # tables.schema_prefix
    assert f"recommend: night {NIGHT}:" in outcomes["recommend"].output
