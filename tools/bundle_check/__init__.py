"""Check the Databricks Asset Bundle (databricks.yml + resources/*.yml) without a workspace.

Why: ``databricks bundle validate`` needs a workspace and a login, and a wrong field, a script
path or an argument the job's parser rejects would otherwise surface at 2 a.m. on the cluster.
This package reads the bundle like the CLI does (includes, per-target variables and overrides,
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

The modules: ``loader`` (reading databricks.yml, its includes and the files it names),
``checks`` (the checks above), ``plan`` (the DAG planner of the dry run), ``__main__`` (the command).
It lives outside lib/ because only ``make bundle-check`` and the tests use it: it is not in the wheel.

    python -m tools.bundle_check [--root .] [--target dev] [--var name=value ...]
"""
