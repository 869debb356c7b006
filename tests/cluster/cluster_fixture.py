"""A real Spark standalone cluster for the ``cluster`` tests: scripts/cluster.sh starts a master on
spark://127.0.0.1:7077 and two workers (1 core, 3g each) on loopback, once per test module, and stops
them afterwards whatever happened.

Opt-in: the tests run only when the marker expression names ``cluster`` (``make test-cluster`` or
``pytest -m cluster tests/cluster``). They skip, saying why, when the machine cannot host the cluster
(no java or curl, port 7077 taken); a cluster that fails to start is a test failure, not a skip.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from standalone import HOST, MASTER_PORT, N_WORKERS, Cluster, Worker, alive, free_port_run, port_free


def _opted_in(config: pytest.Config) -> bool:
    expr = config.getoption("markexpr") or ""
    return "cluster" in expr and "not cluster" not in expr


@pytest.fixture(scope="module", name="cluster")
def cluster_fixture(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not _opted_in(request.config):
        pytest.skip("cluster tests are opt-in: run `make test-cluster` (pytest -m cluster tests/cluster)")
    if shutil.which("java") is None:
        pytest.skip("no java on the PATH: the standalone master and workers need OpenJDK 17")
    if shutil.which("curl") is None:
        pytest.skip("no curl on the PATH: scripts/cluster.sh polls the master's JSON with it")
    if not port_free(MASTER_PORT):
        pytest.skip(
            f"{HOST}:{MASTER_PORT} is taken by another process (another cluster?); stop it or set HYBRIDREC_MASTER_PORT"
        )
    run_dir = tmp_path_factory.mktemp("cluster")
    ui_base = free_port_run(N_WORKERS + 1)
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": HOST,
        "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
        "HYBRIDREC_CLUSTER_DIR": str(run_dir),
        "HYBRIDREC_CLUSTER_WORKERS": str(N_WORKERS),
        "HYBRIDREC_WORKER_CORES": "1",
        "HYBRIDREC_WORKER_MEMORY": "3g",
        "HYBRIDREC_MASTER_PORT": str(MASTER_PORT),
        "HYBRIDREC_MASTER_UI_PORT": str(ui_base),
        "HYBRIDREC_WORKER_UI_PORT": str(ui_base + 1),
    }
    cl = Cluster(
        master_url=f"spark://{HOST}:{MASTER_PORT}", master_ui=f"http://{HOST}:{ui_base}", run_dir=run_dir, env=env
    )
    try:
        started = cl.script("start")
        if started.returncode != 0:
            pytest.fail(
                f"scripts/cluster.sh start failed (exit {started.returncode}):\n"
                f"{started.stdout[-2000:]}\n{started.stderr[-4000:]}"
            )
        state = json.loads((run_dir / "cluster.json").read_text(encoding="utf-8"))
        cl.workers = [
            Worker(w["index"], int(w["pid"]), int(w["ui_port"]), Path(w["work_dir"])) for w in state["workers"]
        ]
        assert cl.alive_workers() == N_WORKERS, f"master JSON: {cl.master_json()}"
        yield cl
    finally:
        stopped = cl.script("stop", timeout=120)
        left = [w.pid for w in cl.workers if alive(w.pid)]
        assert stopped.returncode == 0 and not left, (
            f"cluster.sh stop failed or left workers {left}: {stopped.stdout}{stopped.stderr}"
        )
