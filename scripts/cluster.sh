#!/usr/bin/env bash
# A Spark standalone cluster on the loopback interface, from the pinned pyspark's own spark-class:
# one master (spark://127.0.0.1:7077) and N workers (default 2, 1 core and 3g each), for
# `make test-cluster` and for trying the jobs on a real multi-process cluster:
#
#   bash scripts/cluster.sh start          # master + workers; returns once the master lists them ALIVE
#   spark-submit --master spark://127.0.0.1:7077 jobs/ingest.py --config conf/local.yaml
#   bash scripts/cluster.sh status         # master and workers as the master sees them (exit 1 unless all ALIVE)
#   bash scripts/cluster.sh kill-worker 2  # SIGKILL worker 2 and its executors: a node lost mid-job
#   bash scripts/cluster.sh stop           # stops workers (and their executors) and the master
#
# Everything binds to 127.0.0.1. State lives under $HYBRIDREC_CLUSTER_DIR (default ./data/cluster):
#   logs/ (master.out, worker-<i>.out; SPARK_LOG_DIR)  pids/ (master.pid, worker-<i>.pid; SPARK_PID_DIR)
#   worker-<i>/ (SPARK_WORKER_DIR: each executor's stdout/stderr under <app id>/<executor id>/)
#   cluster.json (master URL, UI addresses and each worker's pid, UI port and work dir)
# Settings (environment): HYBRIDREC_CLUSTER_WORKERS (2), HYBRIDREC_WORKER_CORES (1),
# HYBRIDREC_WORKER_MEMORY (3g), HYBRIDREC_MASTER_PORT (7077), HYBRIDREC_MASTER_UI_PORT (8080),
# HYBRIDREC_WORKER_UI_PORT (8081: worker i gets 8080 + i), HYBRIDREC_CLUSTER_TIMEOUT (120 s),
# SPARK_DAEMON_MEMORY (512m for the master and worker daemons themselves).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOST=127.0.0.1
RUN_DIR=${HYBRIDREC_CLUSTER_DIR:-$ROOT/data/cluster}
WORKERS=${HYBRIDREC_CLUSTER_WORKERS:-2}
WORKER_CORES=${HYBRIDREC_WORKER_CORES:-1}
WORKER_MEMORY=${HYBRIDREC_WORKER_MEMORY:-3g}
MASTER_PORT=${HYBRIDREC_MASTER_PORT:-7077}
MASTER_UI_PORT=${HYBRIDREC_MASTER_UI_PORT:-8080}
WORKER_UI_PORT=${HYBRIDREC_WORKER_UI_PORT:-8081}
TIMEOUT=${HYBRIDREC_CLUSTER_TIMEOUT:-120}
PYTHON=${PYSPARK_PYTHON:-$ROOT/.venv/bin/python}

LOG_DIR=$RUN_DIR/logs
PID_DIR=$RUN_DIR/pids
MASTER_URL=spark://$HOST:$MASTER_PORT
MASTER_UI=http://$HOST:$MASTER_UI_PORT

die() { echo "cluster: error: $*" >&2; exit 1; }
say() { echo "cluster: $*"; }

usage() {
  sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 2
}

