#!/usr/bin/env bash
# One-command, idempotent setup of the hybridrec stack (run by `make setup`, `make test`, `make demo`):
#   1. .venv with every Python package pinned by constraints.txt, and hybridrec installed editable
#   2. the Horovod wheel (TensorFlow + Gloo + Spark; no MPI/PyTorch/MXNet), built once per TensorFlow
#      version into a wheelhouse under $HYBRIDREC_CACHE and reused afterwards
#   3. the Delta Lake jars for the pinned delta-spark, fetched with Maven (cached in ~/.m2) into
#      .venv/delta-jars and listed in the venv's spark-defaults.conf, so runs need no network
#   4. loopback-only networking for Spark started from this venv (spark-env.sh)
#   5. checks: `horovodrun --check-build` and `hybridrec check` (Spark + Delta round trip)
#   6. (every run, own stamp) .venv-reader, the Spark-free reader environment: scripts/reader_env.sh
#   0. (every run, before the stamp: a system library outside .venv) native BLAS/LAPACK for Spark's
#      ALS: OpenBLAS from apt when root and missing, else a warning that ALS falls back to Java BLAS
#      and headless Chromium for the evaluation report's browser test and screenshot: Debian's chromium
#      when root and missing, else a warning that the test is skipped
# A stamp keyed by the inputs of this script makes a second run a no-op (besides the BLAS check).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3.11}
VENV=$ROOT/.venv
CACHE=${HYBRIDREC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hybridrec}
HOROVOD_VERSION=0.28.1

t0=$(date +%s)
step() { printf '[setup %4ss] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }
die() { echo "setup: error: $*" >&2; exit 1; }

# 0. native BLAS/LAPACK for Spark's ALS. Spark (dev.ludovic.netlib) dlopens libblas.so.3 and
#    liblapack.so.3; Debian's libopenblas0-pthread provides both (update-alternatives). Without them
#    ALS runs on Java BLAS (VectorBLAS/F2jLAPACK) and Spark logs "Failed to load implementation".
has_native_blas() {
  local cache
  cache=$( (ldconfig -p || /sbin/ldconfig -p) 2>/dev/null || true)
  grep -q 'libblas\.so\.3 ' <<<"$cache" && grep -q 'liblapack\.so\.3 ' <<<"$cache"
}
if ! has_native_blas; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    step "installing OpenBLAS (libopenblas0-pthread) so that Spark's ALS uses native BLAS/LAPACK"
    apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libopenblas0-pthread; }
    if ! apt_out=$( { apt_install || { apt-get update -q && apt_install; }; } 2>&1); then
      tail -n 20 <<<"$apt_out" >&2
      echo "setup: warning: could not install libopenblas0-pthread; Spark's ALS will use Java BLAS (slower)" >&2
    fi
  else
    echo "setup: warning: no system libblas.so.3/liblapack.so.3, so Spark's ALS will use Java BLAS (slower);" \
      "for native OpenBLAS run as root: apt-get install libopenblas0-pthread" >&2
  fi
fi

# 0b. headless Chromium (Debian's package) for tests/e2e/test_report_browser.py and the screenshot of
#     report/: the evaluation renders its report in it (hybridrec.evaluation.browser).
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null && ! command -v google-chrome >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    step "installing Chromium (Debian package chromium) to render the evaluation report headless"
    chromium_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; }
    if ! apt_out=$( { chromium_install || { apt-get update -q && chromium_install; }; } 2>&1); then
      tail -n 20 <<<"$apt_out" >&2
      echo "setup: warning: could not install chromium; the report's browser test will be skipped (no browser)" >&2
    fi
  else
    echo "setup: warning: no Chromium on the PATH and not root, so the report's browser test will be skipped" \
      "and the report gets no screenshot; to have them: apt-get install chromium" >&2
  fi
fi

key=$(cat constraints.txt requirements.txt setup.py scripts/setup.sh scripts/delta-jars/pom.xml | sha256sum | cut -c1-16)
stamp=$VENV/.setup-$key
if [[ -f $stamp ]]; then
  echo "setup: up to date (.venv matches constraints.txt; delete .venv to rebuild)"
  PYTHON=$PYTHON bash scripts/reader_env.sh
  exit 0
fi

command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install Python 3.11 or set PYTHON=/path/to/python3.11"
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
  || die "$PYTHON is not Python 3.11 (TensorFlow 2.15 and the Horovod build need 3.11)"
command -v java >/dev/null || die "java not found: install OpenJDK 17 (Debian: apt-get install openjdk-17-jdk-headless)"
command -v mvn >/dev/null || die "mvn not found: install Maven (Debian: apt-get install maven)"
command -v c++ >/dev/null || die "no C++ compiler: install g++ and cmake (Debian: apt-get install g++ cmake)"
command -v cmake >/dev/null || die "cmake not found: install cmake (Debian: apt-get install cmake)"

pin() { sed -n "s/^$1==\(.*\)$/\1/p" constraints.txt; }
TF_VERSION=$(pin tensorflow-cpu)
DELTA_VERSION=$(pin delta-spark)
[[ -n $TF_VERSION && -n $DELTA_VERSION ]] || die "constraints.txt must pin tensorflow-cpu and delta-spark"

# 1. virtual environment and pinned packages
if [[ ! -x $VENV/bin/python ]]; then
  step "creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
