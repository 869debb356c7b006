"""Horovod on Spark really trains across 2 processes: both ranks report, gradients are averaged.

Each rank trains the same tiny Keras model on a *different* shard of data through
``hvd.DistributedOptimizer``. If gradients were not averaged, the ranks' weights would drift apart;
with Horovod they stay identical and equal to a single-process run on the mean gradient.
"""

from __future__ import annotations

import numpy as np
import pytest


def _train_tiny_model() -> dict:
    """Runs inside each Horovod process (started by horovod.spark.run on a Spark task)."""
    import horovod.tensorflow.keras as hvd
    import numpy as np
    import tensorflow as tf

    hvd.init()
    tf.random.set_seed(0)
    rank, size = hvd.rank(), hvd.size()
    # Rank-specific shard: the two ranks see different inputs and targets.
    rng = np.random.default_rng(100 + rank)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0], dtype="float32") + rank).reshape(-1, 1)

    model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(1)])
    opt = hvd.DistributedOptimizer(tf.keras.optimizers.SGD(learning_rate=0.05 * size))
    model.compile(optimizer=opt, loss="mse")
    callbacks = [
        hvd.callbacks.BroadcastGlobalVariablesCallback(0),
        hvd.callbacks.MetricAverageCallback(),
    ]
    hist = model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=callbacks, shuffle=False)
    mean_rank = float(hvd.allreduce(tf.constant(float(rank)), op=hvd.Average).numpy())
    return {
        "rank": rank,
        "size": size,
        "weights": [w.tolist() for w in model.get_weights()],
        "loss": hist.history["loss"],
        "mean_rank": mean_rank,
    }


def test_horovod_spark_run_trains_across_two_processes(spark) -> None:
    import sys

    import cloudpickle
    import horovod.spark

    # Test modules are not importable in the Horovod worker processes: ship this one by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    results = horovod.spark.run(
        _train_tiny_model,
        num_proc=2,
        use_gloo=True,
        nics={"lo"},
        start_timeout=300,
        verbose=0,
        env={"HOROVOD_GLOO_IFACE": "lo", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert all(r["size"] == 2 for r in results)
    assert all(r["mean_rank"] == pytest.approx(0.5) for r in results)
    # Gradients averaged: both ranks end with the same weights although their data differed...
    w0, w1 = (np.concatenate([np.ravel(w) for w in r["weights"]]) for r in results)
    np.testing.assert_allclose(w0, w1, rtol=1e-6, atol=1e-6)
    # ...and the model learned something (loss falls on both ranks; averaged across ranks).
    for r in results:
        assert r["loss"][-1] < r["loss"][0]
    assert results[0]["loss"] == pytest.approx(results[1]["loss"])
