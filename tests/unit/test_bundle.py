"""The Databricks Asset Bundle, checked without a workspace (``tools.bundle_check``).

The bundle must load with its includes, resolve per target, pass the official ``databricks-bundles``
models, run its tasks in the intended order (training on the training weekday only), hand each job
script parameters its parser and the config loader accept, keep secrets and hosts out, and the
checker must fail on purpose-broken copies with a message naming the problem.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from hybridrec.config import load_config
from hybridrec.job import job_parser
from hybridrec.tables import RECOMMENDATIONS, table_ref
from tools.bundle_check.__main__ import main
from tools.bundle_check.checks import (
    check_bundle,
    check_parameters,
    check_secrets,
    parameter_problems,
    quartz_cron_problem,
)
from tools.bundle_check.loader import BundleError, Target, load_bundle, load_parser, resolve_target
from tools.bundle_check.plan import plan_run

REPO = Path(__file__).resolve().parents[2]
JOB = "hybridrec_nightly"
TASKS = {
    "ingest",
    "train_due",
    "catalog_check",
    "catalog_changed",
    "preprocess",
    "train",
    "recommend",
    "ranker_due",
    "train_ranker",
    "evaluate",
}
THURSDAY = dt.datetime(2026, 1, 1, 2, 0, tzinfo=dt.UTC)
SUNDAY = dt.datetime(2026, 1, 4, 2, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(REPO)


@pytest.fixture(scope="module")
def dev(bundle) -> Target:
    return resolve_target(bundle, "dev")


@pytest.fixture(scope="module")
def prod(bundle) -> Target:
    return resolve_target(bundle, "prod")


def test_the_bundle_passes_every_check() -> None:
    problems, notes = check_bundle(REPO)
    assert [str(p) for p in problems] == []
    # prod's identity is looked up, its alert address and webhook come from --var at deploy time
    assert any("service_principal" in n and "looked up" in n for n in notes)
    assert any("failure_webhook_id" in n for n in notes)


def test_every_target_resolves_to_the_intended_job(dev: Target, prod: Target) -> None:
    from databricks.bundles.jobs import Job

    for target in (dev, prod):
        job = Job.from_dict(target.jobs[JOB])  # the official models accept it
        assert {t.task_key for t in job.tasks} == TASKS
        assert job.max_concurrent_runs == 1
        assert not re.search(r"\$\{", str(target.jobs[JOB])), "every ${...} reference is resolved"
    clusters = {
        t.name: {c["job_cluster_key"]: c["new_cluster"] for c in t.jobs[JOB]["job_clusters"]} for t in (dev, prod)
    }
    assert dev.mode == "development" and prod.mode == "production"
    assert dev.jobs[JOB]["schedule"]["pause_status"] == "PAUSED"
    assert prod.jobs[JOB]["schedule"]["pause_status"] == "UNPAUSED"
    assert clusters["dev"]["cpu"]["num_workers"] < clusters["prod"]["cpu"]["num_workers"]
    assert clusters["dev"]["gpu"]["num_workers"] < clusters["prod"]["gpu"]["num_workers"]
    assert "gpu-ml" in clusters["prod"]["gpu"]["spark_version"] and "-ml-" in clusters["prod"]["cpu"]["spark_version"]
    assert prod.jobs[JOB]["run_as"] == {"service_principal_name": "<service_principal hybridrec-prod>"}
    assert prod.jobs[JOB]["permissions"][0]["level"] == "CAN_MANAGE_RUN"
    assert prod.jobs[JOB]["webhook_notifications"]["on_failure"][0]["id"] == "<failure_webhook_id>"
    assert "webhook_notifications" not in dev.jobs[JOB]
    # dev writes to its own schema and volumes; every task of a target reads the same ones
    assert "tables.schema_prefix=hybridrec_dev_" in _params(dev, "ingest")
    assert "paths.models=/Volumes/main/hybridrec/models" in _params(prod, "recommend")


def _params(target: Target, task_key: str) -> list[str]:
    task = next(t for t in target.jobs[JOB]["tasks"] if t["task_key"] == task_key)
    return [str(p) for p in task["spark_python_task"]["parameters"]]


UNCHANGED = {"catalog_check": {"retrain": 0, "new_classes": 0}}
CHANGED = {"catalog_check": {"retrain": 1, "new_classes": 3}}


def test_training_runs_on_the_training_weekday_on_a_catalog_change_and_when_forced(dev: Target) -> None:
    everything = ["ingest", "catalog_check", "preprocess", "train", "recommend", "evaluate", "train_ranker"]
    plan, state = plan_run(dev, JOB, THURSDAY, task_values=UNCHANGED)
    assert [p.key for p in plan] == ["ingest", "catalog_check", "recommend", "evaluate"]
    assert state["train_due"] == state["catalog_changed"] == state["ranker_due"] == "false"
    assert state["preprocess"] == state["train"] == state["train_ranker"] == "excluded"
    plan, state = plan_run(dev, JOB, SUNDAY, task_values=UNCHANGED)
    assert [p.key for p in plan] == everything and state["catalog_changed"] == "false"
    plan, state = plan_run(dev, JOB, THURSDAY, task_values=CHANGED)  # a new category: train tonight
    # the content models retrain; the ranker keeps its weekly day
    assert [p.key for p in plan] == [k for k in everything if k != "train_ranker"] and state["train_due"] == "false"
    plan, _ = plan_run(dev, JOB, SUNDAY, task_values=CHANGED)  # both: still one training
    assert [p.key for p in plan] == everything
    plan, _ = plan_run(dev, JOB, THURSDAY, {"train_from_weekday": "1"}, UNCHANGED)  # forced
    assert [p.key for p in plan] == everything
    plan, _ = plan_run(dev, JOB, SUNDAY, {"train_from_weekday": "8"}, UNCHANGED)  # only on a change
    assert "train" not in [p.key for p in plan]
    with pytest.raises(BundleError, match="no parameter 'train_weekday'"):
        plan_run(dev, JOB, SUNDAY, {"train_weekday": "1"}, UNCHANGED)
    with pytest.raises(BundleError, match=r"catalog_changed reads \{\{tasks.catalog_check.values.retrain\}\}"):
        plan_run(dev, JOB, THURSDAY)  # the notebook's value is missing


def test_each_script_gets_parameters_its_parser_and_the_config_accept(prod: Target) -> None:
    plan, _ = plan_run(prod, JOB, SUNDAY, {"run_date": "2026-01-03"}, UNCHANGED)
    for task in plan:
        assert task.argv[:2] == ["--config", str(REPO / "conf" / "databricks.yaml")]
        if task.notebook:  # the common job arguments, as a JSON list in its args parameter
            assert task.script == REPO / "notebooks" / "catalog_changed.py"
            assert parameter_problems(job_parser(), task.script.name, task.argv) == []
            continue
        assert task.script.is_file() and task.script.parent == REPO / "jobs"
        assert check_parameters(task.script, task.argv) == [], task.key
    by_key = {t.key: t.argv for t in plan}
    assert by_key["recommend"][-2:] == ["--run-date", "2026-01-03"]  # the job parameter, backfill-able
    assert "train.num_proc=2" in by_key["train"]  # Horovod processes = GPUs
    assert check_parameters(REPO / "jobs" / "recommend.py", [*by_key["recommend"][:-1], "2026-02-30"])
    assert check_parameters(REPO / "jobs" / "ingest.py", [*by_key["ingest"], "--run-date", "2026-01-03"])


def test_the_databricks_config_loads_with_unity_catalog_names_and_volumes() -> None:
    cfg = load_config(REPO / "conf" / "databricks.yaml")
    assert str(table_ref(cfg, RECOMMENDATIONS)) == "main.hybridrec_gold.recommendations"
    paths = [
        cfg.paths.features,
        cfg.paths.models,
        cfg.paths.checkpoints,
        cfg.paths.report,
        cfg.catalog.path,
        cfg.catalog.image_root,
        cfg.interactions.path,
    ]
    assert all(p.startswith("/Volumes/main/hybridrec/") for p in paths), paths
    assert cfg.train.mlflow_tracking_uri == cfg.als.mlflow_tracking_uri == "databricks"
    assert cfg.spark.local_ip is None and cfg.train.nics == []


@pytest.mark.parametrize(
    "expr",
    ["0 0 2 * * ?", "0 30 1 ? * SUN", "0 0/15 * * * ?", "0 0 3 L * ?", "0 0 4 ? * 6#3", "0 0 2 1-5,10 JAN-MAR ? 2027"],
)
def test_valid_quartz_cron(expr: str) -> None:
    assert quartz_cron_problem(expr) is None


@pytest.mark.parametrize(
    "expr, why",
    [
        ("0 2 * * *", "6 or 7 fields"),
        ("0 0 2 * * *", "exactly one"),
        ("0 0 2 ? * ?", "exactly one"),
        ("0 60 2 * * ?", "minutes"),
        ("0 0 2 * 13 ?", "month"),
        ("0 0 2 ? * 8", "day-of-week"),
        ("0 0/0 2 * * ?", "step"),
    ],
)
def test_invalid_quartz_cron(expr: str, why: str) -> None:
    assert why in (quartz_cron_problem(expr) or "")


def test_no_secrets_or_hosts_in_the_bundle_and_config(bundle) -> None:
    files = [*bundle.files, REPO / "conf" / "databricks.yaml"]
    assert {f.name for f in files} >= {"databricks.yml", "hybridrec_nightly.yml", "databricks.yaml"}
    assert check_secrets(files, REPO) == []


def test_the_secret_scan_finds_tokens_passwords_and_hosts(tmp_path: Path) -> None:
    leaky = tmp_path / "leaky.yml"
    leaky.write_text(
        "workspace:\n  host: https://dbc-1234.cloud.databricks.com\n"
        "token: dapi0123456789abcdef0123456789abcdef\n"
        "db_password: hunter2\n"
        "api_key: '{{secrets/hybridrec/api_key}}'\n"  # a secret scope reference is fine
        "client_secret: ${var.client_secret}\n",
        encoding="utf-8",
    )
    found = "\n".join(str(p) for p in check_secrets([leaky]))
    for what in ("workspace host", "URL", "personal access token", "db_password holds a literal value"):
        assert what in found
    assert "api_key" not in found and "client_secret" not in found


# ---- the checker fails on purpose-broken copies ----------------------------------------------

Edit = Callable[[Path], None]


def _replace(rel: str, old: str, new: str, count: int = 1) -> Edit:
    def edit(root: Path) -> None:
        path = root / rel
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new, count), encoding="utf-8")

    return edit


RES = "resources/hybridrec_nightly.yml"
BROKEN: dict[str, tuple[Edit, str]] = {
    "missing task key": (
        _replace(RES, "- task_key: preprocess\n          description:", "- description:"),
        "has no task_key",
    ),
    "key written twice": (
        _replace(RES, "timeout_seconds: 3600\n", "timeout_seconds: 3600\n          timeout_seconds: 60\n"),
        "duplicate key resources.jobs.hybridrec_nightly.tasks",
    ),
    "depends_on a task that does not exist": (
        _replace(
            RES,
            "- task_key: preprocess\n          job_cluster_key: gpu",
            "- task_key: preproces\n          job_cluster_key: gpu",
        ),
        "depends_on 'preproces', which is not a task",
    ),
    "wrong script path": (
        _replace(RES, "../jobs/train.py", "../jobs/trian.py"),
        "python_file ../jobs/trian.py does not exist",
    ),
    "unknown variable": (
        _replace(RES, "${var.work_dir}/features", "${var.wrk_dir}/features"),
        "unknown variable ${var.wrk_dir}",
    ),
    "misspelt field": (
        _replace(RES, "python_file: ../jobs/ingest.py", "pyton_file: ../jobs/ingest.py"),
        "Unexpected field 'pyton_file' for class SparkPythonTask",
    ),
    "wrong type": (_replace(RES, "timeout_seconds: 3600", "timeout_seconds: one hour"), "invalid literal for int()"),
    "argument the parser rejects": (
        _replace(RES, "- --run-date\n", "- --rundate\n"),
        "recommend.py: error: unrecognized arguments: --rundate",
    ),
    "config key the loader rejects": (
        _replace(RES, "tables.uc_catalog=${var.catalog}", "tables.uc_katalog=${var.catalog}"),
        "unknown config key tables.uc_katalog",
    ),
    "invalid cron": (_replace("databricks.yml", '"0 0 2 * * ?"', '"0 0 26 * * ?"'), "'26' is not a valid hours"),
    "unknown dynamic value": (
        _replace(RES, "{{job.parameters.run_date}}", "{{job.parameter.run_date}}"),
        "{{job.parameter.run_date}} is not a dynamic value reference",
    ),
    "more Horovod processes than GPUs": (
        _replace("databricks.yml", "train_processes: 1", "train_processes: 4"),
        "train.num_proc=4 but the cluster has 1 GPUs",
    ),
    "no retries": (_replace(RES, "max_retries: 1\n", "max_retries: 0\n"), "task train has no max_retries"),
    "two runs at once": (
        _replace(RES, "max_concurrent_runs: 1", "max_concurrent_runs: 2"),
        "max_concurrent_runs must be 1",
    ),
    "dev schedule running": (
        _replace("databricks.yml", "schedule_pause_status: PAUSED", "schedule_pause_status: UNPAUSED"),
        "development target must keep the schedule PAUSED",
    ),
    "wheel requiring the runtime's Spark": (
        _replace("setup.py", '"pyyaml>=6",', '"pyyaml>=6", "pyspark>=4.0",'),
        "the cluster's runtime provides pyspark",
    ),
    "task value from a script task": (
        _replace(RES, "{{tasks.catalog_check.values.retrain}}", "{{tasks.ingest.values.retrain}}"),
        "only notebooks can set task values",
    ),
    "notebook args the parser rejects": (
        _replace(RES, '"--set", "tables.uc_catalog=', '"--sett", "tables.uc_catalog='),
        "catalog_changed.py rejects its parameters",
    ),
    "notebook args not JSON": (
        _replace(
            RES,
            '"als.mlflow_experiment=${var.experiment_dir}/als"]',
            '"als.mlflow_experiment=${var.experiment_dir}/als"',
        ),
        "base_parameters.args is not JSON",
    ),
    "notebook without its header": (
        _replace("notebooks/catalog_changed.py", "# Databricks notebook source\n", ""),
        "is deployed as a file, not a notebook",
    ),
    "a token in the config": (
        _replace(
            "conf/databricks.yaml",
            "  ui_enabled: true\n",
            "  ui_enabled: true\n  conf: {spark.databricks.token: dapi0123456789abcdef0123456789abcdef}\n",
        ),
        "personal access token",
    ),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """A copy of the bundle (YAML, conf, job scripts, setup.py), checked clean before any edit."""
    root = tmp_path_factory.mktemp("bundle")
    for rel in ("databricks.yml", "resources", "conf", "jobs", "notebooks", "setup.py"):
        src = REPO / rel
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / rel)
    problems, _ = check_bundle(root, ["dev"])
    assert problems == [], problems
    return root, {str(p) for p in problems}


@pytest.mark.parametrize("name", list(BROKEN))
def test_a_broken_copy_fails_with_a_message_naming_the_problem(name: str, pristine, tmp_path: Path) -> None:
    source, before = pristine
    root = tmp_path / "bundle"
    shutil.copytree(source, root)
    edit, expected = BROKEN[name]
    edit(root)
    problems, _ = check_bundle(root, ["dev"])
    new = [str(p) for p in problems if str(p).replace(str(root), str(source)) not in before]
    assert any(expected in p for p in new), f"{name}: expected {expected!r} among {new}"


def test_the_command_line_reports_ok_or_the_problems(pristine, tmp_path: Path, capsys) -> None:
    source, before = pristine
    code = main(["--root", str(source), "--target", "dev"])
    out = capsys.readouterr()
    assert not before and code == 0 and f"job {JOB} (10 tasks): ok" in out.out
    broken = tmp_path / "broken"
    shutil.copytree(source, broken)
    BROKEN["wrong script path"][0](broken)
    assert main(["--root", str(broken), "--target", "dev"]) == 1
    assert "python_file ../jobs/trian.py does not exist" in capsys.readouterr().err
    assert main(["--root", str(tmp_path)]) == 1
    assert "databricks.yml not found" in capsys.readouterr().err


def test_a_job_script_without_build_parser_is_named(tmp_path: Path) -> None:
    script = tmp_path / "nightly_extra.py"
    script.write_text('"""A job that builds its parser inline."""\nimport sys\n', encoding="utf-8")
    with pytest.raises(BundleError, match="nightly_extra.py defines no build_parser"):
        load_parser(script)
    assert "defines no build_parser" in "\n".join(check_parameters(script, ["--config", "conf/local.yaml"]))
