"""Benchmark of training on the fashion catalog: model quality, wall time, distribution overhead, input speed.

    .venv/bin/python bench/bench_train.py [--config conf/fashion.yaml] [--reuse] [--steps 40]

Needs the fashion features (``make demo``, or the ingest and preprocess jobs with conf/fashion.yaml).
Writes ``bench/results/train.json`` and prints a summary. Figures:

- ``quality``: the train job with the config's default settings (labels: articleType classes with
  at least 50 photos; other products still get embeddings): test accuracy and macro-F1 of the image
  CNN, the text LSTM and the fusion classifier, the fusion comparison on the test products that have
  a photo (all three models on exactly the same products), epochs, wall time per stage.
  ``--reuse`` reads the metrics.json of the current model version instead of training again.
- ``distribution``: for each model, a short run (``--steps`` steps per epoch, 2 epochs, no warm-up)
  with 1 Horovod process x 2 TensorFlow threads and with 2 processes x 1 thread, side by side;
  samples/s of the second epoch (the first includes graph building). ``overhead`` = 1x2 / 2x1: what
  Horovod's allreduce and the second process cost on one 2-core machine.
- ``input_pipeline``: the Petastorm → tf.data pipeline alone (same shard, shuffle, batch as a
  training rank of 2) in samples/s, against what one training process consumes (2x1 samples/s / 2):
  ``headroom`` > 1 means the reader is not the bottleneck.

The machine may be shared with other work: ``load_before`` / ``load_after`` record the load average.
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
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "lib"))
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HOROVOD_GLOO_IFACE", "lo")

from hybridrec.config import Config, load_config  # noqa: E402 - after the sys.path set-up above (runs without an installed package)

log = logging.getLogger("bench.train")
RESULTS = REPO_ROOT / "bench" / "results" / "train.json"


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def quality(spark: Any, cfg: Config, reuse: bool) -> dict[str, Any]:
    from hybridrec.models.training import METRICS, current_version, train

    before = load()
    started = time.perf_counter()
    if reuse:
        version = current_version(cfg)
        wall = None
    else:
        version = train(spark, cfg).version
        wall = time.perf_counter() - started
    metrics = json.loads((Path(cfg.paths.models) / version / METRICS).read_text(encoding="utf-8"))
    out: dict[str, Any] = {
        "version": version,
        "job_wall_seconds": wall or metrics.get("wall_seconds"),
        "reused": reuse,
        "load_before": before,
        "load_after": load(),
        "models": {},
    }
    for name, m in metrics["models"].items():
        out["models"][name] = {
            "test_accuracy": m["test"]["accuracy"],
            "test_macro_f1": m["test"]["macro_f1"],
            "test_examples": m["test"]["examples"],
            "epochs_done": m["epochs_done"],
            "best_epoch": m["best_epoch"],
            "stopped_early": m["stopped_early"],
            "train_wall_seconds": m["wall_seconds"],
            "parameters": m["parameters"],
            "processes": m["processes"],
            "threads_per_process": m["threads_per_process"],
            "samples_per_s_by_epoch": [round(h["samples_per_s"], 1) for h in m["history"]],
            "val_accuracy_by_epoch": [round(h.get("val_accuracy", float("nan")), 4) for h in m["history"]],
        }
    fusion = metrics.get("fusion") or {}
    if "test" in fusion:
        out["photo_subset"] = {
            name: {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"], "examples": r["examples"]}
            for name, r in fusion["test"].items()
        }
        out["fusion_train_rows"] = fusion.get("train_rows")
    out["embeddings"] = metrics["embeddings"]
    out["classes"] = len(metrics["classes"])
    return out


def distribution(spark: Any, cfg: Config, steps: int) -> dict[str, Any]:
    from hybridrec.models.training import build_spec, read_json, run_horovod

    feat = Path(cfg.paths.features)
    manifest = read_json(feat / "manifest.json")
    classes = list(read_json(feat / "labels.json")["classes"])
    vocab_size = int(manifest["text"]["vocab_size"])
    tc = replace(cfg.train, epochs=2, warmup_epochs=0, early_stopping_patience=0, max_steps_per_epoch=steps)
    bench_cfg = replace(cfg, train=tc)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        for model in ("image", "text"):
            runs = {}
            for procs, threads in ((1, 2), (2, 1)):
                key = f"{procs}x{threads}"
                spec = build_spec(
                    bench_cfg,
                    model,
                    manifest,
                    classes,
                    vocab_size,
                    Path(tmp) / model / key / "ckpt",
                    Path(tmp) / model / key / "export",
                    threads,
                )
                before = load()
                t0 = time.perf_counter()
                results = run_horovod(spec, procs, tc)
                hist = results[0]["history"]
                runs[key] = {
                    "processes": procs,
                    "threads_per_process": threads,
                    "steps": steps,
                    "batch_size_per_process": tc.batch_size,
                    "samples_per_s_epoch2": round(hist[-1]["samples_per_s"], 1),
                    "samples_per_s_epoch1": round(hist[0]["samples_per_s"], 1),
                    "wall_seconds": round(time.perf_counter() - t0, 1),
                    "load_before": before,
                    "load_after": load(),
                }
                log.info("%s %s: %.0f samples/s", model, key, hist[-1]["samples_per_s"])
            runs["overhead"] = round(runs["1x2"]["samples_per_s_epoch2"] / runs["2x1"]["samples_per_s_epoch2"], 3)
            out[model] = runs
    return out


def input_pipeline(cfg: Config, dist: dict[str, Any], batches: int = 150) -> dict[str, Any]:
    import tensorflow as tf

    from hybridrec.models.data import ShardSpec, make_dataset, split_urls
    from hybridrec.models.training import read_json

    try:  # one thread, like a training process of the 2x1 layout
        tf.config.threading.set_intra_op_parallelism_threads(1)
    except RuntimeError:
        pass  # TensorFlow already initialised in this process (the quality run trained the fusion head)
    manifest = read_json(Path(cfg.paths.features) / "manifest.json")
    out: dict[str, Any] = {}
    for model in ("image", "text"):
        section = manifest["images" if model == "image" else "text"]
        shard = ShardSpec(split_urls(cfg.paths.features, model, "train"), 0, 2, section["row_groups_by_split"]["train"])
        ds = make_dataset(
            model,
            shard,
            cfg.features.image_size,
            cfg.features.max_len,
            cfg.train.batch_size,
            training=True,
            shuffle_buffer=cfg.train.shuffle_buffer,
        )
        it = iter(ds)
        for _ in range(10):  # warm-up: first row groups, shuffle buffer fill
            next(it)
        t0 = time.perf_counter()
        n = sum(int(next(it)[1].shape[0]) for _ in range(batches))
        reader = n / (time.perf_counter() - t0)
        consumed = dist[model]["2x1"]["samples_per_s_epoch2"] / 2
        out[model] = {
            "reader_samples_per_s": round(reader, 1),
            "training_consumes_per_process_samples_per_s": round(consumed, 1),
            "headroom": round(reader / consumed, 1),
            "batches": batches,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO_ROOT / "conf" / "fashion.yaml"))
    parser.add_argument("--reuse", action="store_true", help="read the current version's metrics, do not train")
    parser.add_argument("--steps", type=int, default=40, help="steps per epoch of the distribution runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    cfg = load_config(args.config, ["spark.master=local[2]", "spark.ui_enabled=false"])

    from hybridrec.spark import build_spark

    spark = build_spark(cfg.spark)
    result: dict[str, Any] = {
        "benchmark": "train",
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "config": str(Path(args.config).resolve().relative_to(REPO_ROOT)),
        "notes": [],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result["quality"] = quality(spark, cfg, args.reuse)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")  # each stage saved as it ends
    result["distribution"] = distribution(spark, cfg, args.steps)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    result["input_pipeline"] = input_pipeline(cfg, result["distribution"])
    RESULTS.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    q = result["quality"]
    print(f"train bench ({q['classes']} classes, version {q['version']}):")
    for name, m in q["models"].items():
        print(
            f"  {name:5s} test acc {m['test_accuracy']:.4f} macro-F1 {m['test_macro_f1']:.4f} "
            f"({m['epochs_done']} epochs, {m['train_wall_seconds']:.0f}s)"
        )
    for name, m in (q.get("photo_subset") or {}).items():
        print(f"  photo subset {name:6s} acc {m['accuracy']:.4f} macro-F1 {m['macro_f1']:.4f} on {m['examples']}")
    for model, d in result["distribution"].items():
        print(
            f"  {model}: 1x2 {d['1x2']['samples_per_s_epoch2']:.0f} vs 2x1 {d['2x1']['samples_per_s_epoch2']:.0f} "
            f"samples/s (overhead x{d['overhead']}); reader "
            f"{result['input_pipeline'][model]['reader_samples_per_s']:.0f}"
            f" samples/s (headroom x{result['input_pipeline'][model]['headroom']})"
        )
    print(f"wrote {RESULTS.relative_to(REPO_ROOT)}")
    spark.stop()


if __name__ == "__main__":
    main()