[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || die "HYBRIDREC_CLUSTER_WORKERS must be a positive number, got '$WORKERS'"
[[ $WORKER_CORES =~ ^[1-9][0-9]*$ ]] || die "HYBRIDREC_WORKER_CORES must be a positive number, got '$WORKER_CORES'"
for p in "$MASTER_PORT" "$MASTER_UI_PORT" "$WORKER_UI_PORT"; do
  [[ $p =~ ^[0-9]+$ ]] || die "ports must be numbers, got '$p'"
done

spark_home() {
  [[ -x $PYTHON ]] || die "no Python at $PYTHON: run \`make setup\` (or set PYSPARK_PYTHON to the venv's python)"
  "$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null \
    || die "pyspark is not importable with $PYTHON: run \`make setup\`"
}

pid_of() { [[ -f $PID_DIR/$1.pid ]] && cat "$PID_DIR/$1.pid" || true; }
alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# Every process below $1 (executors, their Python workers), deepest first.
descendants() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null || true); do
    descendants "$child"
    echo "$child"
  done
}

port_taken() {
  "$PYTHON" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
finally:
    s.close()
sys.exit(1)
EOF
}

# The master's JSON (http://127.0.0.1:<ui>/json), or nothing.
master_json() { curl -sfL --max-time 5 "$MASTER_UI/json/" 2>/dev/null || true; }

# Number of our workers (by UI port) the master lists as ALIVE.
alive_workers() {
  master_json | "$PYTHON" -c '
import json, sys
raw = sys.stdin.read()
ports = {str(int(sys.argv[1]) + i) for i in range(int(sys.argv[2]))}
try:
    workers = json.loads(raw).get("workers", []) if raw else []
except ValueError:
    workers = []
print(sum(1 for w in workers if w.get("state") == "ALIVE" and w.get("webuiaddress", "").rsplit(":", 1)[-1] in ports))
' "$WORKER_UI_PORT" "$WORKERS"
}

write_state() {
  {
    printf '{\n  "master_url": "%s",\n  "master_ui": "%s",\n  "master_pid": %s,\n  "workers": [\n' \
      "$MASTER_URL" "$MASTER_UI" "$(pid_of master)"
    local i sep=","
    for ((i = 1; i <= WORKERS; i++)); do
      [[ $i -eq $WORKERS ]] && sep=""
      printf '    {"index": %d, "pid": %s, "ui_port": %d, "work_dir": "%s", "log": "%s"}%s\n' \
        "$i" "$(pid_of "worker-$i")" "$((WORKER_UI_PORT + i - 1))" "$RUN_DIR/worker-$i" \
        "$LOG_DIR/worker-$i.out" "$sep"
    done
    printf '  ]\n}\n'
  } >"$RUN_DIR/cluster.json"
}

tail_log() { [[ -f $1 ]] && { echo "--- last lines of $1:" >&2; tail -n 25 "$1" >&2; } || true; }

launch() {  # launch <name> <class> <args...>: detached, pid recorded (spark-class execs java)
  local name=$1; shift
  ( cd "$RUN_DIR" && exec setsid nohup "$SPARK_HOME/bin/spark-class" "$@" >"$LOG_DIR/$name.out" 2>&1 </dev/null ) &
  echo $! >"$PID_DIR/$name.pid"
}

start() {
  SPARK_HOME=$(spark_home)
  [[ -x $SPARK_HOME/bin/spark-class ]] || die "no spark-class in $SPARK_HOME/bin: reinstall pyspark (\`make setup\`)"
  command -v java >/dev/null || die "java not found: install OpenJDK 17 (Debian: apt-get install openjdk-17-jdk-headless)"
  command -v curl >/dev/null || die "curl not found: it polls the master's JSON (apt-get install curl)"
  mkdir -p "$LOG_DIR" "$PID_DIR"
  export SPARK_HOME SPARK_LOCAL_IP=$HOST SPARK_LOG_DIR=$LOG_DIR SPARK_PID_DIR=$PID_DIR
  export SPARK_DAEMON_MEMORY=${SPARK_DAEMON_MEMORY:-512m}
  export SPARK_MASTER_HOST=$HOST SPARK_MASTER_PORT=$MASTER_PORT SPARK_MASTER_WEBUI_PORT=$MASTER_UI_PORT

  # A failed start leaves nothing running.
  trap 'rc=$?; if [[ $rc -ne 0 ]]; then echo "cluster: start failed, stopping what was started" >&2; stop >&2 || true; fi' EXIT

  if alive "$(pid_of master)"; then
    say "master already running (pid $(pid_of master)) at $MASTER_URL"
  else
    port_taken "$MASTER_PORT" && die "port $HOST:$MASTER_PORT is taken by another process: stop it or set HYBRIDREC_MASTER_PORT"
    port_taken "$MASTER_UI_PORT" && die "port $HOST:$MASTER_UI_PORT is taken by another process: stop it or set HYBRIDREC_MASTER_UI_PORT"
    launch master org.apache.spark.deploy.master.Master \
      --host "$HOST" --port "$MASTER_PORT" --webui-port "$MASTER_UI_PORT"
    say "master pid $(pid_of master) starting at $MASTER_URL (UI $MASTER_UI)"
  fi
  local deadline=$((SECONDS + TIMEOUT))
  until master_json | grep -q '"status" *: *"ALIVE"'; do
    alive "$(pid_of master)" || { tail_log "$LOG_DIR/master.out"; die "the master exited during start-up (log: $LOG_DIR/master.out)"; }
    ((SECONDS < deadline)) || { tail_log "$LOG_DIR/master.out"; die "the master did not report ALIVE at $MASTER_UI/json within ${TIMEOUT}s"; }
    sleep 1
  done

  local i port
  for ((i = 1; i <= WORKERS; i++)); do
    port=$((WORKER_UI_PORT + i - 1))
    if alive "$(pid_of "worker-$i")"; then
      say "worker $i already running (pid $(pid_of "worker-$i"))"
      continue
    fi
    port_taken "$port" && die "port $HOST:$port (worker $i UI) is taken: stop that process or set HYBRIDREC_WORKER_UI_PORT"
    mkdir -p "$RUN_DIR/worker-$i"
    SPARK_WORKER_DIR=$RUN_DIR/worker-$i launch "worker-$i" org.apache.spark.deploy.worker.Worker \
      --host "$HOST" --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" --webui-port "$port" \
      --work-dir "$RUN_DIR/worker-$i" "$MASTER_URL"
    say "worker $i pid $(pid_of "worker-$i"): $WORKER_CORES core(s), $WORKER_MEMORY, UI http://$HOST:$port"
  done
  local n=0
  while :; do
    n=$(alive_workers)
    [[ $n -ge $WORKERS ]] && break
    for ((i = 1; i <= WORKERS; i++)); do
      alive "$(pid_of "worker-$i")" || { tail_log "$LOG_DIR/worker-$i.out"; die "worker $i exited during start-up (log: $LOG_DIR/worker-$i.out)"; }
    done
    ((SECONDS < deadline)) || { for ((i = 1; i <= WORKERS; i++)); do tail_log "$LOG_DIR/worker-$i.out"; done
      die "only $n of $WORKERS workers registered ALIVE with the master within ${TIMEOUT}s"; }
    sleep 1
  done
  write_state
  trap - EXIT
  say "ready: $MASTER_URL with $n ALIVE worker(s); state in $RUN_DIR/cluster.json"
}

stop_pid() {  # stop_pid <name>: TERM the daemon and its executors, KILL what is left after 15 s
  local name=$1 pid procs p
  pid=$(pid_of "$name")
  if alive "$pid"; then
    procs="$(descendants "$pid") $pid"
    kill -TERM $procs 2>/dev/null || true
    for _ in $(seq 30); do
      local left=""
      for p in $procs; do alive "$p" && left="$left $p"; done
      [[ -z $left ]] && break
      sleep 0.5
    done
    for p in $procs; do alive "$p" && kill -KILL "$p" 2>/dev/null || true; done
    say "stopped $name (pid $pid)"
  fi
  rm -f "$PID_DIR/$name.pid"
}

stop() {
  local f name
  for f in "$PID_DIR"/worker-*.pid; do
    [[ -e $f ]] || continue
    name=$(basename "$f" .pid)
    stop_pid "$name"
  done
  stop_pid master
}

kill_worker() {
  local i=${1:-} pid procs
  [[ $i =~ ^[0-9]+$ ]] || die "kill-worker needs a worker number (1..$WORKERS)"
  pid=$(pid_of "worker-$i")
  alive "$pid" || die "worker $i is not running (no live pid in $PID_DIR/worker-$i.pid)"
  procs="$(descendants "$pid") $pid"
  # The whole node at once: the worker daemon, its executors and their Python workers.
  kill -KILL $procs 2>/dev/null || true
  echo "killed worker $i: pids" $procs
  rm -f "$PID_DIR/worker-$i.pid"
}

status() {
  local raw
  raw=$(master_json)
  if [[ -z $raw ]]; then
    echo "master: not answering at $MASTER_UI/json (pid file: $(pid_of master || true))"
    return 1
  fi
  "$PYTHON" - "$raw" <<'EOF'
import json, sys
m = json.loads(sys.argv[1])
apps = m.get("activeapps", [])
print(f"master {m.get('url')}: {m.get('status')}, {m.get('aliveworkers', 0)} alive worker(s), "
      f"{m.get('coresused', 0)}/{m.get('cores', 0)} cores used, {len(apps)} running app(s)")
for w in m.get("workers", []):
    print(f"  worker {w['id']} {w['webuiaddress']}: {w['state']}, {w['coresused']}/{w['cores']} cores")
for a in apps:
    print(f"  app {a['id']} {a['name']}: {a['state']}")
EOF
  local i n
  for ((i = 1; i <= WORKERS; i++)); do
    alive "$(pid_of "worker-$i")" && echo "  worker-$i pid $(pid_of "worker-$i")" || echo "  worker-$i not running"
  done
  n=$(alive_workers)
  [[ $n -ge $WORKERS ]]
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  kill-worker) kill_worker "${2:-}" ;;
  *) usage ;;
esac
