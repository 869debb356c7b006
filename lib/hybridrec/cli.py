"""The ``hybridrec`` command: small operational commands next to the Spark jobs in ``jobs/``.

    hybridrec check [--config conf/local.yaml]   verify the installed stack (Spark, Delta, Horovod)
    hybridrec demo-data [--config ...] [--set demo.n_products=500]
                                                 write the seeded demo catalog and simulated interactions
    hybridrec recs --user U [--date D] [--config ...]
                                                 a user's recommendations of the latest (or given) night
    hybridrec similar --product P [--date D] [--config ...]
                                                 a product's similar items of the latest (or given) night
    hybridrec runs [--limit N] [--job J] [--stale-after-hours H] [--config ...]
                                                 recent job runs from gold.runs; a `running` row
                                                 older than H hours shows as `stale` (a killed run)

Errors print one sentence; ``--debug`` (or ``HYBRIDREC_DEBUG=1``) adds the full trace.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence

from hybridrec.config import Config, ConfigError, load_config
from hybridrec.errors import HybridrecError


def check_stack(config_path: str | None, overrides: Sequence[str]) -> list[str]:
    """Import the stack, build the Spark session, round-trip a Delta table; return report lines."""
    import horovod
    import horovod.tensorflow as hvd
    import petastorm
    import pyarrow
    import pyspark
    import tensorflow as tf

    from hybridrec.spark import build_spark

    lines = [
        f"pyspark {pyspark.__version__}, tensorflow {tf.__version__}, horovod {horovod.__version__}, "
        f"petastorm {petastorm.__version__}, pyarrow {pyarrow.__version__}",
    ]
    if not hvd.gloo_built():
        raise HybridrecError("Horovod was built without Gloo: rerun `make setup`")
    lines.append("horovod: gloo built, tensorflow ops load")
    cfg = load_config(config_path, [*overrides, "spark.ui_enabled=false"])
    spark = build_spark(cfg.spark)
    with tempfile.TemporaryDirectory(prefix="hybridrec-check-") as tmp:
        path = f"{tmp}/roundtrip"
        spark.range(3).write.format("delta").save(path)
        spark.range(5).write.format("delta").mode("overwrite").save(path)
        n = spark.read.format("delta").load(path).count()
        versions = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").count()
    if n != 5 or versions != 2:
        raise HybridrecError(f"Delta round trip gave {n} rows and {versions} versions, expected 5 and 2")
    lines.append(f"delta: round trip ok (spark {spark.version}, master {spark.sparkContext.master})")
    return lines


RECS_COLUMNS = ("rank", "product_id", "title", "score", "source", "category", "reason")
SIMILAR_COLUMNS = ("rank", "similar_product_id", "similar_title", "score", "source")


def print_lookup(
    command: str, key: str, run_date: dt.date | None, config_path: str | None, overrides: Sequence[str]
) -> int:
    """``hybridrec recs`` / ``similar``: print one user's or product's list; 1 when it has none."""
    from hybridrec import lookup, tables
    from hybridrec.reader import format_table, terminal_text
    from hybridrec.spark import build_spark

    cfg = load_config(config_path, [*overrides, "spark.ui_enabled=false"])
    spark = build_spark(cfg.spark)
    if command == "recs":
        spec, what, columns = tables.RECOMMENDATIONS, f"user {key!r}", RECS_COLUMNS
        fetch = lookup.user_recommendations
    else:
        spec, what, columns = tables.SIMILAR_ITEMS, f"product {key!r}", SIMILAR_COLUMNS
        fetch = lookup.similar_products
    night = lookup.resolve_night(spark, cfg, spec, run_date)
    rows = fetch(spark, cfg, key, night)
    if rows.empty:
        print(f"hybridrec: {what} has no list in {spec.logical_name} on {night}", file=sys.stderr)
        return 1
    if command == "similar" and rows["title"].notna().any():
        what += f" ({terminal_text(str(rows['title'].iloc[0]))})"
    print(f"{spec.logical_name} for {what}, night {night}:")
    print(format_table(rows, columns))
    return 0


def print_examples(run_date: dt.date | None, config_path: str | None, overrides: Sequence[str]) -> int:
    """``hybridrec examples``: where the tables are, and a few lists of one night with reasons."""
    from hybridrec import lookup, tables
    from hybridrec.reader import format_table, terminal_text
    from hybridrec.spark import build_spark

    cfg = load_config(config_path, [*overrides, "spark.ui_enabled=false"])
    spark = build_spark(cfg.spark)
    night = lookup.resolve_night(spark, cfg, tables.RECOMMENDATIONS, run_date)
    for spec in (tables.RECOMMENDATIONS, tables.SIMILAR_ITEMS, tables.PRODUCT_EMBEDDINGS, tables.RUNS):
        print(f"{spec.logical_name:<24} {tables.table_ref(cfg, spec)}")
    keys = lookup.example_keys(spark, cfg, night)
    for label, key in (
        ("a user with history", keys.get("warm_user")),
        ("a user with almost none", keys.get("cold_user")),
    ):
        if key:
            rows = lookup.user_recommendations(spark, cfg, key, night)
            print(f"\n{tables.RECOMMENDATIONS.logical_name}, night {night}, {label} ({terminal_text(key)}):")
            print(format_table(rows.head(8), RECS_COLUMNS))
    if "cold_product" in keys:
        rows = lookup.similar_products(spark, cfg, keys["cold_product"], night)
        title = terminal_text(str(rows["title"].iloc[0])) if len(rows) else ""
        print(
            f"\n{tables.SIMILAR_ITEMS.logical_name}, night {night}, a product nobody has bought or viewed yet "
            f"({terminal_text(keys['cold_product'])}: {title}):"
        )
        print(format_table(rows.head(5), SIMILAR_COLUMNS))
    return 0


RUNS_COLUMNS = ("started_at", "job", "run_date", "state", "duration_s", "run_id", "host", "pid", "message")


def print_runs(
    job: str | None, limit: int, stale_after_hours: float, config_path: str | None, overrides: Sequence[str]
) -> int:
    """``hybridrec runs``: the latest runs, newest first; 1 when gold.runs does not exist yet.

    A run killed with SIGKILL (or whose machine vanished) never recorded its end, so its row still
    says ``running``; past ``stale_after_hours`` it is shown as ``stale`` to tell it from a live one.
    """
    from pyspark.sql import functions as F

    from hybridrec import tables
    from hybridrec.reader import format_table
    from hybridrec.runs import run_state, utcnow
    from hybridrec.spark import build_spark

    cfg = load_config(config_path, [*overrides, "spark.ui_enabled=false"])
    spark = build_spark(cfg.spark)
    ref = tables.table_ref(cfg, tables.RUNS)
    if not tables.table_exists(spark, ref):
        print(f"hybridrec: {tables.RUNS.logical_name} not found at {ref}: no job has run yet", file=sys.stderr)
        return 1
    runs = tables.read_table(spark, ref)
    for name in ("host", "pid"):  # a gold.runs written before these columns existed
        if name not in runs.columns:
            runs = runs.withColumn(name, F.lit(None).cast("string"))
    if job:
        runs = runs.filter(F.col("job") == job)
    rows = runs.orderBy(F.col("started_at").desc()).limit(max(limit, 1)).toPandas()
    now, stale = utcnow(), dt.timedelta(hours=stale_after_hours)
    rows["state"] = [run_state(s, t.to_pydatetime(), now, stale) for s, t in zip(rows["status"], rows["started_at"])]
    print(
        f"{tables.RUNS.logical_name} at {ref}: latest {len(rows)} run(s)"
        + (f" of {job}" if job else "")
        + f"; `stale` = running for over {stale_after_hours:g} h (killed?)"
    )
    print(format_table(rows, RUNS_COLUMNS, max_width=60))
    return 0


def _debug(args: argparse.Namespace) -> bool:
    """``--debug`` or ``HYBRIDREC_DEBUG=1``: show the full trace of an error on the terminal."""
    return bool(getattr(args, "debug", False)) or os.environ.get("HYBRIDREC_DEBUG", "") not in ("", "0")


def _config_or_none(args: argparse.Namespace) -> Config | None:
    """The command's config, to name tables in an error; None if it cannot be loaded."""
    try:
        return load_config(getattr(args, "config", None), getattr(args, "overrides", []))
    except Exception:  # noqa: BLE001 - only used to word an error message
        return None


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (expected YYYY-MM-DD)") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hybridrec", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check", help="verify the installed stack")
    p_check.add_argument("--config", default=None)
    p_check.add_argument("--set", dest="overrides", action="append", default=[])
    p_demo = sub.add_parser("demo-data", help="write the seeded demo catalog and simulated interactions")
    p_demo.add_argument("--config", default=None)
    p_demo.add_argument("--set", dest="overrides", action="append", default=[])
    for name, flag, help_ in (
        ("recs", "--user", "print a user's recommendations of the latest (or given) night"),
        ("similar", "--product", "print a product's similar items of the latest (or given) night"),
    ):
        p_look = sub.add_parser(name, help=help_)
        p_look.add_argument(flag, dest="key", required=True)
        p_look.add_argument("--date", type=_date, default=None, help="run_date YYYY-MM-DD (default: latest)")
        p_look.add_argument("--config", default=None)
        p_look.add_argument("--set", dest="overrides", action="append", default=[])
    p_ex = sub.add_parser("examples", help="where the tables are and a few lists of one night (the demo's last step)")
    p_ex.add_argument("--date", type=_date, default=None, help="run_date YYYY-MM-DD (default: latest)")
    p_ex.add_argument("--config", default=None)
    p_ex.add_argument("--set", dest="overrides", action="append", default=[])
    p_runs = sub.add_parser("runs", help="recent job runs from gold.runs, killed ones shown as stale")
    p_runs.add_argument("--job", default=None, help="only this job (ingest, train, recommend, ...)")
    p_runs.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")
    p_runs.add_argument(
        "--stale-after-hours",
        type=float,
        default=12.0,
        help="a `running` row older than this shows as stale (default 12)",
    )
    p_runs.add_argument("--config", default=None)
    p_runs.add_argument("--set", dest="overrides", action="append", default=[])
    for p in sub.choices.values():
        p.add_argument("--debug", action="store_true", help="print the full trace of an error")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            for line in check_stack(args.config, args.overrides):
                print(line)
        elif args.command == "demo-data":
            from hybridrec.demo.raw_files import write_demo_data

            cfg = load_config(args.config, args.overrides)
            write_demo_data(cfg, progress=lambda line: print(line, flush=True))
        elif args.command in ("recs", "similar"):
            return print_lookup(args.command, args.key, args.date, args.config, args.overrides)
        elif args.command == "examples":
            return print_examples(args.date, args.config, args.overrides)
        elif args.command == "runs":
            return print_runs(args.job, args.limit, args.stale_after_hours, args.config, args.overrides)
    except ConfigError as exc:
        print(f"hybridrec: config error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # Delta failures a user can act on get one sentence
        from hybridrec.tables import explain_delta_error

        error = exc if isinstance(exc, HybridrecError) else explain_delta_error(exc, _config_or_none(args))
        if error is None:
            raise
        if _debug(args):
            traceback.print_exception(exc, file=sys.stderr)
        print(f"hybridrec: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
