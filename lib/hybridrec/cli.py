"""The ``hybridrec`` command: small operational commands next to the Spark jobs in ``jobs/``.

    hybridrec check [--config conf/local.yaml]   verify the installed stack (Spark, Delta, Horovod)
    hybridrec demo-data [--config ...] [--set demo.n_products=500]
                                                 write the seeded demo catalog and simulated interactions
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from typing import Sequence

from hybridrec.config import ConfigError, load_config
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hybridrec", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check", help="verify the installed stack")
    p_check.add_argument("--config", default=None)
    p_check.add_argument("--set", dest="overrides", action="append", default=[])
    p_demo = sub.add_parser("demo-data", help="write the seeded demo catalog and simulated interactions")
    p_demo.add_argument("--config", default=None)
    p_demo.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            for line in check_stack(args.config, args.overrides):
                print(line)
        elif args.command == "demo-data":
            from hybridrec.catalog.demo_data import write_demo_data

            cfg = load_config(args.config, args.overrides)
            write_demo_data(cfg, progress=lambda line: print(line, flush=True))
    except ConfigError as exc:
        print(f"hybridrec: config error: {exc}", file=sys.stderr)
        return 2
    except HybridrecError as exc:
        print(f"hybridrec: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
