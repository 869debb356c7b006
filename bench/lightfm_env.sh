#!/usr/bin/env bash
# .venv-bench: a separate environment with LightFM 1.17, the external peer of the hybrid recommender
# (bench/lightfm_fit.py). Bench only: nothing of it is a dependency of hybridrec.
#
# Why a build step: LightFM 1.17 ships only an sdist, and its setup.py does
#   __builtins__.__LIGHTFM_SETUP__ = True
# which works when setup.py runs as a script (__builtins__ is the module) but raises
# "AttributeError: 'dict' object has no attribute '__LIGHTFM_SETUP__'" under current pip/setuptools,
# which exec() setup.py through the PEP 517 backend (there __builtins__ is a dict). So this script
#   1. fetches the sdist with pip (hash-pinned); pip's own metadata step fails on exactly that line,
#      so the download runs with --no-clean in a private TMPDIR and the unpacked tree is taken from
#      there;
#   2. patches that one line to go through the builtins module, builds the wheel (C extension with
#      OpenMP, from the C files in the sdist: no Cython needed) and caches it under
#      $HYBRIDREC_CACHE/wheels/ (like scripts/setup.sh caches the Horovod wheel);
#   3. installs it with numpy/scipy/pandas/pyarrow under bench/lightfm-constraints.txt, checks that a
#      tiny model fits, and stamps the environment (a second run is a no-op).
# Needs python3.11 (PYTHON=...), a C compiler, and PyPI the first time.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3.11}
VENV=$ROOT/.venv-bench
CONSTRAINTS=bench/lightfm-constraints.txt
CACHE=${HYBRIDREC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hybridrec}
LIGHTFM_VERSION=1.17
LIGHTFM_SDIST_SHA256=2b77ada182ccd768a8d7643ab3cfcd8b6e855db09087f7cc7329bd63316697a8

t0=$(date +%s)
step() { printf '[lightfm-env %4ss] %s\n' "$(( $(date +%s) - t0 ))" "$*"; }
die() { echo "lightfm-env: error: $*" >&2; exit 1; }

key=$(cat "$CONSTRAINTS" bench/lightfm_env.sh | sha256sum | cut -c1-16)
stamp=$VENV/.bench-$key
if [[ -f $stamp ]]; then
  echo "lightfm-env: up to date (.venv-bench matches $CONSTRAINTS; delete .venv-bench to rebuild)"
  exit 0
fi

command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install Python 3.11 or set PYTHON=/path/to/python3.11"
command -v cc >/dev/null || command -v gcc >/dev/null || die "no C compiler: install gcc (Debian: apt-get install gcc)"

if [[ ! -x $VENV/bin/python ]]; then
  step "creating .venv-bench with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
step "installing the pinned build tools and numpy/scipy/pandas/pyarrow ($CONSTRAINTS)"
"${PIP[@]}" install -q -c "$CONSTRAINTS" pip setuptools wheel
"${PIP[@]}" install -q -c "$CONSTRAINTS" numpy scipy pandas pyarrow

py_tag=$("$VENV/bin/python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
wheelhouse=$CACHE/wheels/lightfm-$LIGHTFM_VERSION-$py_tag
wheel=$(ls "$wheelhouse"/lightfm-"$LIGHTFM_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
if [[ -z $wheel ]]; then
  step "building lightfm $LIGHTFM_VERSION from its sdist with the __LIGHTFM_SETUP__ fix (cached in $wheelhouse)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/tmp"
  echo "lightfm==$LIGHTFM_VERSION --hash=sha256:$LIGHTFM_SDIST_SHA256" >"$work/requirement.txt"
  # Expected to fail at pip's metadata step (the bug being worked around); the tree stays (--no-clean).
  TMPDIR=$work/tmp "${PIP[@]}" download -q --no-clean --no-deps --no-build-isolation --no-binary :all: \
    --require-hashes -r "$work/requirement.txt" -d "$work/download" >"$work/download.log" 2>&1 || true
  src=$(dirname "$(find "$work/tmp" -maxdepth 3 -path '*lightfm*' -name setup.py | head -n 1)")
  [[ -f $src/setup.py && -f $src/PKG-INFO ]] \
    || { tail -n 30 "$work/download.log" >&2; die "pip did not fetch the lightfm $LIGHTFM_VERSION sdist"; }
  grep -qx "Version: $LIGHTFM_VERSION" "$src/PKG-INFO" || die "the fetched sdist is not lightfm $LIGHTFM_VERSION"
  grep -qx '__builtins__.__LIGHTFM_SETUP__ = True' "$src/setup.py" \
    || die "lightfm's setup.py no longer has the line this script patches; review the workaround"
  sed -i 's/^__builtins__\.__LIGHTFM_SETUP__ = True$/import builtins; builtins.__LIGHTFM_SETUP__ = True  # patched by bench\/lightfm_env.sh/' \
    "$src/setup.py"
  "${PIP[@]}" wheel -q --no-deps --no-build-isolation -w "$work/wheel" "$src" >"$work/build.log" 2>&1 \
    || { tail -n 40 "$work/build.log" >&2; die "the lightfm build failed (compiler output above); it needs gcc"; }
  mkdir -p "$wheelhouse"
  mv "$work"/wheel/lightfm-*.whl "$wheelhouse"/
  wheel=$(ls "$wheelhouse"/lightfm-"$LIGHTFM_VERSION"-*.whl | head -n 1)
else
  step "using cached lightfm wheel $(basename "$wheel")"
fi
"${PIP[@]}" install -q -c "$CONSTRAINTS" "$wheel"
"${PIP[@]}" check >/dev/null || { "${PIP[@]}" check; die "pip check found broken requirements in .venv-bench"; }

step "checking that LightFM fits (WARP, OpenMP build)"
"$VENV/bin/python" - <<'PY'
import numpy as np
import scipy.sparse as sp
from lightfm import LightFM, __version__
import lightfm._lightfm_fast_openmp  # noqa: F401 - the multi-threaded build, not the fallback

x = sp.coo_matrix(np.eye(6, dtype=np.float32))
model = LightFM(no_components=4, loss="warp", random_state=0).fit(x, epochs=3, num_threads=2)
scores = model.predict(np.zeros(6, dtype=np.int32), np.arange(6, dtype=np.int32))
assert np.isfinite(scores).all()
print(f"lightfm {__version__} ok (OpenMP build)")
PY

rm -f "$VENV"/.bench-*
touch "$stamp"
step "done: .venv-bench/bin/python bench/lightfm_fit.py --help"
