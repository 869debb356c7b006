"""Check the Databricks Asset Bundle (databricks.yml + resources/*.yml) without a workspace.

Why: ``databricks bundle validate`` needs a workspace and a login, and a wrong field, a script
path or an argument the job's parser rejects would otherwise surface at 2 a.m. on the cluster.
This module reads the bundle like the CLI does (includes, per-target variables and overrides,
paths relative to the file that names them), then checks every job of every target:

- the job against the official ``databricks-bundles`` models (``Job.from_dict`` rejects unknown
  fields and wrong types), every task key unique, every ``depends_on`` a real task, no cycle;
- every script and notebook path and every job cluster exists (a notebook source starts with the
  notebook header), every such task installs the bundle's wheel, and
  the wheel requires nothing the cluster's runtime provides (pip would replace the runtime's Spark);
- every ``{{...}}`` dynamic value reference is one the Jobs service knows, the schedule a valid
  Quartz cron in a real time zone, development targets paused and production ones scheduled,
  run as an identity, with permissions;
- retries with back-off, timeouts, failure notifications and ``max_concurrent_runs: 1``;
- Horovod processes = GPUs on the training cluster;
- the parameters each script receives are accepted by its own argument parser (``build_parser()``)
  and by the config loader (``--config`` + ``--set`` overrides); a notebook task's ``args`` (a JSON
  list) by the common job parser; a condition reads task values only from notebook tasks (only
  notebooks can set them).

``plan_run`` follows a job's DAG the way the Jobs service does (condition tasks, outcomes,
Excluded tasks, task values) and returns each script and notebook task's exact arguments: the
end-to-end test runs them.

    python -m hybridrec.bundle_check [--root .] [--target dev] [--var name=value ...]
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import hashlib
import importlib.util
import io
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from hybridrec.errors import HybridrecError
from hybridrec.strict_yaml import DuplicateKeyError, safe_load_unique

BUNDLE_FILE = "databricks.yml"
# What ${workspace.*} resolves to here: a deployment needs a login, a check does not.
PLACEHOLDER_USER = "someone@example.com"
# Sample start of a run, for dynamic value references when a parser is checked (a Sunday).
SAMPLE_START = dt.datetime(2026, 1, 4, 2, 0, tzinfo=dt.timezone.utc)
# The Jobs service retries after at least this long; shorter is a retry storm, not a back-off.
MIN_RETRY_INTERVAL_MS = 60_000
# A notebook task gets the common job arguments (hybridrec.job.job_parser) as a JSON list in this
# parameter; a source file is deployed as a notebook only with this first line.
NOTEBOOK_ARGS = "args"
NOTEBOOK_HEADER = "# Databricks notebook source"

_REF = re.compile(r"\$\{([A-Za-z_][\w.\-\[\]]*)\}")
_DYNAMIC = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_START_TIME_ARGS = ("iso_date", "iso_datetime", "iso_weekday", "is_weekday", "timestamp_ms", "year",
                    "month", "day", "hour", "minute", "second")
_TASK_REF_ATTRS = ("run_id", "result_state", "error_code", "execution_count", "run_page_url")
_KEYED_LISTS = {"tasks": "task_key", "job_clusters": "job_cluster_key", "parameters": "name",
                "environments": "environment_key"}


class BundleError(HybridrecError):
    """The bundle cannot be read or resolved; the message names the file or key and the fix."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the bundle: where (target, job, key) and what to do about it."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Bundle:
    """databricks.yml with its includes merged; ``origins`` remembers which file named each job."""

    root: Path
    config: dict[str, Any]
    origins: dict[str, Path]
    files: list[Path]


@dataclass
class Target:
    """One target with variables substituted: what ``databricks bundle deploy -t NAME`` would deploy."""

    bundle: Bundle
    name: str
    mode: str | None
    variables: dict[str, Any]
    jobs: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def file_path(self) -> str:
        """``${workspace.file_path}`` of this target (a placeholder; mapped back by ``to_local``)."""
        return _workspace(self.bundle, self.name)["file_path"]

    def to_local(self, value: str) -> str:
        """A workspace file path of this bundle as the path of the same file in the checkout."""
        prefix = self.file_path
        return str(self.bundle.root) + value[len(prefix):] if value.startswith(prefix) else value


