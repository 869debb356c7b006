"""What every Horovod process runs: train one content model on its shard, checkpoint, evaluate.

``train_worker(spec)`` is the function ``horovod.spark.run`` starts in ``spec.num_proc`` processes.
Each process:

1. pins its TensorFlow threads (``threads_per_proc``), initialises Horovod (Gloo), seeds;
2. builds the model, wraps Adam in ``hvd.DistributedOptimizer`` (gradients averaged by allreduce)
   with the learning rate scaled by the number of processes and warmed up over ``warmup_epochs``;
3. resumes from the last checkpoint of this model version if there is one (every rank restores the
   same files, then rank 0's variables are broadcast anyway);
4. trains ``steps_per_epoch`` steps per epoch (the same on every rank) on its Petastorm shard and
   validates on its shard of the validation split; validation metrics are averaged across ranks
   (``MetricAverageCallback``) before early stopping reads them, so every rank stops at the same epoch;
5. rank 0 writes a checkpoint (model + optimizer state + the early-stopping state) after every epoch
   and a copy of the best weights, prints one progress line per epoch, and at the end evaluates the
   best weights on the whole test split and exports the model (SavedModel).

A failing process writes ``failure-rank<N>.txt`` (the traceback) beside the checkpoints before it
exits, so the driver can say which rank died and why. ``fault`` is a test hook: it makes one rank
exit hard after a given epoch, the way a lost executor would.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hybridrec.config import TrainConfig
from hybridrec.files import write_text_atomic
from hybridrec.models.data import IMAGE, ShardSpec, make_dataset, predict_shard
from hybridrec.models.progress import append_progress

STATE_FILE = "state.json"
BEST_WEIGHTS = "best.weights.h5"


# The training settings a model's record keeps (``_finish``'s "spec"), in the order it always had.
RECORDED_SETTINGS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "warmup_epochs",
    "early_stopping_patience",
    "image_model",
    "image_embedding_dim",
    "token_embedding_dim",
    "lstm_units",
    "bidirectional",
    "text_embedding_dim",
    "max_steps_per_epoch",
    "shuffle_buffer",
    "seed",
)


@dataclass
class TrainSpec:
    """Everything one model's training needs, picklable to the Horovod processes.

    The training settings are the ``train`` section itself (``train``), not copies of its fields,
    so each setting and its default is declared once (``TrainConfig``); the rest is what the driver
    learned from the features (urls, rows, classes) and decided (folders, threads per process).
    """

    model: str  # image | text
    train: TrainConfig
    urls: dict[str, tuple[str, ...]]
    row_groups: dict[str, int | None]
    labelled_rows: dict[str, int]
    class_names: list[str]
    image_size: int
    max_len: int
    vocab_size: int
    checkpoint_dir: str
    export_dir: str
    # TensorFlow threads of this process: ``train.threads_per_proc`` or what the driver derived.
    threads_per_proc: int
    # Attribute heads (labels.json "heads"): (attribute, class names) in the features' order.
    heads: list[tuple[str, list[str]]] = field(default_factory=list)
    # Test hook: {"rank": r, "after_epoch": e} makes rank r exit with status 3 after epoch e.
    fault: dict[str, int] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def head_sizes(self) -> list[tuple[str, int]]:
        return [(name, len(classes)) for name, classes in self.heads]

    @property
    def outputs(self) -> list[str]:
        """The model's output names when it has attribute heads; empty for the single-head model."""
        from hybridrec.models.heads import output_names

        return output_names(self.head_sizes) if self.heads else []

    @property
    def accuracy_key(self) -> str:
        """The Keras log key of the category accuracy (prefixed by the output name with heads)."""
        return "probs_accuracy" if self.heads else "accuracy"

    def steps_per_epoch(self, size: int) -> int:
        steps = max(1, self.labelled_rows["train"] // (self.train.batch_size * size))
        cap = self.train.max_steps_per_epoch
        return min(steps, cap) if cap else steps

    def record(self) -> dict[str, Any]:
        """The spec as the model's result records it (no urls, class names or test hook)."""
        return {
            "model": self.model,
            "row_groups": self.row_groups,
            "labelled_rows": self.labelled_rows,
            "image_size": self.image_size,
            "max_len": self.max_len,
            "vocab_size": self.vocab_size,
            "checkpoint_dir": self.checkpoint_dir,
            "export_dir": self.export_dir,
            **{k: getattr(self.train, k) for k in RECORDED_SETTINGS},
            "threads_per_proc": self.threads_per_proc,
            "heads": [name for name, _ in self.heads],
            "head_loss_weight": self.train.head_loss_weight,
        }


def build_model(spec: TrainSpec) -> Any:
    from hybridrec.models.cnn import build_image_model
    from hybridrec.models.lstm import build_text_model

    if spec.model == IMAGE:
        return build_image_model(
            spec.num_classes,
            spec.image_size,
            spec.train.image_model,
            spec.train.image_embedding_dim,
            zoom_out=spec.train.image_zoom_out,
            aspect_jitter=spec.train.image_aspect_jitter,
            heads=spec.head_sizes,
        )
    return build_text_model(
        spec.num_classes,
        spec.vocab_size,
        spec.max_len,
        spec.train.token_embedding_dim,
        spec.train.lstm_units,
        spec.train.bidirectional,
        spec.train.text_embedding_dim,
        heads=spec.head_sizes,
    )


LR_FLOOR = 0.05


def cosine_multiplier(warmup_epochs: int, epochs: int) -> Any:
    """Epoch (fractional) → learning-rate multiplier: 1 at the end of warm-up, LR_FLOOR at the end."""
    import math

    span = max(1, epochs - warmup_epochs)

    def multiplier(epoch: float) -> float:
        t = min(1.0, max(0.0, (epoch - warmup_epochs) / span))
        return LR_FLOOR + (1.0 - LR_FLOOR) * 0.5 * (1.0 + math.cos(math.pi * t))

    return multiplier


def read_state(checkpoint_dir: str | Path) -> dict[str, Any] | None:
    """The state rank 0 wrote after its last finished epoch, or None before the first."""
    path = Path(checkpoint_dir) / STATE_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=1))  # a reader never sees half a state file


