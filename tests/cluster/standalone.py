"""The standalone cluster the ``cluster`` tests run on (started by scripts/cluster.sh, see
conftest.py), submitting jobs to it with ``spark-submit --master``, and reading the Spark event log
that each submission writes to its own folder: where tasks ran, which executors were lost, which
tasks and stages were retried."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO_ROOT / "scripts" / "cluster.sh"

HOST = "127.0.0.1"
N_WORKERS = 2
MASTER_PORT = int(os.environ.get("HYBRIDREC_MASTER_PORT", "7077"))
SUBMIT_TIMEOUT_S = 900


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port_run(n: int) -> int:
    """The first of ``n`` consecutive free loopback ports."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((HOST, 0))
            base = s.getsockname()[1]
        if base + n < 65535 and all(port_free(base + i) for i in range(n)):
            return base
    raise RuntimeError(f"no {n} consecutive free ports on {HOST}")


@dataclass
class Worker:
    index: int
    pid: int
    ui_port: int
    work_dir: Path


@dataclass
class Cluster:
    """A running standalone cluster started by scripts/cluster.sh."""

    master_url: str
    master_ui: str
    run_dir: Path
    env: dict[str, str]
    workers: list[Worker] = field(default_factory=list)

    def script(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(CLUSTER_SH), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO_ROOT,
        )

    def master_json(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.master_ui}/json/", timeout=10) as resp:
            return json.load(resp)

    def alive_workers(self) -> int:
        return sum(1 for w in self.master_json()["workers"] if w["state"] == "ALIVE")

    def worker_of_executor(self, app_id: str, executor_id: str) -> int | None:
        """The worker whose work dir holds the executor's folder (``<work dir>/<app>/<executor>/``)."""
        owners = [w.index for w in self.workers if (w.work_dir / app_id / executor_id).is_dir()]
        return owners[0] if len(owners) == 1 else None

    def kill_worker(self, index: int) -> list[int]:
        """SIGKILL worker ``index`` with its executors (a lost node); the pids killed."""
        out = self.script("kill-worker", str(index), timeout=60)
        assert out.returncode == 0, f"cluster.sh kill-worker {index} failed: {out.stderr}"
        return [int(p) for p in re.findall(r"\d+", out.stdout.split("pids", 1)[-1])]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Submission:
    """One spark-submit of a job to the cluster: its command, log file and event-log folder."""

    job: str
    args: tuple[str, ...]
    log: Path
    events: Path
    returncode: int | None = None

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def tail(self, n: int = 6000) -> str:
        return self.output()[-n:]


def submit_command(
    cluster: Cluster, job: str, args: Sequence[str], events: Path, conf: dict[str, str] | None = None
) -> list[str]:
    """spark-submit of jobs/<job>.py to the standalone master, with an event log per submission."""
    settings = {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": events.as_uri(),
        # One plain JSON-lines file per application (Spark 4 compresses with zstd and rolls by default).
        "spark.eventLog.compress": "false",
        "spark.eventLog.rolling.enabled": "false",
        "spark.driver.memory": "2g",
        "spark.executor.memory": "1500m",
        # A lost executor's tasks are retried elsewhere; a stage whose shuffle output died with it is
        # recomputed (Spark's defaults, spelt out because the kill test relies on them).
        "spark.task.maxFailures": "4",
        "spark.stage.maxConsecutiveAttempts": "4",
        **(conf or {}),
    }
    cmd = [str(Path(sys.executable).parent / "spark-submit"), "--master", cluster.master_url]
    for key, value in settings.items():
        cmd += ["--conf", f"{key}={value}"]
    return cmd + [str(REPO_ROOT / "jobs" / f"{job}.py"), *args]


def start_job(
    cluster: Cluster, job: str, args: Sequence[str], workdir: Path, label: str, conf: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Submission]:
    events = workdir / "events" / label
    events.mkdir(parents=True, exist_ok=True)
    log = workdir / "logs" / f"{label}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    sub = Submission(job=job, args=tuple(args), log=log, events=events)
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": HOST,
        "PYSPARK_PYTHON": cluster.env["PYSPARK_PYTHON"],
        "PYSPARK_DRIVER_PYTHON": cluster.env["PYSPARK_PYTHON"],
        "HOROVOD_GLOO_IFACE": "lo",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            submit_command(cluster, job, args, events, conf), stdout=out, stderr=subprocess.STDOUT, cwd=workdir, env=env
        )
    return proc, sub


