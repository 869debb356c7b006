"""``python -m tools.bundle_check``: check the Databricks Asset Bundle without a workspace.

Prints a note per placeholder value, a line per problem; exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import tools.bundle_check
from tools.bundle_check.checks import check_bundle
from tools.bundle_check.loader import load_bundle, resolve_target


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tools.bundle_check``: print the problems of every target; exit 1 if any."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.bundle_check", description=(tools.bundle_check.__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--root", default=".", help="folder holding databricks.yml (default: .)")
    parser.add_argument("--target", action="append", default=None, help="check only this target (repeatable)")
    parser.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a variable value, like databricks bundle --var (repeatable)",
    )
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
        print(
            f"bundle-check: target {name}: "
            + ", ".join(f"job {k} ({len(j.get('tasks') or [])} tasks)" for k, j in jobs.items())
            + ": ok"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