step "installing pinned packages (constraints.txt)"
"${PIP[@]}" install -q -c constraints.txt pip setuptools wheel
"${PIP[@]}" install -q -c constraints.txt -r requirements.txt
"${PIP[@]}" install -q -c constraints.txt --no-deps --no-build-isolation -e .

# 2. Horovod, compiled against the installed TensorFlow, cached per TensorFlow version
wheelhouse=$CACHE/wheels/tensorflow-cpu-$TF_VERSION
wheel=$(ls "$wheelhouse"/horovod-"$HOROVOD_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
if [[ -z $wheel ]]; then
  step "building horovod $HOROVOD_VERSION against tensorflow-cpu $TF_VERSION (takes a few minutes; cached in $wheelhouse)"
  mkdir -p "$wheelhouse"
  build_dir=$(mktemp -d)
  (
    export PATH=$VENV/bin:$PATH
    export HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 \
           HOROVOD_WITHOUT_MPI=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1
    export MAKEFLAGS=-j$(nproc)
    "${PIP[@]}" wheel -q --no-deps --no-build-isolation -c constraints.txt \
      -w "$build_dir" "horovod==$HOROVOD_VERSION"
  ) || die "the horovod build failed (see the compiler output above); it needs g++, cmake and the pinned tensorflow-cpu"
  mv "$build_dir"/horovod-*.whl "$wheelhouse"/
  rm -rf "$build_dir"
  wheel=$(ls "$wheelhouse"/horovod-"$HOROVOD_VERSION"-*.whl | head -n 1)
else
  step "using cached horovod wheel $(basename "$wheel")"
fi
"${PIP[@]}" install -q --no-deps --force-reinstall "$wheel"
"${PIP[@]}" check >/dev/null || { "${PIP[@]}" check; die "pip check found broken requirements"; }

# 3. Delta Lake jars from Maven Central (Spark and Scala are provided by pyspark)
spark_home=$("$VENV/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
jars_dir=$VENV/delta-jars
step "fetching Delta Lake $DELTA_VERSION jars with Maven (cached in ~/.m2)"
rm -rf "$jars_dir"
mvn -B -Dstyle.color=never -f scripts/delta-jars/pom.xml -Ddelta.version="$DELTA_VERSION" \
  dependency:copy-dependencies -DincludeScope=runtime -DexcludeGroupIds=org.scala-lang,org.antlr \
  -DoutputDirectory="$jars_dir" >"$VENV/maven.log" 2>&1 \
  || { tail -n 40 "$VENV/maven.log"; die "Maven could not fetch io.delta:delta-spark_2.13:$DELTA_VERSION"; }
jars=$(ls "$jars_dir"/*.jar | paste -sd, -)
[[ $jars == *delta-spark_2.13-$DELTA_VERSION.jar* ]] || die "delta-spark jar missing in $jars_dir"

# 4. Spark defaults for this venv: Delta from local jars, loopback only, the venv's Python
mkdir -p "$spark_home/conf"
cat > "$spark_home/conf/spark-defaults.conf" <<EOF
# Written by scripts/setup.sh: Delta Lake from local jars (no Ivy download at run time).
spark.jars                      $jars
spark.sql.extensions            io.delta.sql.DeltaSparkSessionExtension
spark.sql.catalog.spark_catalog org.apache.spark.sql.delta.catalog.DeltaCatalog
spark.driver.host               127.0.0.1
spark.driver.bindAddress        127.0.0.1
spark.ui.showConsoleProgress    false
spark.driver.memory             4g
EOF
cat > "$spark_home/conf/log4j2.properties" <<'EOF'
# Written by scripts/setup.sh: Spark's own log at WARN, so job progress lines stay readable.
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
EOF
cat > "$spark_home/conf/spark-env.sh" <<EOF
# Written by scripts/setup.sh: Spark started from this venv binds and talks on loopback only.
# OpenBLAS single-threaded inside Spark: tasks already use every core (Spark's linear-algebra guide).
export SPARK_LOCAL_IP=\${SPARK_LOCAL_IP:-127.0.0.1}
export OPENBLAS_NUM_THREADS=\${OPENBLAS_NUM_THREADS:-1}
export PYSPARK_PYTHON=\${PYSPARK_PYTHON:-$VENV/bin/python}
export PYSPARK_DRIVER_PYTHON=\${PYSPARK_DRIVER_PYTHON:-$VENV/bin/python}
EOF

# 5. checks
step "checking the Horovod build"
TF_CPP_MIN_LOG_LEVEL=2 "$VENV/bin/horovodrun" --check-build >"$VENV/horovod-check-build.txt" 2>&1 \
  || { cat "$VENV/horovod-check-build.txt"; die "horovodrun --check-build failed"; }
grep -q '\[X\] Gloo' "$VENV/horovod-check-build.txt" \
  || { cat "$VENV/horovod-check-build.txt"; die "horovod was built without Gloo"; }
step "checking Spark + Delta (hybridrec check)"
SPARK_LOCAL_IP=127.0.0.1 "$VENV/bin/hybridrec" check --set spark.master='local[1]' \
  >"$VENV/hybridrec-check.log" 2>&1 || { tail -n 30 "$VENV/hybridrec-check.log"; die "hybridrec check failed"; }
grep -E '^(pyspark|horovod|delta)' "$VENV/hybridrec-check.log"

rm -f "$VENV"/.setup-*
touch "$stamp"

# 6. the reader's own small environment (idempotent, with its own stamp)
step "Spark-free reader environment (.venv-reader)"
PYTHON=$PYTHON bash scripts/reader_env.sh
step "done"