def train_worker(spec: TrainSpec) -> dict[str, Any]:
    """Entry point of each Horovod process (see the module docstring)."""
    import horovod.tensorflow.keras as hvd

    hvd.init()
    try:
        return _train(spec, hvd)
    except BaseException:
        Path(spec.checkpoint_dir).mkdir(parents=True, exist_ok=True)
        (Path(spec.checkpoint_dir) / f"failure-rank{hvd.rank()}.txt").write_text(
            traceback.format_exc(), encoding="utf-8"
        )
        raise


def _train(spec: TrainSpec, hvd: Any) -> dict[str, Any]:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(spec.threads_per_proc)
    tf.config.threading.set_inter_op_parallelism_threads(max(2, spec.threads_per_proc))
    rank, size = hvd.rank(), hvd.size()
    ckpt_dir = Path(spec.checkpoint_dir)
    # A resumed run continues the random streams instead of replaying epoch 1's batch order and
    # dropout masks (measured in bench/results/train_resume.json).
    start_epoch = (read_state(ckpt_dir) or {}).get("epoch", 0)
    stream = spec.train.seed + 1000 * start_epoch
    tf.keras.utils.set_random_seed(stream)
    if rank == 0:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        for stale in ckpt_dir.glob("failure-rank*.txt"):
            stale.unlink()

    steps = spec.steps_per_epoch(size)
    train_ds = make_dataset(
        spec.model,
        ShardSpec(spec.urls["train"], rank, size, spec.row_groups.get("train")),
        spec.image_size,
        spec.max_len,
        spec.train.batch_size,
        training=True,
        shuffle_buffer=spec.train.shuffle_buffer,
        seed=stream + rank,
        outputs=spec.outputs,
    )
    val_rows = spec.labelled_rows.get("val", 0)
    val_ds = None
    if val_rows:
        # Shard validation only when every rank gets whole batches; a small split is read whole.
        shard_val = val_rows >= size * spec.train.batch_size
        val_shard = ShardSpec(
            spec.urls["val"], rank if shard_val else 0, size if shard_val else 1, spec.row_groups.get("val")
        )
        val_ds = make_dataset(
            spec.model,
            val_shard,
            spec.image_size,
            spec.max_len,
            spec.train.batch_size,
            training=False,
            outputs=spec.outputs,
        )
    monitor = "val_loss" if val_ds is not None else "loss"

    model = build_model(spec)
    scaled_lr = spec.train.learning_rate * size
    optimizer = hvd.DistributedOptimizer(tf.keras.optimizers.Adam(learning_rate=scaled_lr))
    model.compile(optimizer=optimizer, experimental_run_tf_function=False, **_losses(spec))

    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, str(ckpt_dir / "ckpt"), max_to_keep=2)
    state = read_state(ckpt_dir) or {
        "epoch": 0,
        "best": None,
        "best_epoch": None,
        "wait": 0,
        "done": False,
        "history": [],
        "lr": scaled_lr,
    }
    resumed_from = state["epoch"]
    if resumed_from and manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).expect_partial()
    elif resumed_from:
        raise RuntimeError(f"{ckpt_dir / STATE_FILE} says epoch {resumed_from} but no checkpoint is there")

    callbacks: list[Any] = [
        hvd.callbacks.BroadcastGlobalVariablesCallback(0),
        hvd.callbacks.MetricAverageCallback(),
    ]
    # Learning rate: linear warm-up to lr x size, then cosine decay towards lr_floor x that by the last
    # epoch. A function of the epoch only, so a resumed run continues on the same curve.
    if spec.train.warmup_epochs and resumed_from < spec.train.warmup_epochs:
        callbacks.append(
            hvd.callbacks.LearningRateWarmupCallback(
                initial_lr=scaled_lr, warmup_epochs=spec.train.warmup_epochs, steps_per_epoch=steps, verbose=0
            )
        )
    callbacks.append(
        hvd.callbacks.LearningRateScheduleCallback(
            initial_lr=scaled_lr,
            multiplier=cosine_multiplier(spec.train.warmup_epochs, spec.train.epochs),
            start_epoch=spec.train.warmup_epochs,
            staircase=False,
            steps_per_epoch=steps,
        )
    )
    callbacks.append(_EpochEnd(spec, hvd, state, manager, monitor, steps))

    started = time.perf_counter()
    if not state["done"] and state["epoch"] < spec.train.epochs:
        model.fit(
            train_ds,
            steps_per_epoch=steps,
            epochs=spec.train.epochs,
            initial_epoch=state["epoch"],
            validation_data=val_ds,
            callbacks=callbacks,
            verbose=0,
        )
    train_seconds = time.perf_counter() - started
    # Every rank waits for rank 0's last write, then continues from the best weights.
    hvd.allreduce(tf.constant(0.0), name="barrier_after_fit")
    state = read_state(ckpt_dir) or state
    if (ckpt_dir / BEST_WEIGHTS).is_file():
        model.load_weights(str(ckpt_dir / BEST_WEIGHTS))
    result: dict[str, Any] = {
        "model": spec.model,
        "rank": rank,
        "size": size,
        "steps_per_epoch": steps,
        "resumed_from_epoch": resumed_from,
        "epochs_run": state["epoch"] - resumed_from,
        "train_seconds": train_seconds,
        "threads": spec.threads_per_proc,
    }
    if rank == 0:
        result.update(_finish(spec, model, state))
    hvd.allreduce(tf.constant(0.0), name="barrier_after_export")
    return result


