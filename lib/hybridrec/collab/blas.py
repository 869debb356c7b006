"""Which BLAS and LAPACK Spark's ALS runs on, said once in the log.

Spark's ALS solves its normal equations with ``dev.ludovic.netlib``: ``BLAS.nativeBLAS`` (``dspr``,
``daxpy``) and ``LAPACK.nativeLAPACK`` (``dppsv``). "Native" means the JNI wrapper
(``JNIBLAS`` / ``JNILAPACK``) could ``dlopen`` the system's ``libblas.so.3`` / ``liblapack.so.3``
(names overridable with the JVM properties ``dev.ludovic.netlib.blas.nativeLib`` /
``...nativeLibPath``, same for ``lapack``). On Debian those are update-alternatives links, which
``libopenblas0-pthread`` points at OpenBLAS (``scripts/setup.sh`` installs it). Without them Spark
warns ``Failed to load implementation from:dev.ludovic.netlib.blas.JNIBLAS`` and falls back to
``VectorBLAS`` (Java's incubating vector API) and ``F2jLAPACK`` (Fortran translated to Java).
The recommendation step (``recommendForAllUsers``) always uses the Java BLAS.

The check asks the driver's JVM (in local mode, also the executors' JVM); on a cluster each
executor loads its own, so install the library on every node.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

NATIVE_BLAS = "dev.ludovic.netlib.blas.JNIBLAS"
NATIVE_LAPACK = "dev.ludovic.netlib.lapack.JNILAPACK"


def _module(jvm, cls: str):  # py4j objects
    """The instance of a Scala ``object`` (``BLAS$.MODULE$``), reachable from py4j only this way."""
    *package, name = cls.split(".")
    node = jvm
    for part in package:
        node = getattr(node, part)
    return getattr(getattr(node, f"{name}$"), "MODULE$")


def linear_algebra(spark: SparkSession) -> dict[str, object]:
    """The BLAS/LAPACK implementation classes ALS uses, whether they are native, and the native
    libraries the JVM has mapped (from ``/proc/<pid>/maps``, local JVMs on Linux only)."""
    jvm = spark.sparkContext._jvm  # noqa: SLF001 - py4j is the only way to ask the JVM
    blas = _module(jvm, "org.apache.spark.ml.linalg.BLAS").nativeBLAS().getClass().getName()
    lapack = _module(jvm, "org.apache.spark.mllib.linalg.LAPACK").nativeLAPACK().getClass().getName()
    info: dict[str, object] = {
        "blas": str(blas),
        "lapack": str(lapack),
        "native": blas == NATIVE_BLAS and lapack == NATIVE_LAPACK,
        "libraries": [],
    }
    try:
        pid = int(jvm.java.lang.ProcessHandle.current().pid())
        maps = Path(f"/proc/{pid}/maps").read_text(encoding="utf-8", errors="replace")
        names = {line.split()[-1] for line in maps.splitlines() if len(line.split()) >= 6}
        info["libraries"] = sorted(n for n in names if any(t in Path(n).name for t in ("blas", "lapack", "mkl")))
    except Exception:  # noqa: BLE001 - a remote JVM or no /proc: the class names still tell
        pass
    return info


def log_linear_algebra(spark: SparkSession) -> dict[str, object]:
    """Log which implementation ALS runs on (a warning for the Java fallback) and return it."""
    info = linear_algebra(spark)
    libs = ", ".join(info["libraries"]) or "no native BLAS library mapped"  # type: ignore[arg-type]
    if info["native"]:
        log.info("ALS linear algebra: native %s + %s (%s)", info["blas"], info["lapack"], libs)
    else:
        log.warning(
            "ALS linear algebra: Java fallback %s + %s (%s): no system libblas.so.3/liblapack.so.3; "
            "run scripts/setup.sh as root or apt-get install libopenblas0-pthread for native OpenBLAS",
            info["blas"],
            info["lapack"],
            libs,
        )
    return info
