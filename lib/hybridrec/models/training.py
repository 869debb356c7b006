"""The train job: Horovod trains the image CNN and the text LSTM, then embeddings go to Delta.

Steps (driver side; the per-process loop is ``worker.train_worker``):

1. Check the features before any worker starts: they exist, have labelled training rows of at least
   two classes, every label is a class of ``labels.json`` and every token id is in the vocabulary.
2. Name the model version: ``<features date>-<hash of the features run and the training settings>``
   unless ``train.model_version`` is set. The same features and settings give the same version, so a
   re-run after a failure resumes from that version's checkpoints (``--restart`` discards them).
3. For each model (image, text): ``horovod.spark.run`` starts ``num_proc`` processes (Gloo) on the
   Spark cluster; rank 0 checkpoints every epoch, evaluates on the test split and exports the model
   to ``<paths.models>/<version>/<model>/``. A dead process fails the job with the rank and cause.
4. ``product_embeddings``: inference over every product, the fusion classifier, Delta write.
5. ``<paths.models>/<version>/metrics.json`` (test accuracy, macro-F1, confusion matrices, history,
   fusion comparison, throughput), copies of vocab.json / labels.json / manifest.json, MLflow run,
   and ``<paths.models>/current.json`` naming the version the nightly job uses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from hybridrec.config import Config, TrainConfig
from hybridrec.errors import HybridrecError, MissingInputError
from hybridrec.features.labels import UNLABELED
from hybridrec.files import write_text_atomic
from hybridrec.models.data import IMAGE, TEXT, split_urls
from hybridrec.models.product_embeddings import build_product_embeddings
from hybridrec.models.progress import EpochProgress
from hybridrec.models.worker import TrainSpec, read_state, train_worker
from hybridrec.tables import FEATURE_SETS, features_path
from hybridrec.tracking import log_run

log = logging.getLogger(__name__)

CURRENT = "current.json"
# Beside a model's checkpoints once its training finished: what the run measured (re-runs reuse it).
RESULT = "result.json"
METRICS = "metrics.json"
# Settings that change what a model learns (the version hash); the rest (threads, timeouts,
# tracking, inference batch size) do not.
_VERSIONED = (
    "num_proc",
    "epochs",
    "batch_size",
    "learning_rate",
    "warmup_epochs",
    "early_stopping_patience",
    "image_model",
    "image_embedding_dim",
    "head_loss_weight",
    "image_zoom_out",
    "image_aspect_jitter",
    "impute_missing_modality",
    "impute_ridge",
    "token_embedding_dim",
    "lstm_units",
    "bidirectional",
    "text_embedding_dim",
    "fusion_epochs",
    "models",
    "max_steps_per_epoch",
    "shuffle_buffer",
    "seed",
)
# Test hook: HYBRIDREC_TRAIN_FAULT="rank:epoch" makes that rank exit after that epoch.
FAULT_ENV = "HYBRIDREC_TRAIN_FAULT"


@dataclass
class TrainResult:
    version: str
    model_dir: str
    metrics: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def check_features(cfg: Config) -> dict[str, str]:
    """Return the feature folders, or raise ``MissingInputError`` naming the job to run first."""
    found: dict[str, str] = {}
    for name in FEATURE_SETS:
        path = Path(features_path(cfg, name))
        if path.is_dir() and any(path.glob("*.parquet")):
            found[name] = str(path)
    if not found:
        raise MissingInputError(f"no features yet under {cfg.paths.features}: run jobs/preprocess.py first")
    return found


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise MissingInputError(f"{path} is missing: run jobs/preprocess.py first")
    return json.loads(path.read_text(encoding="utf-8"))


def validate_features(
    spark: SparkSession, cfg: Config, manifest: dict[str, Any], classes: list[str], vocab_size: int, models: list[str]
) -> None:
    """Fail before any worker starts on features a model cannot learn from (see the module docstring)."""
    problems: list[str] = []
    if len(classes) < 2:
        problems.append(
            f"labels.json has {len(classes)} class(es) ({', '.join(classes) or 'none'}): a classifier needs at "
            f"least 2 (lower features.min_examples_per_class, now {cfg.features.min_examples_per_class}, or "
            "add products)"
        )
    for model in models:
        section = manifest["images" if model == IMAGE else "text"]
        labelled = (section.get("labelled_rows_by_split") or {}).get("train", 0)
        if not labelled:
            problems.append(f"the {model} features have no labelled training rows (rows: {section.get('rows', 0)})")
            continue
        df = spark.read.parquet(features_path(cfg, "images" if model == IMAGE else "text"))
        aggs = [
            F.max("label").alias("max_label"),
            F.min("label").alias("min_label"),
            F.countDistinct(F.when((F.col("split") == "train") & (F.col("label") >= 0), F.col("label"))).alias(
                "train_classes"
            ),
        ]
        if model == TEXT:
            aggs += [
                F.max(F.array_max("token_ids")).alias("max_token"),
                F.min(F.array_min("token_ids")).alias("min_token"),
            ]
        row = df.agg(*aggs).collect()[0]
        if row["max_label"] is not None and (row["max_label"] >= len(classes) or row["min_label"] < UNLABELED):
            problems.append(
                f"the {model} features hold labels {row['min_label']}..{row['max_label']} but labels.json has "
                f"{len(classes)} classes: features and labels.json come from different preprocess runs"
            )
        if row["train_classes"] < 2:
            problems.append(f"the {model} training rows hold {row['train_classes']} class(es): need at least 2")
        if model == TEXT and row["max_token"] is not None and (row["max_token"] >= vocab_size or row["min_token"] < 0):
            problems.append(
                f"the text features hold token ids {row['min_token']}..{row['max_token']} outside the vocabulary "
                f"of {vocab_size} ids: features and vocab.json come from different preprocess runs"
            )
    if problems:
        raise HybridrecError("cannot train on these features: " + "; ".join(problems))


def model_version(tc: TrainConfig, manifest: dict[str, Any], num_proc: int) -> str:
    """``<features date>-<8 hex>``: stable for the same features run and training settings."""
    if tc.model_version:
        return tc.model_version
    settings = {k: getattr(tc, k) for k in _VERSIONED}
    settings["num_proc"] = num_proc
    payload = json.dumps(
        {"features": [manifest.get("run_id"), manifest.get("created_at")], "train": settings},
        sort_keys=True,
        default=str,
    )
    day = str(manifest.get("created_at", "0000-00-00"))[:10]
    return f"{day}-{hashlib.sha1(payload.encode()).hexdigest()[:8]}"


def resolve_num_proc(spark: SparkSession, tc: TrainConfig) -> int:
    return tc.num_proc or max(1, int(spark.sparkContext.defaultParallelism))


def _fault() -> dict[str, int]:
    value = os.environ.get(FAULT_ENV)
    if not value:
        return {}
    rank, epoch = value.split(":")
    return {"rank": int(rank), "after_epoch": int(epoch)}


def build_spec(
    cfg: Config,
    model: str,
    manifest: dict[str, Any],
    classes: list[str],
    vocab_size: int,
    ckpt_dir: Path,
    export_dir: Path,
    threads: int,
    heads: list[tuple[str, list[str]]] | None = None,
) -> TrainSpec:
    """``heads``: the attribute heads of labels.json; with them a model trains on every row with
    any label (``trainable_rows_by_split``), each head masked where the row has no value."""
    tc = cfg.train
    section = manifest["images" if model == IMAGE else "text"]
    splits = ("train", "val", "test")
    rows_key = "trainable_rows_by_split" if heads and "trainable_rows_by_split" in section else "labelled_rows_by_split"
    return TrainSpec(
        model=model,
        # The workers never log to MLflow, and the tracking URI may carry credentials: not sent.
        train=replace(tc, mlflow_tracking_uri=None),
        urls={s: split_urls(cfg.paths.features, model, s) for s in splits},
        row_groups={s: (section.get("row_groups_by_split") or {}).get(s) for s in splits},
        labelled_rows={s: int((section.get(rows_key) or {}).get(s, 0)) for s in splits},
        class_names=classes,
        image_size=cfg.features.image_size,
        max_len=cfg.features.max_len,
        vocab_size=vocab_size,
        checkpoint_dir=str(ckpt_dir),
        export_dir=str(export_dir),
        threads_per_proc=threads,
        heads=list(heads or []),
        fault=_fault(),
    )


def run_horovod(spec: TrainSpec, num_proc: int, tc: TrainConfig) -> list[dict[str, Any]]:
    """Train one model on ``num_proc`` Horovod processes; a failure names the rank and its cause."""
    import horovod.spark

    env = dict(os.environ)
    # Petastorm 0.13.1 on pyarrow 14 warns about pyarrow's legacy dataset API on every reader.
    env.update(
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONUNBUFFERED="1",
        PYTHONWARNINGS="ignore::FutureWarning,ignore::DeprecationWarning",
    )
    if tc.nics:
        env["HOROVOD_GLOO_IFACE"] = tc.nics[0]
    state = read_state(spec.checkpoint_dir)
    where = f"epoch {state['epoch']}" if state else "the start"
    log.info(
        "training the %s model on %d Horovod process(es) x %d thread(s), from %s",
        spec.model,
        num_proc,
        spec.threads_per_proc,
        where,
    )
    try:
        with EpochProgress(spec.checkpoint_dir):  # rank 0's epoch lines, live (its stdout comes late)
            results = horovod.spark.run(
                train_worker,
                args=(spec,),
                num_proc=num_proc,
                use_gloo=True,
                nics=set(tc.nics) if tc.nics else None,
                start_timeout=tc.start_timeout,
                env=env,
                stdout=_Flushing(sys.stdout),
                stderr=_Flushing(sys.stderr),
                verbose=0,
            )
    except Exception as exc:  # re-raised with the rank and the cause
        raise HybridrecError(_failure_message(spec, num_proc, exc)) from exc
    return sorted(results, key=lambda r: r["rank"])


class _Flushing:
    """Relays the Horovod processes' lines at once (a job's stdout is a pipe, block-buffered)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        n = self.stream.write(text)
        self.stream.flush()
        return n

    def flush(self) -> None:
        self.stream.flush()