def _losses(spec: TrainSpec) -> dict[str, Any]:
    """compile() arguments: one cross-entropy, or one per output with the heads weighted and the
    category accuracy counted on labelled rows only (weighted by the per-row masks)."""
    if not spec.heads:
        return {"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"]}
    names = spec.outputs
    return {
        "loss": dict.fromkeys(names, "sparse_categorical_crossentropy"),
        "loss_weights": {n: 1.0 if i == 0 else spec.train.head_loss_weight for i, n in enumerate(names)},
        "weighted_metrics": {names[0]: ["accuracy"]},
    }


def _epoch_end_class() -> type:
    import tensorflow as tf

    class EpochEnd(tf.keras.callbacks.Callback):
        """Rank 0: progress line, checkpoint, best weights, resumable early stopping (all ranks)."""

        def __init__(
            self, spec: TrainSpec, hvd: Any, state: dict[str, Any], manager: Any, monitor: str, steps: int
        ) -> None:
            super().__init__()
            self.spec, self.hvd, self.state, self.manager = spec, hvd, state, manager
            self.monitor, self.steps = monitor, steps
            self.started = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = dict(logs or {})
            seconds = time.perf_counter() - self.started
            size = self.hvd.size()
            samples = self.steps * self.spec.train.batch_size * size
            lr = float(tf.keras.backend.get_value(self.model.optimizer.learning_rate))
            value = float(logs.get(self.monitor, np.inf))
            st = self.state
            improved = st["best"] is None or value < st["best"]
            if improved:
                st.update(best=value, best_epoch=epoch + 1, wait=0)
            else:
                st["wait"] += 1
            stop = (
                bool(self.spec.train.early_stopping_patience) and st["wait"] >= self.spec.train.early_stopping_patience
            )
            row = {k: float(v) for k, v in logs.items()}
            row.update(epoch=epoch + 1, seconds=seconds, samples_per_s=samples / seconds, lr=lr)
            st["history"].append(row)
            st.update(epoch=epoch + 1, lr=lr, done=stop or epoch + 1 >= self.spec.train.epochs)
            if self.hvd.rank() == 0:
                ckpt_dir = Path(self.spec.checkpoint_dir)
                if improved:
                    self.model.save_weights(str(ckpt_dir / BEST_WEIGHTS))
                self.manager.save(checkpoint_number=epoch + 1)
                _write_json(ckpt_dir / STATE_FILE, st)
                acc = self.spec.accuracy_key
                val = (
                    f" val_loss {logs['val_loss']:.4f} val_acc {logs.get('val_' + acc, float('nan')):.4f}"
                    if "val_loss" in logs
                    else ""
                )
                append_progress(
                    ckpt_dir,
                    (
                        f"[train {self.spec.model}] epoch {epoch + 1}/{self.spec.train.epochs}: loss "
                        f"{logs.get('loss', float('nan')):.4f} acc {logs.get(acc, float('nan')):.4f}{val} "
                        f"lr {lr:.5f} | {samples / seconds:,.0f} samples/s on {size} process(es), {seconds:.1f}s"
                        + (" | best so far" if improved else f" | no improvement ({st['wait']})")
                    ),
                )
            fault = self.spec.fault
            if fault and fault.get("after_epoch") == epoch + 1:
                # Rank 0's checkpoint is written before anyone dies; then one rank exits without
                # cleanup, the way a lost executor does.
                self.hvd.allreduce(tf.constant(0.0), name=f"fault_sync_{epoch}")
                if fault.get("rank") == self.hvd.rank():
                    os._exit(3)
            if stop:
                self.model.stop_training = True

    return EpochEnd