def run_job_on_cluster(
    cluster: Cluster, job: str, args: Sequence[str], workdir: Path, label: str, conf: dict[str, str] | None = None
) -> Submission:
    proc, sub = start_job(cluster, job, args, workdir, label, conf)
    try:
        sub.returncode = proc.wait(timeout=SUBMIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"{job} on the cluster did not finish in {SUBMIT_TIMEOUT_S}s; log {sub.log}:\n{sub.tail()}")
    return sub


@dataclass
class AppEvents:
    """What one application's Spark event log says about executors, jobs and tasks."""

    app_id: str = ""
    master: str = ""
    executors_added: dict[str, dict[str, Any]] = field(default_factory=dict)
    executors_removed: dict[str, str] = field(default_factory=dict)
    job_groups: dict[int, str] = field(default_factory=dict)
    job_stages: dict[int, list[int]] = field(default_factory=dict)
    # (stage id, stage attempt, executor id, end reason) per finished task attempt
    tasks: list[tuple[int, int, str, str]] = field(default_factory=list)
    stage_attempts: list[tuple[int, int]] = field(default_factory=list)
    finished: bool = False

    def executors_of_group(self, prefix: str) -> list[set[str]]:
        """Per job whose job group starts with ``prefix``: the executors its successful tasks ran on."""
        out = []
        for job_id, group in sorted(self.job_groups.items()):
            if group.startswith(prefix):
                stages = set(self.job_stages[job_id])
                out.append({e for s, _, e, r in self.tasks if s in stages and r == "Success"})
        return out

    def failed_tasks(self, reason: str) -> int:
        return sum(1 for *_, r in self.tasks if r == reason)

    def resubmitted_stages(self) -> int:
        return sum(1 for _, attempt in self.stage_attempts if attempt > 0)


def _event_files(folder: Path) -> list[Path]:
    """The event-log files of the one application logged in ``folder``, in order: a single file, or
    (rolling logs, Spark 4's default) the ``events_<n>_<app>`` files of an ``eventlog_v2_<app>`` folder."""
    entries = list(folder.iterdir())
    assert len(entries) == 1, (
        f"expected the event log of one application in {folder}, found {[p.name for p in entries]}"
    )
    log = entries[0]
    if log.is_file():
        return [log]
    parts = [p for p in log.iterdir() if p.name.startswith("events_")]
    return sorted(parts, key=lambda p: int(p.name.split("_")[1]))


def read_events(folder: Path) -> AppEvents:
    """Parse the event log a submission wrote into ``folder`` (finished or still in progress)."""
    app = AppEvents()
    for line in (ln for part in _event_files(folder) for ln in part.read_text(encoding="utf-8").splitlines()):
        try:
            ev = json.loads(line)
        except ValueError:
            continue  # the last line of a log cut off by a dead driver
        kind = ev.get("Event")
        if kind == "SparkListenerApplicationStart":
            app.app_id = ev.get("App ID", "")
        elif kind == "SparkListenerEnvironmentUpdate":
            app.master = ev.get("Spark Properties", {}).get("spark.master", "")
        elif kind == "SparkListenerExecutorAdded":
            app.executors_added[ev["Executor ID"]] = ev.get("Executor Info", {})
        elif kind == "SparkListenerExecutorRemoved":
            app.executors_removed[ev["Executor ID"]] = ev.get("Removed Reason", "")
        elif kind == "SparkListenerJobStart":
            app.job_groups[ev["Job ID"]] = (ev.get("Properties") or {}).get("spark.jobGroup.id", "")
            app.job_stages[ev["Job ID"]] = list(ev.get("Stage IDs", []))
        elif kind == "SparkListenerStageSubmitted":
            info = ev["Stage Info"]
            app.stage_attempts.append((info["Stage ID"], info.get("Stage Attempt ID", 0)))
        elif kind == "SparkListenerTaskEnd":
            info = ev["Task Info"]
            app.tasks.append(
                (
                    ev["Stage ID"],
                    ev.get("Stage Attempt ID", 0),
                    info["Executor ID"],
                    ev.get("Task End Reason", {}).get("Reason", ""),
                )
            )
        elif kind == "SparkListenerApplicationEnd":
            app.finished = True
    return app
