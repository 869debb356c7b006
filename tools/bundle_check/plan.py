"""Planning a run of a bundle job the way the Jobs service runs it (the end-to-end dry run): the DAG
with condition tasks, outcomes, Excluded tasks, task values and dynamic value references.

Why: the end-to-end test runs each planned script and notebook task with its exact arguments, so
the order and command lines of the nightly job are tested without a workspace.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.bundle_check.loader import DYNAMIC_REF, BundleError, Target, notebook_args, script_path, task_file


@dataclass(frozen=True)
class PlannedTask:
    """A script or notebook task of a planned run: its key, the local file and its exact arguments
    (a notebook's: its ``args`` parameter)."""

    key: str
    script: Path
    argv: list[str]
    notebook: bool = False


def plan_run(
    target: Target,
    job_key: str,
    start: dt.datetime,
    parameters: Mapping[str, str] | None = None,
    task_values: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[PlannedTask], dict[str, str]]:
    """The script and notebook tasks a run started at ``start`` executes, in order, with their exact argv.

    Follows the Jobs service's rules with every script succeeding: a condition task's outcome
    gates the tasks that depend on it, a task whose dependencies are all Excluded is Excluded, an
    Excluded dependency counts as succeeded. ``parameters`` override job parameter defaults (like
    ``databricks bundle run --params``); ``task_values`` are what the notebook tasks set
    (``{"catalog_check": {"retrain": 1}}``, see ``hybridrec.models.retrain``), read by condition tasks through
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
        return DYNAMIC_REF.sub(lambda m: values[m.group(1)] if m.group(1) in values else m.group(0), text)

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
                unset = DYNAMIC_REF.search(left + right)
                if unset:
                    raise BundleError(
                        f"condition {key} reads {unset.group(0)}, which no task value or parameter "
                        "gives: pass task_values (what the upstream task sets)"
                    )
                state[key] = "true" if _compare(left, str(cond["op"]), right) else "false"
            else:
                state[key] = "run"
                found = task_file(task)
                if found:
                    script = script_path(target, job_key, found[1])
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
    return {"GREATER_THAN": a > b, "GREATER_THAN_OR_EQUAL": a >= b, "LESS_THAN": a < b, "LESS_THAN_OR_EQUAL": a <= b}[
        op
    ]


def dynamic_values(start: dt.datetime, parameters: Mapping[str, str]) -> dict[str, str]:
    """The values the Jobs service gives ``{{job.start_time.*}}`` and ``{{job.parameters.*}}``."""
    start = start.astimezone(dt.UTC)
    values = {
        "job.start_time.iso_date": start.date().isoformat(),
        "job.start_time.iso_datetime": start.replace(tzinfo=None).isoformat(timespec="milliseconds"),
        "job.start_time.iso_weekday": str(start.isoweekday()),
        "job.start_time.is_weekday": "true" if start.isoweekday() <= 5 else "false",
        "job.start_time.timestamp_ms": str(int(start.timestamp() * 1000)),
        **{f"job.start_time.{k}": str(getattr(start, k)) for k in ("year", "month", "day", "hour", "minute", "second")},
    }
    for name, default in parameters.items():
        values[f"job.parameters.{name}"] = DYNAMIC_REF.sub(lambda m: values.get(m.group(1), m.group(0)), str(default))
    return values