def _failure_message(spec: TrainSpec, num_proc: int, exc: BaseException) -> str:
    """Which rank failed first and why, then what each rank recorded, then how to resume."""
    ckpt = Path(spec.checkpoint_dir)
    horovod_says = " ".join(ln.strip() for ln in str(exc).strip().splitlines() if ln.strip())
    first = re.search(r"Process name: (\S+)\s+Exit code: (\S+)", horovod_says)
    head = (
        f"rank {first.group(1)} exited first (exit code {first.group(2)})"
        if first
        else horovod_says[:300] or type(exc).__name__
    )
    causes = []
    for rank in range(num_proc):
        path = ckpt / f"failure-rank{rank}.txt"
        if path.is_file():
            lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
            errors = [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b.*", ln)]
            causes.append(f"rank {rank}: {(errors or lines or ['unknown error'])[-1][:300]}")
        else:
            causes.append(f"rank {rank}: no Python error (killed, lost, or stopped after another rank failed)")
    state = read_state(ckpt)
    resume = (
        f"re-run the job to resume from the checkpoint of epoch {state['epoch']}"
        if state
        else "no epoch finished, a re-run starts over"
    )
    return f"{spec.model} model training failed: {head}; {'; '.join(causes)}. {resume} ({ckpt})"


def finished_result(spec: TrainSpec) -> dict[str, Any] | None:
    """The stored result of a model whose training finished and whose export exists, else None."""
    state = read_state(spec.checkpoint_dir)
    result = Path(spec.checkpoint_dir) / RESULT
    if state and state.get("done") and result.is_file() and (Path(spec.export_dir) / "saved_model.pb").is_file():
        return json.loads(result.read_text(encoding="utf-8"))
    return None


def train(spark: SparkSession, cfg: Config, resume: str = "auto") -> TrainResult:
    """Train the configured models, write embeddings and metrics; ``resume``: auto | require | restart."""
    tc = cfg.train
    started = time.perf_counter()
    check_features(cfg)
    feat_dir = Path(cfg.paths.features)
    manifest = read_json(feat_dir / "manifest.json")
    labels = read_json(feat_dir / "labels.json")
    classes = list(labels["classes"])
    heads = [(str(h["attribute"]), list(h["classes"])) for h in labels.get("heads") or []]
    vocab = read_json(feat_dir / "vocab.json")
    vocab_size = int(manifest["text"].get("vocab_size") or len(vocab.get("tokens", [])))
    models = [m for m in tc.models if m == TEXT or (manifest["images"].get("rows") or 0) > 0]
    if IMAGE in tc.models and IMAGE not in models:
        log.warning(
            "no image features (%s): the image model is skipped, text only", manifest["images"].get("note", "no photos")
        )
    validate_features(spark, cfg, manifest, classes, vocab_size, models)

    num_proc = resolve_num_proc(spark, tc)
    threads = tc.threads_per_proc or max(1, (os.cpu_count() or 1) // num_proc)
    version = model_version(tc, manifest, num_proc)
    model_dir = Path(cfg.paths.models) / version
    ckpt_root = Path(cfg.paths.checkpoints) / version
    if resume == "restart":
        shutil.rmtree(ckpt_root, ignore_errors=True)
    elif resume == "require" and not any(read_state(ckpt_root / m) for m in models):
        raise HybridrecError(f"--resume: no checkpoint of model version {version} under {ckpt_root}")
    log.info("model version %s: %s on %d process(es); checkpoints %s", version, " + ".join(models), num_proc, ckpt_root)

    per_model: dict[str, Any] = {}
    exported: dict[str, str] = {}
    for model in models:
        spec = build_spec(
            cfg, model, manifest, classes, vocab_size, ckpt_root / model, model_dir / model, threads, heads
        )
        finished = finished_result(spec)
        if finished is not None:
            log.info("the %s model of version %s is already trained: reusing it (--restart retrains)", model, version)
            per_model[model] = {**finished, "reused": True}
        else:
            t0 = time.perf_counter()
            results = run_horovod(spec, num_proc, tc)
            lead = results[0]
            per_model[model] = {
                "wall_seconds": time.perf_counter() - t0,
                "ranks": [r["rank"] for r in results],
                "processes": num_proc,
                "threads_per_process": threads,
                "steps_per_epoch": lead["steps_per_epoch"],
                "resumed_from_epoch": lead["resumed_from_epoch"],
                **{k: lead[k] for k in ("test", "history", "best_epoch", "stopped_early", "epochs_done", "parameters")},
                **({"test_heads": lead["test_heads"]} if "test_heads" in lead else {}),
            }
            _write_json(Path(spec.checkpoint_dir) / RESULT, per_model[model])
        lead = per_model[model]
        exported[model] = str(model_dir / model)
        t = lead["test"]
        print(
            f"[train {model}] test accuracy {t['accuracy']:.4f} macro-F1 {t['macro_f1']:.4f} on "
            f"{t['examples']} products; best epoch {lead['best_epoch']}",
            flush=True,
        )
        if lead.get("test_heads"):
            print(
                f"[train {model}] attribute heads, test accuracy: "
                + ", ".join(f"{h} {r['accuracy']:.3f}" for h, r in lead["test_heads"].items()),
                flush=True,
            )

    emb = build_product_embeddings(spark, cfg, version, exported, classes, str(ckpt_root))
    if emb.fusion and "test" in emb.fusion:
        ft = emb.fusion["test"]
        print(
            f"[train fusion] test accuracy {ft['fusion']['accuracy']:.4f} macro-F1 {ft['fusion']['macro_f1']:.4f} "
            f"vs image {ft['image']['accuracy']:.4f} / text {ft['text']['accuracy']:.4f} on the same "
            f"{ft['fusion']['examples']} products with a photo",
            flush=True,
        )
    print(
        f"[train embeddings] {emb.counts['rows']} products ({emb.counts['with_image']} with image vector) "
        f"-> gold.product_embeddings version {version}",
        flush=True,
    )

    metrics = {
        "version": version,
        "features": {"run_id": manifest.get("run_id"), "created_at": manifest.get("created_at")},
        "classes": classes,
        "models": per_model,
        "fusion": emb.fusion,
        "embeddings": {"counts": emb.counts, "seconds": emb.seconds},
        "train_config": asdict(tc),
        "wall_seconds": time.perf_counter() - started,
    }
    model_dir.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.json", "labels.json", "manifest.json"):
        shutil.copyfile(feat_dir / name, model_dir / name)
    _write_json(model_dir / METRICS, metrics)
    flat = flat_metrics(metrics)
    run_id = log_run(
        tc,
        cfg.paths.models,
        version,
        params={
            **{k: getattr(tc, k) for k in _VERSIONED},
            "num_proc": num_proc,
            "threads_per_proc": threads,
            "classes": len(classes),
            "vocab_size": vocab_size,
        },
        metrics=flat,
        epoch_metrics={m: v["history"] for m, v in per_model.items()},
        files=[str(model_dir / METRICS)],
        tags={"model_version": version},
        what="the training run",
        kept="the model and metrics.json are saved",
    )
    metrics["mlflow_run_id"] = run_id
    _write_json(model_dir / METRICS, metrics)
    _write_json(Path(cfg.paths.models) / CURRENT, {"version": version, "path": version})
    counts = {f"{k}": int(v) for k, v in emb.counts.items()}
    counts.update({f"{m}_epochs": int(v["epochs_done"]) for m, v in per_model.items()})
    return TrainResult(version=version, model_dir=str(model_dir), metrics=flat, counts=counts)


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The headline numbers, for gold.runs and MLflow."""
    flat: dict[str, float] = {}
    for model, m in metrics["models"].items():
        flat[f"{model}_test_accuracy"] = m["test"]["accuracy"]
        flat[f"{model}_test_macro_f1"] = m["test"]["macro_f1"]
        flat[f"{model}_train_seconds"] = m["wall_seconds"]
        if m["history"]:
            flat[f"{model}_samples_per_s"] = m["history"][-1]["samples_per_s"]
        for head, report in (m.get("test_heads") or {}).items():
            flat[f"{model}_head_{head}_test_accuracy"] = report["accuracy"]
    fusion = (metrics.get("fusion") or {}).get("test")
    if fusion:
        for name in ("fusion", "image", "text"):
            flat[f"photo_subset_{name}_accuracy"] = fusion[name]["accuracy"]
            flat[f"photo_subset_{name}_macro_f1"] = fusion[name]["macro_f1"]
    return flat


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, default=str))


def current_version(cfg: Config) -> str:
    """The model version the last successful train run published (for the nightly job)."""
    path = Path(cfg.paths.models) / CURRENT
    if not path.is_file():
        raise MissingInputError(f"no trained models under {cfg.paths.models}: run jobs/train.py first")
    return str(json.loads(path.read_text(encoding="utf-8"))["version"])