@dataclass(frozen=True)
class PlannedTask:
    """A script or notebook task of a planned run: its key, the local file and its exact arguments
    (a notebook's: its ``args`` parameter)."""

    key: str
    script: Path
    argv: list[str]
    notebook: bool = False


# ---------------------------------------------------------------------------------------------
# Reading and resolving


def load_bundle(root: str | Path = ".") -> Bundle:
    """Read ``databricks.yml`` under ``root`` and merge the files its ``include`` globs name."""
    root = Path(root).resolve()
    main = root / BUNDLE_FILE
    config = _read_yaml(main)
    origins = {key: main for key in (config.get("resources") or {}).get("jobs") or {}}
    files = [main]
    for pattern in config.get("include") or []:
        matched = sorted(root.glob(pattern))
        if not matched:
            raise BundleError(f"{BUNDLE_FILE}: include {pattern!r} matches no file under {root}")
        for path in matched:
            part = _read_yaml(path)
            unknown = set(part) - {"resources", "variables", "targets", "artifacts"}
            if unknown:
                raise BundleError(f"{path.relative_to(root)}: top-level {sorted(unknown)} belong in {BUNDLE_FILE}")
            for key in (part.get("resources") or {}).get("jobs") or {}:
                if key in origins:
                    raise BundleError(f"{path.relative_to(root)}: job {key!r} is also defined in "
                                      f"{origins[key].relative_to(root)}: give one of them another key")
                origins[key] = path
            config = _merge(config, part)
            files.append(path)
    return Bundle(root=root, config=config, origins=origins, files=files)


