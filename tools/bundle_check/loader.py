"""Reading a Databricks Asset Bundle like the CLI does: databricks.yml with its includes, per-target
variables and overrides, paths relative to the file that names them, the config files and job
scripts its tasks name.

Why here and not in the checks: the checks and the dry-run planner both start from a resolved
``Target`` and the task files and arguments it names.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import importlib.util
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from hybridrec.errors import HybridrecError
from hybridrec.strict_yaml import DuplicateKeyError, safe_load_unique

BUNDLE_FILE = "databricks.yml"
# What ${workspace.*} resolves to here: a deployment needs a login, a check does not.
PLACEHOLDER_USER = "someone@example.com"
# A notebook task gets the common job arguments (hybridrec.job.job_parser) as a JSON list in this
# parameter.
NOTEBOOK_ARGS = "args"

_REF = re.compile(r"\$\{([A-Za-z_][\w.\-\[\]]*)\}")
# A ``{{...}}`` dynamic value reference, filled in by the Jobs service when a task starts.
DYNAMIC_REF = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_KEYED_LISTS = {
    "tasks": "task_key",
    "job_clusters": "job_cluster_key",
    "parameters": "name",
    "environments": "environment_key",
}


class BundleError(HybridrecError):
    """The bundle cannot be read or resolved; the message names the file or key and the fix."""


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
        return str(self.bundle.root) + value[len(prefix) :] if value.startswith(prefix) else value


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
                    raise BundleError(
                        f"{path.relative_to(root)}: job {key!r} is also defined in "
                        f"{origins[key].relative_to(root)}: give one of them another key"
                    )
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


def _substitute(
    value: Any, variables: Mapping[str, Any], context: Mapping[str, str], where: str, active: set[str]
) -> Any:
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
                raise BundleError(
                    f"unknown variable ${{{ref}}} at {where}: declare {name!r} under variables "
                    f"in {BUNDLE_FILE} or fix the name"
                )
            if name in active:
                raise BundleError(f"variable {name} refers to itself at {where}")
            return _substitute(variables[name], variables, context, where, active | {name})
        if ref in context:
            return context[ref]
        if ref.startswith("resources."):
            return f"<{ref}>"
        raise BundleError(
            f"unknown reference ${{{ref}}} at {where}: use ${{var.NAME}}, ${{bundle.name}}, "
            "${bundle.target} or ${workspace.file_path}"
        )

    whole = _REF.fullmatch(value)
    if whole:
        return lookup(whole.group(1))

    def interpolate(m: re.Match[str]) -> str:
        got = lookup(m.group(1))
        if isinstance(got, (dict, list)):
            raise BundleError(f"${{{m.group(1)}}} at {where} is a complex value inside a string")
        return str(got)

    return _REF.sub(interpolate, value)


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
                        notebook_args(task) if task.get("notebook_task") else []
                    )
                except BundleError:
                    params = []
                for flag, value in zip(params, params[1:]):
                    path = Path(target.to_local(str(value)))
                    if flag == "--config" and path.is_file() and path not in files:
                        files.append(path)
    return files


def script_path(target: Target, job_key: str, python_file: str) -> Path:
    """Where a task's python_file is in the checkout (relative to the file that names it, like the CLI)."""
    local = target.to_local(python_file)
    if Path(local).is_absolute():
        return Path(local)
    return (target.bundle.origins.get(job_key, target.bundle.root / BUNDLE_FILE).parent / local).resolve()


def task_file(task: dict[str, Any]) -> tuple[str, str] | None:
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
        raise BundleError(
            f"notebook task {task.get('task_key')} has no base_parameters.{NOTEBOOK_ARGS}: pass the "
            "job arguments (--config, --set ...) as a JSON list"
        )
    try:
        argv = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise BundleError(
            f"notebook task {task.get('task_key')}: base_parameters.{NOTEBOOK_ARGS} is not JSON ({exc})"
        ) from None
    if not isinstance(argv, list):
        raise BundleError(f"notebook task {task.get('task_key')}: base_parameters.{NOTEBOOK_ARGS} must be a JSON list")
    return [str(a) for a in argv]


def load_parser(script: Path) -> argparse.ArgumentParser:
    """The argument parser of a job script: every script in jobs/ defines ``build_parser()``."""
    module = _import_script(script)
    builder: Callable[[], argparse.ArgumentParser] | None = getattr(module, "build_parser", None)
    if builder is None:
        raise BundleError(
            f"{script.name} defines no build_parser(): add one returning the parser its "
            "__main__ block uses, so that its parameters can be checked"
        )
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
