#!/usr/bin/env bash
# `make demo`: the whole chain on the embedded defaults, stage by stage, one progress line each:
# demo data → ingest → preprocess → train → recommend (the nightly job) → evaluate → examples.
# Uses the real fashion catalog (../shared/data/fashion, read in place) when it is there, else a
# generated catalog; interactions come from the seeded simulator (a simulation, see docs/demo.md).
#   make demo                  full profile: fashion catalog, 10,000 simulated users, short training
#   make demo PROFILE=quick    a few minutes: generated catalog (2,000 products, 1,000 users), tiny training
#   make demo CATALOG=retail   real behaviour: Online Retail (../shared/data/online-retail, read in
#                              place; conf/retail.yaml), no demo data stage, text model only
# Extra arguments go to every stage (e.g. `bash scripts/demo.sh --set spark.driver_memory=8g`).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck disable=SC1091
source .venv/bin/activate
export SPARK_LOCAL_IP=127.0.0.1 TF_CPP_MIN_LOG_LEVEL=2 HOROVOD_GLOO_IFACE=lo
export PYSPARK_PYTHON="$ROOT/.venv/bin/python" PYSPARK_DRIVER_PYTHON="$ROOT/.venv/bin/python"

PROFILE=${PROFILE:-full}
CATALOG=${CATALOG:-}
DEMO_DATA=1
if [[ -n $CATALOG ]]; then
  case $CATALOG in
    retail)
      if [[ ! -f ../shared/data/online-retail/interactions.csv.gz ]]; then
        echo "demo: CATALOG=retail needs ../shared/data/online-retail (products.csv, interactions.csv.gz) beside the repository" >&2
        exit 2
      fi
      # Real interactions: nothing to simulate. The log ends 2011-10-31: the night after it.
      DEMO_CONFIG=${DEMO_CONFIG:-conf/retail.yaml}
      DEMO_DATA=0
      RUN_DATE=${RUN_DATE:-2011-11-01}
      ;;
    *) echo "demo: CATALOG must be retail (or unset for the simulated demo), got $CATALOG" >&2; exit 2 ;;
  esac
fi
# The simulated window ends on demo.reference_date (2026-01-01): the night after it.
RUN_DATE=${RUN_DATE:-2026-01-01}
# CATALOG=retail trains on text only (no photos, so no image size to set) with the config's 20
# epochs: on 3,659 short titles an epoch takes about a second, and 3 epochs left the text model at
# test accuracy 0.23 where 20 reach 0.96.
if [[ $CATALOG == retail ]]; then PROFILE=retail; fi
case $PROFILE in
  retail)
    PREP_SET=()
    TRAIN_SET=()
    ;;
  full)
    if [[ -z ${DEMO_CONFIG:-} ]]; then
      if [[ -f ../shared/data/fashion/styles.csv ]]; then DEMO_CONFIG=conf/fashion.yaml; else DEMO_CONFIG=conf/local.yaml; fi
    fi
    # Training for a demo: photos at 32 px instead of 64 and 3 epochs instead of 20 (a 64 px epoch of
    # the CNN takes ~2.5 min on 2 cores, a 32 px one ~45 s); the model quality figures in docs/results.md
    # use 64 px, 20 epochs.
    PREP_SET=(--set features.image_size=32)  # every stage from preprocess on: the features say 32 px
    TRAIN_SET=(--set train.epochs=3)
    ;;
  quick)
    DEMO_CONFIG=${DEMO_CONFIG:-conf/local.yaml}
    PREP_SET=(--set features.image_size=32)
    TRAIN_SET=(--set train.epochs=2 --set train.max_steps_per_epoch=15 --set train.fusion_epochs=5)
    ;;
  *) echo "demo: PROFILE must be full or quick, got $PROFILE" >&2; exit 2 ;;
esac
echo "demo: profile $PROFILE, config $DEMO_CONFIG $*"

t0=$(date +%s)
stage() {
  local name=$1; shift
  local s; s=$(date +%s)
  echo "demo: [$name] $*"
  "$@" || { echo "demo: stage $name failed (exit $?)" >&2; exit 1; }
  echo "demo: [$name] done in $(( $(date +%s) - s ))s"
}

if (( DEMO_DATA )); then
  stage demo-data hybridrec demo-data --config "$DEMO_CONFIG" "$@"
fi
stage ingest spark-submit jobs/ingest.py --config "$DEMO_CONFIG" "$@"
stage preprocess spark-submit jobs/preprocess.py --config "$DEMO_CONFIG" ${PREP_SET[@]+"${PREP_SET[@]}"} "$@"
stage train spark-submit jobs/train.py --config "$DEMO_CONFIG" ${PREP_SET[@]+"${PREP_SET[@]}"} ${TRAIN_SET[@]+"${TRAIN_SET[@]}"} "$@"
# The nightly ALS evaluation (a second fit on a holdout) is left to the evaluation step.
stage recommend spark-submit jobs/recommend.py --config "$DEMO_CONFIG" --run-date "$RUN_DATE" --set als.evaluate=false ${PREP_SET[@]+"${PREP_SET[@]}"} "$@"
# The offline evaluation: a backtest 14 days before the data's end (or evaluate.cutoff)
# -> <paths.report>/<cutoff>/index.html
stage evaluate spark-submit jobs/evaluate.py --config "$DEMO_CONFIG" ${PREP_SET[@]+"${PREP_SET[@]}"} "$@"
stage examples hybridrec examples --config "$DEMO_CONFIG" "$@"

echo "demo: finished in $(( $(date +%s) - t0 ))s"
REPORT=$(python -c "import sys; from hybridrec.config import load_config; print(load_config(sys.argv[1]).paths.report)" "$DEMO_CONFIG")
# One report per cutoff (<paths.report>/<YYYY-MM-DD>/): the one the evaluate stage just wrote is the newest.
REPORT_INDEX=$(ls -t "$REPORT"/*/index.html 2>/dev/null | head -n 1 || true)
echo "demo: evaluation report: ${REPORT_INDEX:-$REPORT/<cutoff>/index.html} (metrics.json beside it)"
echo "demo: read a list with: hybridrec recs --config $DEMO_CONFIG --user <user_id>"
