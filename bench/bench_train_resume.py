"""Benchmark of training resume: does a run killed mid-way and resumed reach the quality of an uninterrupted one?

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/python bench/bench_train_resume.py [--config conf/fashion.yaml]
        [--fault 1:3] [--early-fault 1:1] [--seeds 42,43] [--only RUN,...]

Needs the fashion features (``make demo``, or the ingest and preprocess jobs with conf/fashion.yaml).
Writes ``bench/results/train_resume.json`` and prints a summary. Text model only, 2 Horovod processes,
every other train setting at its default; every run trains from scratch in its own scratch folder
(``paths.models``, ``paths.checkpoints`` and ``paths.warehouse`` under one temporary directory), so
nothing under data/fashion is written. Runs:

- ``uninterrupted``: one training run with the first seed.
- ``resumed``: the same settings with ``HYBRIDREC_TRAIN_FAULT=<rank>:<epoch>`` (that Horovod rank exits
  after that epoch, the way a lost executor does; the attempt fails with a ``HybridrecError`` naming the
  rank), then the same training again without the fault (resume ``auto``), which continues from the
  checkpoint of the last finished epoch.
- ``resumed_early``: the same with ``--early-fault`` (default rank 1 after epoch 1). With the default
  settings the best epoch (lowest validation loss, whose weights are evaluated on the test split) is
  epoch 2, so after a kill at epoch 3 both runs evaluate the same epoch-2 weights; a kill after epoch 1
  makes the resumed part choose and train the weights that are tested.
- ``other_seed``: an uninterrupted run with the second seed, for the run-to-run spread.
- ``optimizer_restore``: a seconds-long check of the resume mechanism itself on a tiny model: a model +
  ``hvd.DistributedOptimizer(Adam)`` checkpointed and restored the way ``worker.py`` does
  (``tf.train.Checkpoint`` + ``CheckpointManager``, ``restore().expect_partial()`` before the optimizer
  has variables); one more step from the original and from the restored copy must give the same weights.

``--only`` runs the named runs and keeps the others from the existing results file.

The runs call ``build_spec`` / ``run_horovod`` of ``hybridrec.models.training`` — the per-model part of
``train()`` with the same model version and checkpoint layout — and skip what ``train()`` does after
training (embeddings of all products, fusion, metrics.json, MLflow), which does not change the model.

``comparison``: absolute differences of test accuracy and macro-F1 (resumed vs uninterrupted, and
other seed vs uninterrupted = the spread), and per-epoch differences of the validation loss and the
learning rate, which show whether the resumed run followed the uninterrupted one before the kill (same
seed) and stayed on the same learning-rate curve after it. The machine may be shared with other work:
``load_before`` / ``load_after`` record the load average.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "lib"))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HOROVOD_GLOO_IFACE", "lo")

from hybridrec.config import Config, load_config  # noqa: E402 - after the sys.path set-up above (runs without an installed package)

log = logging.getLogger("bench.train_resume")
RESULTS = REPO_ROOT / "bench" / "results" / "train_resume.json"
MODEL = "text"
NUM_PROC = 2


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_config(config: str, scratch: Path, seed: int) -> Config:
    return load_config(
        config,
        [
            "spark.master=local[2]",
            "spark.ui_enabled=false",
            f"train.models=[{MODEL}]",
            f"train.num_proc={NUM_PROC}",
            f"train.seed={seed}",
            f"paths.models={scratch / 'models'}",
            f"paths.checkpoints={scratch / 'checkpoints'}",
            f"paths.warehouse={scratch / 'warehouse'}",
        ],
    )


class Trainer:
    """The per-model part of ``training.train`` for one scratch folder (no embeddings afterwards)."""

    def __init__(self, cfg: Config, tmp: Path) -> None:
        from hybridrec.models.training import check_features, model_version, read_json

        check_features(cfg)
        self.cfg, self.tmp = cfg, tmp
        feat = Path(cfg.paths.features)
        self.manifest = read_json(feat / "manifest.json")
        self.classes = list(read_json(feat / "labels.json")["classes"])
        self.vocab_size = int(self.manifest["text"]["vocab_size"])
        self.version = model_version(cfg.train, self.manifest, NUM_PROC)
        self.threads = cfg.train.threads_per_proc or max(1, (os.cpu_count() or 1) // NUM_PROC)
        self.ckpt_dir = Path(cfg.paths.checkpoints) / self.version / MODEL
        self.export_dir = Path(cfg.paths.models) / self.version / MODEL

    def attempt(self, fault: str | None = None) -> dict[str, Any]:
        """One ``run_horovod`` call (a job run's training of the model); a failure is recorded, not raised."""
        from hybridrec.errors import HybridrecError
        from hybridrec.models.training import FAULT_ENV, build_spec, run_horovod
        from hybridrec.models.worker import read_state

        if fault:
            os.environ[FAULT_ENV] = fault
        try:
            spec = build_spec(
                self.cfg,
                MODEL,
                self.manifest,
                self.classes,
                self.vocab_size,
                self.ckpt_dir,
                self.export_dir,
                self.threads,
            )
        finally:
            os.environ.pop(FAULT_ENV, None)
        state = read_state(self.ckpt_dir)
        out: dict[str, Any] = {
            "fault": fault,
            "starts_from_epoch": state["epoch"] if state else 0,
            "load_before": load(),
        }
        t0 = time.perf_counter()
        try:
            results = run_horovod(spec, NUM_PROC, self.cfg.train)
        except HybridrecError as exc:
            out.update(ok=False, wall_seconds=round(time.perf_counter() - t0, 1), failure=self.scrub(str(exc)))
            state = read_state(self.ckpt_dir)
            out["checkpoint_epoch_after_failure"] = state["epoch"] if state else None
        else:
            lead = results[0]
            out.update(
                ok=True,
                wall_seconds=round(time.perf_counter() - t0, 1),
                resumed_from_epoch=lead["resumed_from_epoch"],
                epochs_run=lead["epochs_run"],
                test_accuracy=lead["test"]["accuracy"],
                test_macro_f1=lead["test"]["macro_f1"],
                test_examples=lead["test"]["examples"],
                epochs_done=lead["epochs_done"],
                best_epoch=lead["best_epoch"],
                stopped_early=lead["stopped_early"],
                steps_per_epoch=lead["steps_per_epoch"],
                history=[_epoch(h) for h in lead["history"]],
            )
        out["load_after"] = load()
        return out

    def scrub(self, text: str) -> str:
        return text.replace(str(self.tmp), "<tmp>").replace(str(REPO_ROOT) + os.sep, "")


def _epoch(h: dict[str, Any]) -> dict[str, Any]:
    keys = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")
    return {k: (round(h[k], 6) if isinstance(h[k], float) else h[k]) for k in keys if k in h}


def summary(attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """A run's headline figures; for a resumed run, the finishing attempt's plus the killed one's."""
    last = attempts[-1]
    keys = (
        "test_accuracy",
        "test_macro_f1",
        "test_examples",
        "epochs_done",
        "best_epoch",
        "stopped_early",
        "steps_per_epoch",
        "history",
    )
    out = {k: last.get(k) for k in keys}
    out["wall_seconds"] = round(sum(a["wall_seconds"] for a in attempts), 1)
    out["attempts"] = [{k: v for k, v in a.items() if k not in keys} for a in attempts]
    killed = [a for a in attempts if not a["ok"]]
    if killed:
        out["failure"] = killed[0]["failure"]
        out["resumed_from_epoch"] = last.get("resumed_from_epoch")
    return out


def compare(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    by_epoch = {h["epoch"]: h for h in base["history"]}
    rows = []
    for h in other["history"]:
        b = by_epoch.get(h["epoch"])
        if b is None:
            continue
        rows.append(
            {
                "epoch": h["epoch"],
                "val_loss_diff": round(h["val_loss"] - b["val_loss"], 6),
                "val_accuracy_diff": round(h["val_accuracy"] - b["val_accuracy"], 6),
                "lr_diff": round(h["lr"] - b["lr"], 8),
            }
        )
    return {
        "abs_diff_test_accuracy": round(abs(other["test_accuracy"] - base["test_accuracy"]), 6),
        "abs_diff_test_macro_f1": round(abs(other["test_macro_f1"] - base["test_macro_f1"]), 6),
        "by_epoch": rows,
    }


def optimizer_restore_check() -> dict[str, Any]:
    """Adam's state across a checkpoint restore done the way ``worker.py`` resumes (see the docstring)."""
    import horovod.tensorflow.keras as hvd
    import numpy as np
    import tensorflow as tf

    hvd.init()
    tf.keras.utils.set_random_seed(0)

    def build() -> tuple[Any, Any]:
        model = tf.keras.Sequential(
            [tf.keras.Input((8,)), tf.keras.layers.Dense(4), tf.keras.layers.Dense(3, activation="softmax")]
        )
        opt = hvd.DistributedOptimizer(tf.keras.optimizers.Adam(learning_rate=0.01))
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy", experimental_run_tf_function=False)
        return model, opt

    x = np.random.rand(256, 8).astype("float32")
    y = np.random.randint(0, 3, 256)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32).repeat()
    with tempfile.TemporaryDirectory(prefix="bench-optimizer-") as tmp:
        m1, o1 = build()
        m1.fit(ds, steps_per_epoch=8, epochs=1, verbose=0)
        manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=m1, optimizer=o1), tmp, max_to_keep=2)
        manager.save(checkpoint_number=1)
        saved = [n for n, _ in tf.train.list_variables(manager.latest_checkpoint) if n.startswith("optimizer/")]
        m2, o2 = build()
        status = tf.train.Checkpoint(model=m2, optimizer=o2).restore(manager.latest_checkpoint)
        status.expect_partial()
        restored_iterations = int(o2.iterations.numpy())
        m1.fit(ds.take(1), steps_per_epoch=1, epochs=1, verbose=0)
        m2.fit(
            ds.take(1),
            steps_per_epoch=1,
            epochs=1,
            verbose=0,
            callbacks=[hvd.callbacks.BroadcastGlobalVariablesCallback(0)],
        )
        try:
            status.assert_existing_objects_matched()
            matched = True
        except AssertionError:
            matched = False
    return {
        "optimizer_class": f"{type(o1).__mro__[1].__module__}.{type(o1).__mro__[1].__name__}",
        "optimizer_variables_in_checkpoint": len(saved),
        "iterations_saved": 8,
        "iterations_restored": restored_iterations,
        "max_weight_diff_after_one_step": max(
            float(np.abs(a - b).max()) for a, b in zip(m1.get_weights(), m2.get_weights())
        ),
        "existing_objects_matched": matched,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO_ROOT / "conf" / "fashion.yaml"))
    parser.add_argument("--fault", default="1:3", help="rank:epoch of the killed attempt")
    parser.add_argument("--early-fault", default="1:1", help="rank:epoch of the resumed_early run ('' = none)")
    parser.add_argument(
        "--only", default="", help="comma-separated runs to (re)do; the others are kept from the existing results file"
    )
    parser.add_argument(
        "--seeds", default="42,43", help="seed of the compared runs, then of the spread run (one seed: no spread run)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    config = str(Path(args.config).resolve())

    from hybridrec.spark import build_spark

    result: dict[str, Any] = {
        "benchmark": "train_resume",
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "config": str(Path(config).relative_to(REPO_ROOT)),
        "model": MODEL,
        "processes": NUM_PROC,
        "fault": args.fault,
        "notes": [
            "text model only, train settings at their defaults except train.models, train.num_proc and train.seed",
            "each run starts from scratch in its own scratch folder (<tmp>/<run>); embeddings, fusion, "
            "metrics.json and MLflow of train() are skipped (they do not change the model)",
            "test metrics are those of the best epoch's weights (lowest validation loss), as in train()",
        ],
        "runs": {},
    }
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    if only and RESULTS.is_file():
        old = json.loads(RESULTS.read_text(encoding="utf-8"))
        result["runs"] = {k: v for k, v in old.get("runs", {}).items() if k not in only}
        if "optimizer_restore" not in only and "optimizer_restore" in old:
            result["optimizer_restore"] = old["optimizer_restore"]
        result["notes"].append(
            f"runs {', '.join(sorted(result['runs']))} from the results file of "
            f"{old.get('created_at')}; {', '.join(sorted(only))} from this one"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        RESULTS.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")

    with tempfile.TemporaryDirectory(prefix="bench-train-resume-") as tmp_name:
        tmp = Path(tmp_name)
        plan = [("uninterrupted", seeds[0], None), ("resumed", seeds[0], args.fault)]
        if args.early_fault:
            plan.append(("resumed_early", seeds[0], args.early_fault))
        plan += [("other_seed", s, None) for s in seeds[1:2]]
        plan = [p for p in plan if not only or p[0] in only]
        spark = build_spark(run_config(config, tmp / "spark", seeds[0]).spark)
        for name, seed, fault in plan:
            cfg = run_config(config, tmp / name, seed)
            trainer = Trainer(cfg, tmp)
            log.info("run %s: seed %d, version %s%s", name, seed, trainer.version, f", fault {fault}" if fault else "")
            attempts = [trainer.attempt(fault)]
            if fault:
                if attempts[0]["ok"]:
                    raise SystemExit(f"the attempt with fault {fault} did not fail: is the hook still there?")
                log.info("killed attempt: %s", attempts[0]["failure"])
                attempts.append(trainer.attempt())
            if not attempts[-1]["ok"]:
                raise SystemExit(f"run {name} failed: {attempts[-1]['failure']}")
            result["runs"][name] = {"seed": seed, "version": trainer.version, **summary(attempts)}
            save()
        spark.stop()
    if not only or "optimizer_restore" in only:
        result["optimizer_restore"] = optimizer_restore_check()
        save()

    runs = result["runs"]
    for run in runs.values():
        if run.get("resumed_from_epoch") is not None:  # else the tested weights predate the kill
            run["best_epoch_after_resume"] = run["best_epoch"] > run["resumed_from_epoch"]
    result["comparison"] = {
        f"{name}_vs_uninterrupted": compare(runs["uninterrupted"], runs[name])
        for name in ("resumed", "resumed_early", "other_seed")
        if name in runs
    }
    save()

    print(f"train resume bench ({MODEL} model, {NUM_PROC} processes, fault {args.fault}):")
    print(
        f"  {'run':14s} {'seed':>4s} {'test acc':>8s} {'macro-F1':>8s} {'epochs':>6s} {'best':>4s} "
        f"{'early':>5s} {'wall s':>7s} {'resumed from':>12s}"
    )
    for name, r in runs.items():
        print(
            f"  {name:14s} {r['seed']:4d} {r['test_accuracy']:8.4f} {r['test_macro_f1']:8.4f} "
            f"{r['epochs_done']:6d} {r['best_epoch']:4d} {str(r['stopped_early']):>5s} {r['wall_seconds']:7.0f} "
            f"{r.get('resumed_from_epoch', '-')!s:>12s}"
        )
    for key, c in result["comparison"].items():
        print(f"  {key}: |d acc| {c['abs_diff_test_accuracy']:.4f}, |d macro-F1| {c['abs_diff_test_macro_f1']:.4f}")
    for name in ("resumed", "resumed_early"):
        if "failure" in runs.get(name, {}):
            print(f"  {name} killed attempt: {runs[name]['failure'][:300]}")
    o = result.get("optimizer_restore")
    if o:
        print(
            f"  optimizer restore check: iterations {o['iterations_restored']}/{o['iterations_saved']}, "
            f"max |w diff| after one step {o['max_weight_diff_after_one_step']:.2g}, "
            f"all checkpoint objects matched: {o['existing_objects_matched']}"
        )
    print(f"wrote {RESULTS.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