def resolve_target(bundle: Bundle, target: str, variables: Mapping[str, Any] | None = None) -> Target:
    """Merge ``targets.<target>`` into the bundle and substitute every ``${...}`` reference.

    ``variables`` play the part of ``--var name=value``. A variable with no value (required at
    deploy) or a lookup (resolved by the CLI in the workspace) gets a placeholder, listed in
    ``notes``. An undeclared variable anywhere is an error.
    """
    targets = bundle.config.get("targets") or {}
    if target not in targets:
        raise BundleError(f"{BUNDLE_FILE}: no target {target!r}; targets: {', '.join(targets) or 'none'}")
    spec = targets[target] or {}
    declared: dict[str, Any] = bundle.config.get("variables") or {}
    values: dict[str, Any] = {}
    notes: list[str] = []
    for name, decl in declared.items():
        if isinstance(decl, dict) and "default" in decl:
            values[name] = decl["default"]
        elif isinstance(decl, dict) and "lookup" in decl:
            values[name] = _lookup_placeholder(name, decl["lookup"])
    for name, value in (spec.get("variables") or {}).items():
        if name not in declared:
            raise BundleError(f"targets.{target}.variables.{name} is not declared under variables in {BUNDLE_FILE}")
        if isinstance(value, dict) and "lookup" in value:
            values[name] = _lookup_placeholder(name, value["lookup"])
            notes.append(f"variable {name} is looked up in the workspace at deploy time ({value['lookup']})")
        else:
            values[name] = value["default"] if isinstance(value, dict) and "default" in value else value
    for name, value in (variables or {}).items():
        if name not in declared:
            raise BundleError(f"--var {name}: no such variable in {BUNDLE_FILE}")
        values[name] = value
    for name in declared:
        if name not in values:
            values[name] = f"<{name}>"
            notes.append(f"variable {name} has no value: pass --var {name}=... or BUNDLE_VAR_{name} at deploy")
    mode = spec.get("mode")
    context = {"bundle.name": bundle.config.get("bundle", {}).get("name", ""), "bundle.target": target}
    context.update({f"workspace.{k}": v for k, v in _workspace(bundle, target).items()})
    resolved_vars = {name: _substitute(v, values, context, f"variables.{name}", set()) for name, v in values.items()}
    resources = _merge(copy.deepcopy(bundle.config.get("resources") or {}), spec.get("resources") or {})
    jobs: dict[str, dict[str, Any]] = {}
    for key, job in (resources.get("jobs") or {}).items():
        job = dict(job or {})
        run_as = spec.get("run_as", bundle.config.get("run_as"))
        if run_as and "run_as" not in job:
            job["run_as"] = run_as
        jobs[key] = _substitute(job, resolved_vars, context, f"resources.jobs.{key}", set())
    return Target(bundle=bundle, name=target, mode=mode, variables=resolved_vars, jobs=jobs, notes=notes)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = safe_load_unique(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path} not found: run from the repository root or pass --root") from None
    except DuplicateKeyError as exc:  # the Databricks CLI would keep the last one without a word
        raise BundleError(f"{path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise BundleError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise BundleError(f"{path} must hold a mapping, got {type(data).__name__}")
    return data


def _merge(base: Any, over: Any, key: str = "") -> Any:
    """The CLI's merge: mappings recursively, keyed lists (tasks, job clusters) by key, others appended."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(out[k], v, k) if k in out else copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(over, list):
        ident = _KEYED_LISTS.get(key)
        if ident is None or not all(isinstance(item, dict) for item in [*base, *over]):
            return [*base, *copy.deepcopy(over)]
        out_list = [dict(item) for item in base]
        index = {item.get(ident): i for i, item in enumerate(out_list)}
        for item in over:
            if item.get(ident) in index:
                i = index[item[ident]]
                out_list[i] = _merge(out_list[i], item)
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(over)


def _workspace(bundle: Bundle, target: str) -> dict[str, str]:
    """What ``${workspace.*}`` stands for: the deploy folder of the target, for a placeholder user."""
    name = bundle.config.get("bundle", {}).get("name", "bundle")
    root_path = (bundle.config.get("targets", {}).get(target, {}) or {}).get("workspace", {}).get("root_path")
    root_path = root_path or f"/Workspace/Users/{PLACEHOLDER_USER}/.bundle/{name}/{target}"
    return {
        "root_path": root_path,
        "file_path": f"{root_path}/files",
        "artifact_path": f"{root_path}/artifacts",
        "current_user.userName": PLACEHOLDER_USER,
        "current_user.short_name": PLACEHOLDER_USER.split("@")[0],
    }


def _lookup_placeholder(name: str, lookup: Any) -> str:
    kind, value = next(iter(lookup.items())) if isinstance(lookup, dict) and lookup else ("lookup", lookup)
    return f"<{kind} {value}>"


def _substitute(value: Any, variables: Mapping[str, Any], context: Mapping[str, str], where: str,
                active: set[str]) -> Any:
    """Replace ``${var.x}``, ``${bundle.*}`` and ``${workspace.*}`` in ``value`` (recursively)."""
    if isinstance(value, dict):
        return {k: _substitute(v, variables, context, f"{where}.{k}", active) for k, v in value.items()}
    if isinstance(value, list):
        out = []
        for i, item in enumerate(value):
            label = item.get("task_key") or item.get("job_cluster_key") if isinstance(item, dict) else None
            out.append(_substitute(item, variables, context, f"{where}[{label or i}]", active))
        return out
    if not isinstance(value, str) or "${" not in value:
        return value

    def lookup(ref: str) -> Any:
        if ref.startswith("var."):
            name = ref[4:]
            if name not in variables:
                raise BundleError(f"unknown variable ${{{ref}}} at {where}: declare {name!r} under variables "
                                  f"in {BUNDLE_FILE} or fix the name")
            if name in active:
                raise BundleError(f"variable {name} refers to itself at {where}")
            return _substitute(variables[name], variables, context, where, active | {name})
        if ref in context:
            return context[ref]
        if ref.startswith("resources."):
            return f"<{ref}>"
        raise BundleError(f"unknown reference ${{{ref}}} at {where}: use ${{var.NAME}}, ${{bundle.name}}, "
                          "${bundle.target} or ${workspace.file_path}")

    whole = _REF.fullmatch(value)
    if whole:
        return lookup(whole.group(1))

    def interpolate(m: re.Match[str]) -> str:
        got = lookup(m.group(1))
        if isinstance(got, (dict, list)):
            raise BundleError(f"${{{m.group(1)}}} at {where} is a complex value inside a string")
        return str(got)

    return _REF.sub(interpolate, value)


# ---------------------------------------------------------------------------------------------
# Checks


def check_bundle(root: str | Path = ".", targets: Sequence[str] | None = None,
                 variables: Mapping[str, Any] | None = None) -> tuple[list[Problem], list[str]]:
    """All problems of every (or the named) target, and notes worth printing (placeholders)."""
    try:
        bundle = load_bundle(root)
    except BundleError as exc:
        return [Problem(BUNDLE_FILE, str(exc))], []
    problems = list(check_secrets(bundle_files(bundle), bundle.root))
    for name, artifact in (bundle.config.get("artifacts") or {}).items():
        folder = bundle.root / str((artifact or {}).get("path", "."))
        if (artifact or {}).get("type") == "whl" and not any((folder / f).is_file() for f in ("setup.py", "pyproject.toml")):
            problems.append(Problem(f"artifacts.{name}", f"{_relative(folder, bundle.root)} has no setup.py or "
                                    "pyproject.toml to build the wheel from: fix its path"))
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
RUNTIME_PROVIDED = ("pyspark", "delta-spark", "tensorflow", "tensorflow-cpu", "tensorflow-gpu", "horovod",
                    "petastorm", "mlflow", "mlflow-skinny", "databricks-connect")


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
            problems.append(f"{setup_py.name} install_requires {req!r}: the cluster's runtime provides {name}, "
                            "and installing the wheel would replace it; move it to an extra (spark, cpu)")
    return problems


def bundle_files(bundle: Bundle) -> list[Path]:
    """The bundle's YAML files and every config file a task passes with ``--config``."""
    files = list(bundle.files)
    for name in bundle.config.get("targets") or {}:
        try:
            target = resolve_target(bundle, name)
        except BundleError:
            continue
        for job in target.jobs.values():
            for task in job.get("tasks") or []:
                try:
                    params = (task.get("spark_python_task") or {}).get("parameters") or (
                        notebook_args(task) if task.get("notebook_task") else [])
                except BundleError:
                    params = []
                for flag, value in zip(params, params[1:]):
                    path = Path(target.to_local(str(value)))
                    if flag == "--config" and path.is_file() and path not in files:
                        files.append(path)
    return files


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
                problems.append(f"task {key} depends_on {name!r}, which is not a task of this job "
                                f"(tasks: {', '.join(str(k) for k in keys if k)})")
            elif dep.get("outcome") is not None:
                if "condition_task" not in by_key[name]:
                    problems.append(f"task {key} depends on outcome {dep['outcome']!r} of {name}, which is not a condition task")
                elif str(dep["outcome"]) not in ("true", "false"):
                    problems.append(f"task {key}: outcome of condition {name} must be \"true\" or \"false\"")
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
                return stack[stack.index(dep):] + [dep]
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
            problems.append(f"schedule.timezone_id {schedule.get('timezone_id')!r} is not a time zone (e.g. UTC, Europe/Berlin)")
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
        problems.append("nobody hears of a failure: set email_notifications.on_failure or webhook_notifications.on_failure")
    if mode == "production" and not hooks:
        problems.append("production failures should also reach the on-call webhook (webhook_notifications.on_failure)")
    for task in job.get("tasks") or []:
        if "condition_task" in task:
            continue
        key = task.get("task_key")
        if not _number(task.get("timeout_seconds")) > 0:
            problems.append(f"task {key} has no timeout_seconds: a hung task would hold the cluster until the job's timeout")
        if not _number(task.get("max_retries")) >= 1:
            problems.append(f"task {key} has no max_retries: a transient failure fails the night")
        elif _number(task.get("min_retry_interval_millis")) < MIN_RETRY_INTERVAL_MS:
            problems.append(f"task {key}: min_retry_interval_millis must be at least {MIN_RETRY_INTERVAL_MS} (back-off)")
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


def dynamic_values(start: dt.datetime, parameters: Mapping[str, str]) -> dict[str, str]:
    """The values the Jobs service gives ``{{job.start_time.*}}`` and ``{{job.parameters.*}}``."""
    start = start.astimezone(dt.timezone.utc)
    values = {
        "job.start_time.iso_date": start.date().isoformat(),
        "job.start_time.iso_datetime": start.replace(tzinfo=None).isoformat(timespec="milliseconds"),
        "job.start_time.iso_weekday": str(start.isoweekday()),
        "job.start_time.is_weekday": "true" if start.isoweekday() <= 5 else "false",
        "job.start_time.timestamp_ms": str(int(start.timestamp() * 1000)),
        **{f"job.start_time.{k}": str(getattr(start, k)) for k in ("year", "month", "day", "hour", "minute", "second")},
    }
    for name, default in parameters.items():
        values[f"job.parameters.{name}"] = _DYNAMIC.sub(lambda m: values.get(m.group(1), m.group(0)), str(default))
    return values


def _dynamic_refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _dynamic_refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from _dynamic_refs(v)
    elif isinstance(value, str):
        yield from (m.group(1) for m in _DYNAMIC.finditer(value))


def _check_dynamic_refs(job: dict[str, Any]) -> list[str]:
    params = {str(p.get("name")) for p in job.get("parameters") or []}
    tasks = {str(t.get("task_key")) for t in job.get("tasks") or []}
    fixed = {"job.id", "job.name", "job.run_id", "job.repair_count", "job.trigger.type",
             "job.trigger.file_arrival.location", "task.name", "task.run_id", "task.execution_count",
             "task.notebook_path", "workspace.id", "workspace.url"}
    problems = []
    by_key = {str(t.get("task_key")): t for t in job.get("tasks") or []}
    for ref in sorted(set(_dynamic_refs(job))):
        parts = ref.split(".")
        if parts[0] == "tasks" and len(parts) >= 4 and parts[2] == "values" and parts[1] in by_key \
                and "notebook_task" not in by_key[parts[1]]:
            problems.append(f"{{{{{ref}}}}}: task {parts[1]} is not a notebook task, and only notebooks can set "
                            "task values (dbutils.jobs.taskValues.set): the condition would never see it")
        ok = (ref in fixed
              or (parts[:2] == ["job", "parameters"] and len(parts) == 3 and parts[2] in params)
              or (parts[:2] in (["job", "start_time"], ["job", "trigger"]) and parts[-1] in _START_TIME_ARGS)
              or (parts[0] == "tasks" and len(parts) >= 3 and parts[1] in tasks
                  and (parts[2] in _TASK_REF_ATTRS or parts[2] == "values"))
              or re.fullmatch(r"secrets/[\w.\-]+/[\w.\-]+", ref) is not None)
        if not ok:
            hint = f" (job parameters: {', '.join(sorted(params)) or 'none'})" if ref.startswith("job.parameters") else ""
            problems.append(f"{{{{{ref}}}}} is not a dynamic value reference the Jobs service knows{hint}")
    return problems


def _script_path(target: Target, job_key: str, python_file: str) -> Path:
    """Where a task's python_file is in the checkout (relative to the file that names it, like the CLI)."""
    local = target.to_local(python_file)
    if Path(local).is_absolute():
        return Path(local)
    return (target.bundle.origins.get(job_key, target.bundle.root / BUNDLE_FILE).parent / local).resolve()


def _task_file(task: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, path as written) of a script or notebook task; None for other tasks."""
    if task.get("spark_python_task"):
        return "python_file", str(task["spark_python_task"].get("python_file") or "")
    if task.get("notebook_task"):
        return "notebook_path", str(task["notebook_task"].get("notebook_path") or "")
    return None


def notebook_args(task: dict[str, Any]) -> list[str]:
    """The job arguments a notebook task passes in its ``args`` parameter (a JSON list)."""
    raw = ((task.get("notebook_task") or {}).get("base_parameters") or {}).get(NOTEBOOK_ARGS)
    if raw is None:
        raise BundleError(f"notebook task {task.get('task_key')} has no base_parameters.{NOTEBOOK_ARGS}: pass the "
                          "job arguments (--config, --set ...) as a JSON list")
    try:
        argv = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise BundleError(f"notebook task {task.get('task_key')}: base_parameters.{NOTEBOOK_ARGS} is not JSON ({exc})") from None
    if not isinstance(argv, list):
        raise BundleError(f"notebook task {task.get('task_key')}: base_parameters.{NOTEBOOK_ARGS} must be a JSON list")
    return [str(a) for a in argv]


def _check_scripts(target: Target, job_key: str, job: dict[str, Any]) -> list[str]:
    problems = []
    root = target.bundle.root
    wheel_dirs = {(root / str(a.get("path", "."))).resolve() / "dist"
                  for a in (target.bundle.config.get("artifacts") or {}).values() if a.get("type") == "whl"}
    origin_dir = target.bundle.origins.get(job_key, root / BUNDLE_FILE).parent
    params_by_task = {}
    for task in job.get("tasks") or []:
        found = _task_file(task)
        if not found or not found[1]:
            continue  # not a script or notebook task, or the model check names the missing field
        field_name, written = found
        key = task.get("task_key")
        script = _script_path(target, job_key, written)
        wheels = [lib["whl"] for lib in task.get("libraries") or [] if isinstance(lib, dict) and lib.get("whl")]
        if not any((origin_dir / str(w)).resolve().parent in wheel_dirs for w in wheels):
            problems.append(f"task {key} does not install the bundle's wheel: add libraries: [whl: <artifact path>/dist/*.whl]")
        if not script.is_file():
            problems.append(f"task {key}: {field_name} {written} does not exist "
                            f"(looked for {_relative(script, root)}): fix the path, relative to "
                            f"{_relative(origin_dir, root) or '.'}/")
            continue
        try:
            script.relative_to(root)
        except ValueError:
            problems.append(f"task {key}: {field_name} {script} is outside the bundle, so it is not deployed")
            continue
        if field_name == "notebook_path":
            if not script.read_text(encoding="utf-8").startswith(NOTEBOOK_HEADER):
                problems.append(f"task {key}: {written} does not start with {NOTEBOOK_HEADER!r}, so it is "
                                "deployed as a file, not a notebook")
            try:
                raw = notebook_args(task)
            except BundleError as exc:
                problems.append(str(exc))
                continue
            argv = [target.to_local(_DYNAMIC.sub(lambda m: _sample(job, m.group(1)), a)) for a in raw]
            params_by_task[key] = argv
            from hybridrec.job import job_parser

            problems += [f"task {key}: {m}" for m in parameter_problems(job_parser(), script.name, argv)]
            continue
        argv = [target.to_local(_DYNAMIC.sub(lambda m: _sample(job, m.group(1)), str(a)))
                for a in task["spark_python_task"].get("parameters") or []]
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


def load_parser(script: Path) -> argparse.ArgumentParser:
    """The argument parser of a job script: every script in jobs/ defines ``build_parser()``."""
    module = _import_script(script)
    builder: Callable[[], argparse.ArgumentParser] | None = getattr(module, "build_parser", None)
    if builder is None:
        raise BundleError(f"{script.name} defines no build_parser(): add one returning the parser its "
                          "__main__ block uses, so that its parameters can be checked")
    return builder()


_SCRIPTS: dict[tuple[str, str], ModuleType] = {}


def _import_script(script: Path) -> ModuleType:
    """Import a job script once per content (checking copies of the bundle re-reads no module)."""
    key = (script.name, hashlib.sha1(script.read_bytes()).hexdigest())
    if key not in _SCRIPTS:
        spec = importlib.util.spec_from_file_location(f"_bundle_job_{script.stem}", script)
        if spec is None or spec.loader is None:
            raise BundleError(f"{script} cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _SCRIPTS[key] = module
    return _SCRIPTS[key]


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
        return tuple(sorted(p for p in pairs if p.startswith("--config") or p.split(" ", 1)[1].startswith(("tables.", "paths."))))

    if len({shared(argv) for argv in params.values()}) <= 1:
        return []
    first, *rest = params.items()
    odd = [k for k, argv in rest if shared(argv) != shared(first[1])]
    return [f"tasks {', '.join(odd)} pass other --config / tables.* / paths.* values than task {first[0]}: "
            "every task must read the same config, tables and volumes"]


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
            problems.append(f"task {task.get('task_key')} trains on {cluster.get('spark_version')!r}: use a GPU ML runtime (…-gpu-ml-…)")
        params = [str(p) for p in spt.get("parameters") or []]
        procs = [p.split("=", 1)[1] for p in params if p.startswith("train.num_proc=")]
        if not procs:
            problems.append(f"task {task.get('task_key')} does not set train.num_proc: Horovod needs one process per GPU")
        elif gpus_per_worker is not None:
            want = int(_number(cluster.get("num_workers")) * _number(gpus_per_worker))
            if procs[-1] != str(want):
                problems.append(f"task {task.get('task_key')}: train.num_proc={procs[-1]} but the cluster has "
                                f"{want} GPUs ({cluster.get('num_workers')} workers x {gpus_per_worker})")
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
    (re.compile(r"\b[\w.-]+\.(cloud\.databricks\.com|azuredatabricks\.net|gcp\.databricks\.com|databricks\.azure\.cn)\b"),
     "a workspace host"),
    (re.compile(r"\b(https?|wss?|jdbc:[a-z]+|s3a?|abfss?|wasbs?|gs)://[^\s\"']+", re.IGNORECASE),
     "a URL (hosts and webhooks belong in the CLI profile or a notification destination)"),
    (re.compile(r"^\s*host\s*:\s*\S", re.MULTILINE), "a workspace host"),
)
_SECRET_KEY = re.compile(
    r"^\s*-?\s*[\"']?([\w.-]*(password|passwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret|credential)[\w.-]*)"
    r"[\"']?\s*[:=]\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
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
                problems.append(Problem(f"{name}:{line}", f"looks like {what}: keep it out of the repository "
                                        "(secret scope {{secrets/<scope>/<key>}}, the job's identity, or --var)"))
        for m in _SECRET_KEY.finditer(text):
            value = m.group(3).split(" #")[0].strip()
            if value and not _SAFE_VALUE.match(value):
                line = text.count("\n", 0, m.start()) + 1
                problems.append(Problem(f"{name}:{line}", f"{m.group(1)} holds a literal value: read it from a "
                                        "secret scope ({{secrets/<scope>/<key>}}) instead"))
    return problems


# ---------------------------------------------------------------------------------------------
# Planning a run (the end-to-end dry run)


def plan_run(target: Target, job_key: str, start: dt.datetime,
             parameters: Mapping[str, str] | None = None,
             task_values: Mapping[str, Mapping[str, Any]] | None = None) -> tuple[list[PlannedTask], dict[str, str]]:
    """The script and notebook tasks a run started at ``start`` executes, in order, with their exact argv.

    Follows the Jobs service's rules with every script succeeding: a condition task's outcome
    gates the tasks that depend on it, a task whose dependencies are all Excluded is Excluded, an
    Excluded dependency counts as succeeded. ``parameters`` override job parameter defaults (like
    ``databricks bundle run --params``); ``task_values`` are what the notebook tasks set
    (``{"catalog_check": {"retrain": 1}}``, see ``hybridrec.catalog.retrain``), read by condition tasks through
    ``{{tasks.<key>.values.<name>}}``; a condition reading a value nobody set is an error. Returns
    the plan and each task's state (run, excluded, true, false).
    """
    job = target.jobs[job_key]
    defaults = {str(p["name"]): str(p.get("default", "")) for p in job.get("parameters") or []}
    unknown = set(parameters or {}) - set(defaults)
    if unknown:
        raise BundleError(f"job {job_key} has no parameter {sorted(unknown)[0]!r}; parameters: {', '.join(defaults)}")
    values = dynamic_values(start, {**defaults, **(parameters or {})})
    for key, named in (task_values or {}).items():
        values.update({f"tasks.{key}.values.{name}": str(v) for name, v in named.items()})
    tasks = {t["task_key"]: t for t in job.get("tasks") or []}
    state: dict[str, str] = {}
    plan: list[PlannedTask] = []

    def fill(text: str) -> str:
        return _DYNAMIC.sub(lambda m: values[m.group(1)] if m.group(1) in values else m.group(0), text)

    pending = list(tasks)
    while pending:
        ready = [k for k in pending if all(d["task_key"] in state for d in tasks[k].get("depends_on") or [])]
        if not ready:
            raise BundleError(f"job {job_key}: tasks {', '.join(pending)} wait on each other (a cycle)")
        for key in ready:
            pending.remove(key)
            task = tasks[key]
            edges = []
            for dep in task.get("depends_on") or []:
                got = state[dep["task_key"]]
                outcome = dep.get("outcome")
                excluded = got == "excluded" or (outcome is not None and got != str(outcome))
                edges.append(excluded)
            if edges and all(edges):
                state[key] = "excluded"
            elif "condition_task" in task:
                cond = task["condition_task"]
                left, right = fill(str(cond["left"])), fill(str(cond["right"]))
                unset = _DYNAMIC.search(left + right)
                if unset:
                    raise BundleError(f"condition {key} reads {unset.group(0)}, which no task value or parameter "
                                      "gives: pass task_values (what the upstream task sets)")
                state[key] = "true" if _compare(left, str(cond["op"]), right) else "false"
            else:
                state[key] = "run"
                found = _task_file(task)
                if found:
                    script = _script_path(target, job_key, found[1])
                    notebook = found[0] == "notebook_path"
                    raw = notebook_args(task) if notebook else task["spark_python_task"].get("parameters") or []
                    argv = [target.to_local(fill(str(a))) for a in raw]
                    plan.append(PlannedTask(key=key, script=script, argv=argv, notebook=notebook))
    return plan, state


def _compare(left: str, op: str, right: str) -> bool:
    """A condition task's comparison: == and != on strings, the others on numbers."""
    if op == "EQUAL_TO":
        return left == right
    if op == "NOT_EQUAL":
        return left != right
    try:
        a, b = float(left), float(right)
    except ValueError:
        raise BundleError(f"condition {left!r} {op} {right!r} compares numbers, but one side is not a number") from None
    return {"GREATER_THAN": a > b, "GREATER_THAN_OR_EQUAL": a >= b, "LESS_THAN": a < b,
            "LESS_THAN_OR_EQUAL": a <= b}[op]


# ---------------------------------------------------------------------------------------------
# Command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hybridrec.bundle_check``: print the problems of every target; exit 1 if any."""
    parser = argparse.ArgumentParser(prog="python -m hybridrec.bundle_check", description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="folder holding databricks.yml (default: .)")
    parser.add_argument("--target", action="append", default=None, help="check only this target (repeatable)")
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                        help="a variable value, like databricks bundle --var (repeatable)")
    args = parser.parse_args(argv)
    variables = {}
    for item in args.var:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--var {item!r} must look like name=value")
        variables[name] = value
    problems, notes = check_bundle(args.root, args.target, variables)
    for note in notes:
        print(f"bundle-check: note: {note}")
    for problem in problems:
        print(f"bundle-check: {problem}", file=sys.stderr)
    if problems:
        print(f"bundle-check: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    bundle = load_bundle(args.root)
    for name in args.target or (bundle.config.get("targets") or {}):
        jobs = resolve_target(bundle, name, variables).jobs
        print(f"bundle-check: target {name}: " + ", ".join(f"job {k} ({len(j.get('tasks') or [])} tasks)" for k, j in jobs.items()) + ": ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
