"""The checks of the bundle (see the package docstring): every target, job and task of a resolved
bundle, its scripts' parsers and config, secrets in its files, the wheel's requirements.

Why a check and not a deploy: a wrong field, a script path or an argument the job's parser rejects
would otherwise surface at 2 a.m. on the cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import io
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tools.bundle_check.loader import (
    BUNDLE_FILE,
    DYNAMIC_REF,
    BundleError,
    Target,
    bundle_files,
    load_bundle,
    load_parser,
    notebook_args,
    resolve_target,
    script_path,
    task_file,
)
from tools.bundle_check.plan import dynamic_values

# Sample start of a run, for dynamic value references when a parser is checked (a Sunday).
SAMPLE_START = dt.datetime(2026, 1, 4, 2, 0, tzinfo=dt.UTC)
# The Jobs service retries after at least this long; shorter is a retry storm, not a back-off.
MIN_RETRY_INTERVAL_MS = 60_000
# A source file is deployed as a notebook only with this first line.
NOTEBOOK_HEADER = "# Databricks notebook source"

_START_TIME_ARGS = (
    "iso_date",
    "iso_datetime",
    "iso_weekday",
    "is_weekday",
    "timestamp_ms",
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
)
_TASK_REF_ATTRS = ("run_id", "result_state", "error_code", "execution_count", "run_page_url")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the bundle: where (target, job, key) and what to do about it."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


# ---------------------------------------------------------------------------------------------
# Checks


def check_bundle(
    root: str | Path = ".", targets: Sequence[str] | None = None, variables: Mapping[str, Any] | None = None
) -> tuple[list[Problem], list[str]]:
    """All problems of every (or the named) target, and notes worth printing (placeholders)."""
    try:
        bundle = load_bundle(root)
    except BundleError as exc:
        return [Problem(BUNDLE_FILE, str(exc))], []
    problems = list(check_secrets(bundle_files(bundle), bundle.root))
    for name, artifact in (bundle.config.get("artifacts") or {}).items():
        folder = bundle.root / str((artifact or {}).get("path", "."))
        if (artifact or {}).get("type") == "whl" and not any(
            (folder / f).is_file() for f in ("setup.py", "pyproject.toml")
        ):
            problems.append(
                Problem(
                    f"artifacts.{name}",
                    f"{_relative(folder, bundle.root)} has no setup.py or "
                    "pyproject.toml to build the wheel from: fix its path",
                )
            )
        elif (artifact or {}).get("type") == "whl" and (folder / "setup.py").is_file():
            problems += [Problem(f"artifacts.{name}", m) for m in wheel_requirement_problems(folder / "setup.py")]
    notes: list[str] = []
    names = list(targets or (bundle.config.get("targets") or {}))
    if not names:
        problems.append(Problem(BUNDLE_FILE, "no targets: add targets dev (mode: development) and prod"))
    for name in names:
        try:
            target = resolve_target(bundle, name, variables)
        except BundleError as exc:
            problems.append(Problem(f"target {name}", str(exc)))
            continue
        notes += [f"target {name}: {n}" for n in target.notes]
        problems += check_target(target)
    return problems, notes


# What a Databricks (ML) runtime provides: a wheel requiring one of these makes pip install a second
# copy over the runtime's (a pyspark wheel shadows the cluster's Spark and its Delta jars).
RUNTIME_PROVIDED = (
    "pyspark",
    "delta-spark",
    "tensorflow",
    "tensorflow-cpu",
    "tensorflow-gpu",
    "horovod",
    "petastorm",
    "mlflow",
    "mlflow-skinny",
    "databricks-connect",
)


def install_requires(setup_py: Path) -> list[str]:
    """The literal ``install_requires`` list of ``setup(...)`` in ``setup_py`` (read, not run)."""
    import ast

    tree = ast.parse(setup_py.read_text(encoding="utf-8"), filename=str(setup_py))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            for kw in node.keywords:
                if kw.arg == "install_requires":
                    try:
                        return [str(r) for r in ast.literal_eval(kw.value)]
                    except ValueError:
                        raise BundleError(f"{setup_py.name}: install_requires must be a literal list") from None
    return []


def wheel_requirement_problems(setup_py: Path) -> list[str]:
    """Requirements of the bundle's wheel that the cluster's runtime already provides."""
    problems = []
    for req in install_requires(setup_py):
        name = re.split(r"[\s<>=!~;\[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")
        if name in RUNTIME_PROVIDED:
            problems.append(
                f"{setup_py.name} install_requires {req!r}: the cluster's runtime provides {name}, "
                "and installing the wheel would replace it; move it to an extra (spark, cpu)"
            )
    return problems


def check_target(target: Target) -> list[Problem]:
    """Every check of the module docstring, for each job of one resolved target."""
    problems: list[Problem] = []
    if not target.jobs:
        problems.append(Problem(f"target {target.name}", "the bundle defines no job under resources.jobs"))
    for key, job in target.jobs.items():
        where = f"target {target.name}, job {key}"
        problems += [Problem(where, m) for m in _check_model(job)]
        problems += [Problem(where, m) for m in _check_graph(job)]
        problems += [Problem(where, m) for m in _check_operations(job, target.mode)]
        problems += [Problem(where, m) for m in _check_dynamic_refs(job)]
        problems += [Problem(where, m) for m in _check_scripts(target, key, job)]
        problems += [Problem(where, m) for m in _check_gpu(target, job)]
    return problems


def _check_model(job: dict[str, Any]) -> list[str]:
    """The official models of databricks-bundles; on failure, name the task or cluster at fault."""
    try:
        from databricks.bundles.jobs import Job, JobCluster, Task
    except ImportError:
        return ["databricks-bundles is not installed: pip install databricks-bundles==1.22.1"]
    try:
        Job.from_dict(copy.deepcopy(job))  # type: ignore[arg-type]
        return []
    except (ValueError, TypeError) as exc:
        whole = str(exc)
    found = []
    for kind, ident, cls in (("tasks", "task_key", Task), ("job_clusters", "job_cluster_key", JobCluster)):
        for i, item in enumerate(job.get(kind) or []):
            try:
                cls.from_dict(copy.deepcopy(item))
            except (ValueError, TypeError) as exc:
                found.append(f"{kind}[{item.get(ident) or i}]: {exc}")
    return found or [f"Job.from_dict: {whole}"]


def _check_graph(job: dict[str, Any]) -> list[str]:
    problems = []
    tasks = job.get("tasks") or []
    keys = [t.get("task_key") for t in tasks]
    for i, task in enumerate(tasks):
        if not task.get("task_key"):
            problems.append(f"tasks[{i}] has no task_key: every task needs a unique task_key")
    for dup in sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(f"task key {dup!r} is used {keys.count(dup)} times: task keys must be unique")
    by_key = {t.get("task_key"): t for t in tasks}
    clusters = {c.get("job_cluster_key") for c in job.get("job_clusters") or []}
    used: set[str] = set()
    for task in tasks:
        key = task.get("task_key")
        for dep in task.get("depends_on") or []:
            name = dep.get("task_key")
            if name not in by_key:
                problems.append(
                    f"task {key} depends_on {name!r}, which is not a task of this job "
                    f"(tasks: {', '.join(str(k) for k in keys if k)})"
                )
            elif dep.get("outcome") is not None:
                if "condition_task" not in by_key[name]:
                    problems.append(
                        f"task {key} depends on outcome {dep['outcome']!r} of {name}, which is not a condition task"
                    )
                elif str(dep["outcome"]) not in ("true", "false"):
                    problems.append(f'task {key}: outcome of condition {name} must be "true" or "false"')
        if "condition_task" in task:
            continue
        cluster = task.get("job_cluster_key")
        if cluster is not None:
            used.add(cluster)
            if cluster not in clusters:
                problems.append(f"task {key} runs on job cluster {cluster!r}, which job_clusters does not define")
        elif not any(task.get(k) for k in ("existing_cluster_id", "new_cluster", "environment_key")):
            problems.append(f"task {key} has no compute: set job_cluster_key")
    for cluster in sorted(clusters - used):
        problems.append(f"job cluster {cluster} is used by no task: remove it or use it")
    cycle = _find_cycle({t.get("task_key"): [d.get("task_key") for d in t.get("depends_on") or []] for t in tasks})
    if cycle:
        problems.append("depends_on forms a cycle: " + " -> ".join(cycle))
    return problems


def _find_cycle(graph: Mapping[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep in graph and dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return None


def _check_operations(job: dict[str, Any], mode: str | None) -> list[str]:
    """What on-call relies on: one run at a time, schedule, failure alerts, retries, timeouts."""
    problems = []
    if job.get("max_concurrent_runs") != 1:
        problems.append("max_concurrent_runs must be 1: two nights writing the same tables would race")
    schedule = job.get("schedule")
    if not schedule:
        problems.append("no schedule: add schedule.quartz_cron_expression and timezone_id")
    else:
        problem = quartz_cron_problem(str(schedule.get("quartz_cron_expression", "")))
        if problem:
            problems.append(f"schedule.quartz_cron_expression {schedule.get('quartz_cron_expression')!r}: {problem}")
        try:
            ZoneInfo(str(schedule.get("timezone_id", "")))
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(
                f"schedule.timezone_id {schedule.get('timezone_id')!r} is not a time zone (e.g. UTC, Europe/Berlin)"
            )
        pause = schedule.get("pause_status", "UNPAUSED")
        if mode == "development" and pause != "PAUSED":
            problems.append("a development target must keep the schedule PAUSED")
        if mode == "production" and pause != "UNPAUSED":
            problems.append("the production target's schedule is paused: set pause_status UNPAUSED")
    if mode == "production":
        run_as = job.get("run_as") or {}
        if not any(str(v).strip() for v in run_as.values()):
            problems.append("production runs need run_as (a service principal), not the deployer's identity")
        if not job.get("permissions"):
            problems.append("production job has no permissions: give the on-call group CAN_MANAGE_RUN")
    emails = (job.get("email_notifications") or {}).get("on_failure") or []
    hooks = (job.get("webhook_notifications") or {}).get("on_failure") or []
    if not emails and not hooks:
        problems.append(
            "nobody hears of a failure: set email_notifications.on_failure or webhook_notifications.on_failure"
        )
    if mode == "production" and not hooks:
        problems.append("production failures should also reach the on-call webhook (webhook_notifications.on_failure)")
    for task in job.get("tasks") or []:
        if "condition_task" in task:
            continue
        key = task.get("task_key")
        if not _number(task.get("timeout_seconds")) > 0:
            problems.append(
                f"task {key} has no timeout_seconds: a hung task would hold the cluster until the job's timeout"
            )
        if not _number(task.get("max_retries")) >= 1:
            problems.append(f"task {key} has no max_retries: a transient failure fails the night")
        elif _number(task.get("min_retry_interval_millis")) < MIN_RETRY_INTERVAL_MS:
            problems.append(
                f"task {key}: min_retry_interval_millis must be at least {MIN_RETRY_INTERVAL_MS} (back-off)"
            )
    return problems


def _number(value: Any) -> float:
    """A numeric setting, or 0 when absent or not a number (the model check reports the type)."""
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def quartz_cron_problem(expr: str) -> str | None:
    """None for a valid Quartz cron expression (sec min hour dom month dow [year]), else why not."""
    fields = expr.split()
    if len(fields) not in (6, 7):
        return f"Quartz cron has 6 or 7 fields (sec min hour day-of-month month day-of-week [year]), got {len(fields)}"
    names = ("seconds", "minutes", "hours", "day-of-month", "month", "day-of-week", "year")
    ranges = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (1, 7), (1970, 2199))
    months = {m: i + 1 for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
    days = {d: i + 1 for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
    for i, text in enumerate(fields):
        lo, hi = ranges[i]
        words = months if i == 4 else days if i == 5 else {}
        for part in text.upper().split(","):
            if part == "?":
                if i not in (3, 5):
                    return f"'?' is allowed in day-of-month and day-of-week only, not in {names[i]}"
                continue
            if i == 3 and re.fullmatch(r"L(-\d{1,2})?|LW|\d{1,2}W", part):
                continue
            if i == 5 and re.fullmatch(r"([1-7]|[A-Z]{3})(L|#[1-5])|L", part):
                continue
            base, _, step = part.partition("/")
            if step and not (step.isdigit() and int(step) > 0):
                return f"step {step!r} in {names[i]} must be a positive number"
            bounds = [base] if base == "*" else base.split("-")
            for bound in bounds:
                if bound == "*":
                    continue
                value = words.get(bound) if bound in words else int(bound) if bound.isdigit() else None
                if value is None or not lo <= value <= hi:
                    return f"{bound!r} is not a valid {names[i]} ({lo}-{hi}{' or names' if words else ''})"
    if (fields[3] == "?") == (fields[5] == "?"):
        return "exactly one of day-of-month and day-of-week must be '?'"
    return None


def _dynamic_refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _dynamic_refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _dynamic_refs(v)
    elif isinstance(value, str):
        yield from (m.group(1) for m in DYNAMIC_REF.finditer(value))


def _check_dynamic_refs(job: dict[str, Any]) -> list[str]:
    params = {str(p.get("name")) for p in job.get("parameters") or []}
    tasks = {str(t.get("task_key")) for t in job.get("tasks") or []}
    fixed = {
        "job.id",
        "job.name",
        "job.run_id",
        "job.repair_count",
        "job.trigger.type",
        "job.trigger.file_arrival.location",
        "task.name",
        "task.run_id",
        "task.execution_count",
        "task.notebook_path",
        "workspace.id",
        "workspace.url",
    }
    problems = []
    by_key = {str(t.get("task_key")): t for t in job.get("tasks") or []}
    for ref in sorted(set(_dynamic_refs(job))):
        parts = ref.split(".")
        if (
            parts[0] == "tasks"
            and len(parts) >= 4
            and parts[2] == "values"
            and parts[1] in by_key
            and "notebook_task" not in by_key[parts[1]]
        ):
            problems.append(
                f"{{{{{ref}}}}}: task {parts[1]} is not a notebook task, and only notebooks can set "
                "task values (dbutils.jobs.taskValues.set): the condition would never see it"
            )
        ok = (
            ref in fixed
            or (parts[:2] == ["job", "parameters"] and len(parts) == 3 and parts[2] in params)
            or (parts[:2] in (["job", "start_time"], ["job", "trigger"]) and parts[-1] in _START_TIME_ARGS)
            or (
                parts[0] == "tasks"
                and len(parts) >= 3
                and parts[1] in tasks
                and (parts[2] in _TASK_REF_ATTRS or parts[2] == "values")
            )
            or re.fullmatch(r"secrets/[\w.\-]+/[\w.\-]+", ref) is not None
        )
        if not ok:
            hint = (
                f" (job parameters: {', '.join(sorted(params)) or 'none'})" if ref.startswith("job.parameters") else ""
            )
            problems.append(f"{{{{{ref}}}}} is not a dynamic value reference the Jobs service knows{hint}")
    return problems


def _check_scripts(target: Target, job_key: str, job: dict[str, Any]) -> list[str]:
    problems = []
    root = target.bundle.root
    wheel_dirs = {
        (root / str(a.get("path", "."))).resolve() / "dist"
        for a in (target.bundle.config.get("artifacts") or {}).values()
        if a.get("type") == "whl"
    }
    origin_dir = target.bundle.origins.get(job_key, root / BUNDLE_FILE).parent
    params_by_task = {}
    for task in job.get("tasks") or []:
        found = task_file(task)
        if not found or not found[1]:
            continue  # not a script or notebook task, or the model check names the missing field
        field_name, written = found
        key = task.get("task_key")
        script = script_path(target, job_key, written)
        wheels = [lib["whl"] for lib in task.get("libraries") or [] if isinstance(lib, dict) and lib.get("whl")]
        if not any((origin_dir / str(w)).resolve().parent in wheel_dirs for w in wheels):
            problems.append(
                f"task {key} does not install the bundle's wheel: add libraries: [whl: <artifact path>/dist/*.whl]"
            )
        if not script.is_file():
            problems.append(
                f"task {key}: {field_name} {written} does not exist "
                f"(looked for {_relative(script, root)}): fix the path, relative to "
                f"{_relative(origin_dir, root) or '.'}/"
            )
            continue
        try:
            script.relative_to(root)
        except ValueError:
            problems.append(f"task {key}: {field_name} {script} is outside the bundle, so it is not deployed")
            continue
        if field_name == "notebook_path":
            if not script.read_text(encoding="utf-8").startswith(NOTEBOOK_HEADER):
                problems.append(
                    f"task {key}: {written} does not start with {NOTEBOOK_HEADER!r}, so it is "
                    "deployed as a file, not a notebook"
                )
            try:
                raw = notebook_args(task)
            except BundleError as exc:
                problems.append(str(exc))
                continue
            argv = [target.to_local(DYNAMIC_REF.sub(lambda m: _sample(job, m.group(1)), a)) for a in raw]
            params_by_task[key] = argv
            from hybridrec.job import job_parser

            problems += [f"task {key}: {m}" for m in parameter_problems(job_parser(), script.name, argv)]
            continue
        argv = [
            target.to_local(DYNAMIC_REF.sub(lambda m: _sample(job, m.group(1)), str(a)))
            for a in task["spark_python_task"].get("parameters") or []
        ]
        params_by_task[key] = argv
        problems += [f"task {key}: {m}" for m in check_parameters(script, argv)]
    problems += _check_common_overrides(params_by_task)
    return problems


def _sample(job: dict[str, Any], ref: str) -> str:
    params = {str(p.get("name")): str(p.get("default", "")) for p in job.get("parameters") or []}
    return dynamic_values(SAMPLE_START, params).get(ref, "1")


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def check_parameters(script: Path, argv: Sequence[str]) -> list[str]:
    """Problems of ``argv`` for ``script``: its parser must accept it and its config must load."""
    try:
        parser = load_parser(script)
    except Exception as exc:  # noqa: BLE001 - any import failure is the finding
        return [f"cannot import {script.name} to get its parser: {type(exc).__name__}: {exc}"]
    return parameter_problems(parser, script.name, argv)


def parameter_problems(parser: argparse.ArgumentParser, name: str, argv: Sequence[str]) -> list[str]:
    """Problems of ``argv`` for ``parser`` (the program ``name``): parsed, and its config loads."""
    from hybridrec.config import ConfigError, load_config

    parser.prog = name
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = parser.parse_args(list(argv))
    except SystemExit:
        message = err.getvalue().strip().splitlines()
        return [f"{name} rejects its parameters: {message[-1] if message else 'argparse exited'}"]
    config = getattr(args, "config", None)
    if config is None:
        return [f"{name} gets no --config: it would look for conf/local.yaml on the cluster"]
    try:
        load_config(config, getattr(args, "overrides", []))
    except ConfigError as exc:
        return [f"config {config} with the task's --set overrides does not load: {exc}"]
    return []


def _check_common_overrides(params: Mapping[str, list[str]]) -> list[str]:
    """Every script reads the same config, tables and paths: one task pointing elsewhere is a bug."""

    def shared(argv: list[str]) -> tuple[str, ...]:
        pairs = [f"{a} {b}" for a, b in zip(argv, argv[1:]) if a in ("--config", "--set")]
        return tuple(
            sorted(p for p in pairs if p.startswith("--config") or p.split(" ", 1)[1].startswith(("tables.", "paths.")))
        )

    if len({shared(argv) for argv in params.values()}) <= 1:
        return []
    first, *rest = params.items()
    odd = [k for k, argv in rest if shared(argv) != shared(first[1])]
    return [
        f"tasks {', '.join(odd)} pass other --config / tables.* / paths.* values than task {first[0]}: "
        "every task must read the same config, tables and volumes"
    ]


def _check_gpu(target: Target, job: dict[str, Any]) -> list[str]:
    """The training cluster runs a GPU ML runtime and starts one Horovod process per GPU."""
    problems = []
    clusters = {c.get("job_cluster_key"): c.get("new_cluster") or {} for c in job.get("job_clusters") or []}
    gpus_per_worker = target.variables.get("gpus_per_worker")
    for task in job.get("tasks") or []:
        spt = task.get("spark_python_task") or {}
        if not str(spt.get("python_file", "")).endswith("train.py"):
            continue
        cluster = clusters.get(task.get("job_cluster_key"), {})
        if "gpu-ml" not in str(cluster.get("spark_version", "")):
            problems.append(
                f"task {task.get('task_key')} trains on {cluster.get('spark_version')!r}: use a GPU ML "
                f"runtime (…-gpu-ml-…)"
            )
        params = [str(p) for p in spt.get("parameters") or []]
        procs = [p.split("=", 1)[1] for p in params if p.startswith("train.num_proc=")]
        if not procs:
            problems.append(
                f"task {task.get('task_key')} does not set train.num_proc: Horovod needs one process per GPU"
            )
        elif gpus_per_worker is not None:
            want = int(_number(cluster.get("num_workers")) * _number(gpus_per_worker))
            if procs[-1] != str(want):
                problems.append(
                    f"task {task.get('task_key')}: train.num_proc={procs[-1]} but the cluster has "
                    f"{want} GPUs ({cluster.get('num_workers')} workers x {gpus_per_worker})"
                )
    return problems


# ---------------------------------------------------------------------------------------------
# Secrets

_SECRET_PATTERNS = (
    (re.compile(r"\bdapi[0-9a-f]{32}(-\d)?\b"), "a Databricks personal access token"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"), "a GitHub token"),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "a Slack token"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\beyJ[\w-]{10,}\.[\w-]{10,}\.[\w-]{10,}"), "a JSON web token"),
    (re.compile(r"AccountKey=|SharedAccessSignature=|\bsig=[\w%]{20,}"), "a storage account key or SAS token"),
    (
        re.compile(
            r"\b[\w.-]+\.(cloud\.databricks\.com|azuredatabricks\.net|gcp\.databricks\.com|databricks\.azure\.cn)\b"
        ),
        "a workspace host",
    ),
    (
        re.compile(r"\b(https?|wss?|jdbc:[a-z]+|s3a?|abfss?|wasbs?|gs)://[^\s\"']+", re.IGNORECASE),
        "a URL (hosts and webhooks belong in the CLI profile or a notification destination)",
    ),
    (re.compile(r"^\s*host\s*:\s*\S", re.MULTILINE), "a workspace host"),
)
_SECRET_KEY = re.compile(
    r"^\s*-?\s*[\"']?([\w.-]*(password|passwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret|credential)[\w.-]*)"
    r"[\"']?\s*[:=]\s*(.+?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_SAFE_VALUE = re.compile(r"^[\"']?(\$\{var\.[\w.-]+\}|\{\{secrets/[\w.-]+/[\w.-]+\}\}|null|~|\"\"|'')?[\"']?$")


def check_secrets(files: Sequence[Path], root: Path | None = None) -> list[Problem]:
    """Tokens, passwords, keys and hosts written into the bundle or its config files."""
    problems = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        name = _relative(path, root) if root else path.name
        for pattern, what in _SECRET_PATTERNS:
            for m in pattern.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                problems.append(
                    Problem(
                        f"{name}:{line}",
                        f"looks like {what}: keep it out of the repository "
                        "(secret scope {{secrets/<scope>/<key>}}, the job's identity, or --var)",
                    )
                )
        for m in _SECRET_KEY.finditer(text):
            value = m.group(3).split(" #")[0].strip()
            if value and not _SAFE_VALUE.match(value):
                line = text.count("\n", 0, m.start()) + 1
                problems.append(
                    Problem(
                        f"{name}:{line}",
                        f"{m.group(1)} holds a literal value: read it from a "
                        "secret scope ({{secrets/<scope>/<key>}}) instead",
                    )
                )
    return problems


# ---------------------------------------------------------------------------------------------
