#!/usr/bin/env bash
# Idempotent setup of .venv-reader, the small Spark-free environment of hybridrec.reader (run by
# `make reader-env` and by scripts/setup.sh):
#   1. .venv-reader (Python 3.11) with exactly the packages pinned in reader/constraints.txt
#      (deltalake, pyarrow >= 21, pandas; no Spark, no Java), wheels only
#   2. lib/ on its import path through a .pth file, so `python -m hybridrec.reader` runs from the
#      work tree without building or installing hybridrec (whose Spark requirements it must not get)
#   3. checks: `pip check` and an import of hybridrec.reader with deltalake
# The environment is rebuilt from scratch when the pins, this script or the repository path change;
# a stamp keyed by them makes a second run a no-op.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3.11}
VENV=$ROOT/.venv-reader

die() { echo "reader-env: error: $*" >&2; exit 1; }

key=$( { cat reader/requirements.txt reader/constraints.txt scripts/reader_env.sh; echo "$ROOT"; } \
  | sha256sum | cut -c1-16)
stamp=$VENV/.reader-env-$key
if [[ -f $stamp && -x $VENV/bin/python ]]; then
  echo "reader-env: up to date (.venv-reader matches reader/constraints.txt)"
  exit 0
fi

command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install Python 3.11 or set PYTHON=/path/to/python3.11"
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
  || die "$PYTHON is not Python 3.11 (reader/constraints.txt pins wheels for 3.11)"

echo "reader-env: creating .venv-reader with $("$PYTHON" --version) and reader/constraints.txt"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install -q --only-binary=:all: -c reader/constraints.txt -r reader/requirements.txt \
  || die "pip could not install reader/requirements.txt under reader/constraints.txt"
"${PIP[@]}" check >/dev/null || { "${PIP[@]}" check; die "pip check found broken requirements"; }

# Every installed distribution must be pinned: an unpinned transitive package would float.
unpinned=$("$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
import re

norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
pins = {norm(line.split("==")[0]) for line in open("reader/constraints.txt")
        if "==" in line and not line.lstrip().startswith("#")}
bundled = {"pip", "setuptools", "wheel"}  # come with the venv itself
installed = {norm(d.metadata["Name"]) for d in md.distributions()}
print(" ".join(sorted(installed - pins - bundled)))
EOF
)
[[ -z $unpinned ]] || die "installed but not pinned in reader/constraints.txt: $unpinned"

site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$ROOT/lib" > "$site/hybridrec-lib.pth"
"$VENV/bin/python" -c 'import deltalake, pandas, pyarrow, hybridrec.reader, sys
assert "pyspark" not in sys.modules
print(f"reader-env: deltalake {deltalake.__version__}, pyarrow {pyarrow.__version__}, pandas {pandas.__version__}")' \
  || die "hybridrec.reader does not import in .venv-reader"

rm -f "$VENV"/.reader-env-*
touch "$stamp"