def _EpochEnd(*args: Any) -> Any:  # reads like the class it builds
    return _epoch_end_class()(*args)


def _finish(spec: TrainSpec, model: Any, state: dict[str, Any]) -> dict[str, Any]:
    """Rank 0 after training: test metrics on the whole test split, then the exported model."""
    from hybridrec.metrics.classification import classification_report

    test = ShardSpec(spec.urls.get("test", ()), 0, 1, None)
    heads = len(spec.heads)

    def predict(x: np.ndarray) -> np.ndarray:
        out = model.predict_on_batch(x)
        return np.concatenate([np.asarray(o) for o in out], axis=1) if heads else np.asarray(out)

    ids, probs, labels = predict_shard(spec.model, test, spec.image_size, predict, labelled_only=True, heads=heads)
    head_reports: dict[str, Any] = {}
    if heads:
        # Outputs side by side: the category's classes, then each head's; labels (n, 1 + heads).
        sizes = [spec.num_classes] + [n for _, n in spec.head_sizes]
        bounds = np.cumsum([0, *sizes])
        for i, (name, classes) in enumerate(spec.heads, start=1):
            known = labels[:, i] >= 0 if len(ids) else np.zeros(0, dtype=bool)
            pred = probs[known, bounds[i] : bounds[i + 1]].argmax(axis=1) if known.any() else labels[known, i]
            head_reports[name] = classification_report(labels[known, i], pred, classes)
        keep = labels[:, 0] >= 0 if len(ids) else np.zeros(0, dtype=bool)
        probs, labels = probs[keep, : spec.num_classes], labels[keep, 0]
    report = classification_report(labels, probs.argmax(axis=1) if len(labels) else labels, spec.class_names)
    Path(spec.export_dir).mkdir(parents=True, exist_ok=True)
    model.save(spec.export_dir, include_optimizer=False, save_format="tf")
    return {
        "test": report,
        **({"test_heads": head_reports} if heads else {}),
        "history": state["history"],
        "best_epoch": state["best_epoch"],
        "stopped_early": state["epoch"] < spec.train.epochs,
        "epochs_done": state["epoch"],
        "parameters": int(model.count_params()),
        "spec": spec.record(),
    }
