#!/usr/bin/env bash
# .venv-bench for the Online Retail peers (bench/bench_retail.py): LightFM 1.17 (built by
# bench/lightfm_env.sh, which this script runs first) plus implicit 0.7.3 (CPU ALS), pinned in
# bench/peers-constraints.txt under the same numpy/scipy as LightFM. Bench only: nothing here is a
# dependency of hybridrec. A second run is a no-op (stamp .venv-bench/.peers-<hash>).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=$ROOT/.venv-bench

bash bench/lightfm_env.sh
key=$(cat bench/lightfm-constraints.txt bench/peers-constraints.txt bench/peers_env.sh | sha256sum | cut -c1-16)
stamp=$VENV/.peers-$key
if [[ -f $stamp ]]; then
  echo "peers-env: up to date (implicit in .venv-bench matches bench/peers-constraints.txt)"
  exit 0
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
echo "[peers-env] installing implicit (bench/peers-constraints.txt)"
"${PIP[@]}" install -q --only-binary implicit -c bench/lightfm-constraints.txt -c bench/peers-constraints.txt implicit
"${PIP[@]}" check >/dev/null || { "${PIP[@]}" check; echo "peers-env: pip check failed" >&2; exit 1; }
"$VENV/bin/python" - <<'PY'
import numpy as np
import scipy.sparse as sp
import implicit
from implicit.cpu.als import AlternatingLeastSquares

x = sp.csr_matrix(np.eye(6, dtype=np.float32))
model = AlternatingLeastSquares(factors=4, iterations=2, random_state=0, num_threads=1)
model.fit(x, show_progress=False)
ids, scores = model.recommend(np.arange(6), x, N=3, filter_already_liked_items=True)
assert not (ids == np.arange(6)[:, None]).any() and np.isfinite(scores).all()
print(f"implicit {implicit.__version__} ok")
PY
rm -f "$VENV"/.peers-*
touch "$stamp"
echo "[peers-env] done"
