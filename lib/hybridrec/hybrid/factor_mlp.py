"""A small nonlinear head from content vectors to ALS item factors, in NumPy (``fit_mlp``).

Why a second cold-item model beside the ridge (``cold.fit_factor_regression``): a product's place
among warm products is not a linear function of its content vector (a category decides the
direction of its factors, and categories are clusters, not half-spaces, of the content space), so
one hidden layer recovers variance the ridge cannot (bench/bench_factors.py measures by how much).

Why NumPy and not Keras: the head is one ReLU layer on a few hundred inputs, trained on a bounded
sample the driver holds (``cold.fit_cold_model``); in NumPy the fit is bit-for-bit reproducible
from its seed without switching TensorFlow's process-wide determinism on inside the nightly
driver, and the weights are plain arrays that the executors apply with two matrix products (no
TensorFlow import on them).

Training: inputs standardised with the training rows' mean and deviation; the target centred and
divided by one overall deviation (so the loss is the raw factors' squared error, the quantity the
R² measures, up to a constant); mean squared error plus an L2 penalty on the weights; Adam with
mini-batches; early stopping on a seeded validation share of the rows, keeping the best epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hybridrec.errors import HybridrecError


@dataclass
class MlpHead:
    """``factors ≈ relu(((x - x_mean) / x_scale) @ w1 + b1) @ w2 + b2) * y_scale + y_mean``."""

    x_mean: np.ndarray
    x_scale: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    y_mean: np.ndarray
    y_scale: float
    epochs: int  # the epoch kept (best validation loss)
    val_loss: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        h = np.maximum(((np.asarray(x, np.float32) - self.x_mean) / self.x_scale) @ self.w1 + self.b1, 0.0)
        return ((h @ self.w2 + self.b2) * self.y_scale + self.y_mean).astype(np.float32)


def _forward(x: np.ndarray, params: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    w1, b1, w2, b2 = params
    h = np.maximum(x @ w1 + b1, 0.0)
    return h, h @ w2 + b2


def fit_mlp(
    x: np.ndarray,
    y: np.ndarray,
    *,
    hidden: int = 256,
    l2: float = 1e-4,
    learning_rate: float = 1e-3,
    batch_size: int = 256,
    max_epochs: int = 200,
    patience: int = 10,
    val_share: float = 0.1,
    seed: int = 0,
) -> MlpHead:
    """Fit the head on ``x`` (n x d content) → ``y`` (n x r factors); see the module docstring.

    Raises ``HybridrecError`` with fewer than 10 rows (nothing to validate on).
    """
    x = np.asarray(x, np.float32)
    y = np.asarray(y, np.float32)
    n = len(x)
    if n < 10 or len(y) != n:
        raise HybridrecError(f"the factor head needs at least 10 rows of content and factors, got {n} and {len(y)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_val = max(1, int(round(n * val_share)))
    val, train = order[:n_val], order[n_val:]
    x_mean = x[train].mean(axis=0)
    x_scale = x[train].std(axis=0)
    x_scale = np.where(x_scale > 1e-8, x_scale, 1.0).astype(np.float32)
    y_mean = y[train].mean(axis=0)
    y_scale = float(y[train].std()) or 1.0
    xs = (x - x_mean) / x_scale
    ys = (y - y_mean) / y_scale
    d, r = x.shape[1], y.shape[1]
    params = [
        (rng.standard_normal((d, hidden)) * np.sqrt(2.0 / d)).astype(np.float32),
        np.zeros(hidden, np.float32),
        (rng.standard_normal((hidden, r)) * np.sqrt(1.0 / hidden)).astype(np.float32),
        np.zeros(r, np.float32),
    ]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    step = 0

    def val_loss(ps: list[np.ndarray]) -> float:
        return float(((_forward(xs[val], ps)[1] - ys[val]) ** 2).mean())

    best = (val_loss(params), 0, [p.copy() for p in params])
    waited = 0
    for epoch in range(1, max_epochs + 1):
        shuffled = train[rng.permutation(len(train))]
        for lo in range(0, len(shuffled), batch_size):
            idx = shuffled[lo : lo + batch_size]
            xb, yb = xs[idx], ys[idx]
            h, out = _forward(xb, params)
            g_out = 2.0 * (out - yb) / out.size
            g_w2 = h.T @ g_out + 2.0 * l2 * params[2]
            g_b2 = g_out.sum(axis=0)
            g_h = (g_out @ params[2].T) * (h > 0)
            g_w1 = xb.T @ g_h + 2.0 * l2 * params[0]
            g_b1 = g_h.sum(axis=0)
            step += 1
            for i, g in enumerate((g_w1, g_b1, g_w2, g_b2)):
                m[i] = beta1 * m[i] + (1 - beta1) * g
                v[i] = beta2 * v[i] + (1 - beta2) * g * g
                m_hat = m[i] / (1 - beta1**step)
                v_hat = v[i] / (1 - beta2**step)
                params[i] = (params[i] - learning_rate * m_hat / (np.sqrt(v_hat) + eps)).astype(np.float32)
        loss = val_loss(params)
        if loss < best[0] - 1e-7:
            best = (loss, epoch, [p.copy() for p in params])
            waited = 0
        else:
            waited += 1
            if waited >= patience:
                break
    w1, b1, w2, b2 = best[2]
    return MlpHead(
        x_mean=x_mean.astype(np.float32),
        x_scale=x_scale,
        w1=w1,
        b1=b1,
        w2=w2,
        b2=b2,
        y_mean=y_mean.astype(np.float32),
        y_scale=y_scale,
        epochs=best[1],
        val_loss=best[0],
    )
