#!/usr/bin/env bash
# `make demo`: the pipeline on the embedded defaults, stage by stage, one progress line each.
# Uses the real fashion catalog (../shared/data/fashion, read in place) when it is there, else a
# generated catalog; interactions come from the seeded simulator (a simulation, see README).
# Training, ALS and the nightly recommendations join the chain as their issues land.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck disable=SC1091
source .venv/bin/activate
export SPARK_LOCAL_IP=127.0.0.1 TF_CPP_MIN_LOG_LEVEL=2

if [[ -z ${DEMO_CONFIG:-} ]]; then
  if [[ -f ../shared/data/fashion/styles.csv ]]; then
    DEMO_CONFIG=conf/fashion.yaml
  else
    DEMO_CONFIG=conf/local.yaml
  fi
fi
echo "demo: config $DEMO_CONFIG $*"

t0=$(date +%s)
stage() {
  local name=$1; shift
  local s; s=$(date +%s)
  echo "demo: [$name] $*"
  "$@" || { echo "demo: stage $name failed (exit $?)" >&2; exit 1; }
  echo "demo: [$name] done in $(( $(date +%s) - s ))s"
}

stage demo-data hybridrec demo-data --config "$DEMO_CONFIG" "$@"
stage ingest spark-submit jobs/ingest.py --config "$DEMO_CONFIG" "$@"
stage preprocess spark-submit jobs/preprocess.py --config "$DEMO_CONFIG" "$@"

echo "demo: finished in $(( $(date +%s) - t0 ))s"
echo "demo: tables under the warehouse folder of $DEMO_CONFIG; features and manifest.json under its features folder"
echo "demo: next stages (training, ALS, nightly recommendations, evaluation) arrive with their issues"
