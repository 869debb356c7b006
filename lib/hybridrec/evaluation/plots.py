"""Report figures as PNG bytes: metric bars with intervals, confusion matrices, training curves.

Why bytes: the report embeds every figure inline (``data:`` URIs), so nothing is written beside it
and nothing needs a display. Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas
directly, not through ``pyplot``: no global figure state, no backend selection, nothing left open.

Every label is literal text: class names, segments and titles come from the catalog, and a
category such as ``$\\foo$`` would otherwise be parsed as mathtext and fail the report step after all
the evaluation work (``ValueError: Unknown symbol``). Each public function builds and renders its
figure under ``_LITERAL_TEXT`` (mathtext and TeX off), which also covers tick labels that matplotlib
creates only while drawing.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

DPI = 100
_PNG_META = {"Software": None}  # no matplotlib version in the file: same figure, same bytes
# Text objects read these when they are created: "$" and "\\" in data are drawn as they are.
_LITERAL_TEXT = {"text.parse_math": False, "text.usetex": False}

_F = TypeVar("_F", bound=Callable[..., Any])


def literal_text(func: _F) -> _F:
    """Run ``func`` with every text it creates or draws taken literally (see the module docstring)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with rc_context(_LITERAL_TEXT):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@literal_text
def to_png(fig: Figure) -> bytes:
    """Render a figure with the Agg canvas and return the PNG; its texts are drawn literally even
    when the figure was built elsewhere."""
    for text in fig.findobj(Text):
        text.set_parse_math(False)
        text.set_usetex(False)
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata=_PNG_META)
    return buf.getvalue()


@literal_text
def metric_bars(
    table: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    segments: Sequence[str] | None = None,
    systems: Sequence[str] | None = None,
    columns: int = 3,
) -> bytes:
    """One panel per metric: bars per segment (x) and system (colour), error bars from ``lo``/``hi``.

    ``table``: columns ``segment, system, metric, mean, lo, hi`` (``bootstrap_ci`` output with a
    segment column). The order of ``metrics``/``segments``/``systems`` is kept (default: first seen).
    A missing (segment, system) cell leaves a gap; a NaN interval draws no error bar.
    """
    needed = {"segment", "system", "metric", "mean", "lo", "hi"}
    if not needed <= set(table.columns):
        raise ValueError(f"metric table needs columns {sorted(needed)}, got {list(table.columns)}")
    if table.empty:
        raise ValueError("metric table is empty: nothing to plot")
    metrics = list(metrics or pd.unique(table["metric"]))
    segments = list(segments or pd.unique(table["segment"]))
    systems = list(systems or pd.unique(table["system"]))
    columns = max(1, min(columns, len(metrics)))
    rows = math.ceil(len(metrics) / columns)
    fig = Figure(figsize=(4.2 * columns, 3.2 * rows + 0.6), dpi=DPI, layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    x = np.arange(len(segments))
    width = 0.8 / max(1, len(systems))
    cmap = _colours(len(systems))
    indexed = table.set_index(["metric", "segment", "system"])
    for ax, metric in zip(axes, metrics):
        for j, system in enumerate(systems):
            mean, lo, hi = [], [], []
            for seg in segments:
                key = (metric, seg, system)
                row = indexed.loc[key] if key in indexed.index else None
                if isinstance(row, pd.DataFrame):
                    row = row.iloc[0]
                mean.append(np.nan if row is None else float(row["mean"]))
                lo.append(np.nan if row is None else float(row["lo"]))
                hi.append(np.nan if row is None else float(row["hi"]))
            m, low, high = (np.asarray(v, dtype=float) for v in (mean, lo, hi))
            err = np.vstack([np.clip(m - low, 0, None), np.clip(high - m, 0, None)])
            err = np.where(np.isfinite(err), err, 0.0)
            ax.bar(
                x + (j - (len(systems) - 1) / 2) * width,
                m,
                width,
                yerr=err,
                capsize=2,
                label=system,
                color=cmap[j],
                error_kw={"elinewidth": 0.8},
            )
        ax.set_title(metric)
        ax.set_xticks(x, segments, rotation=20, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(systems), 6), fontsize=8)
    return to_png(fig)


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


@literal_text
def confusion_heatmap(
    matrix: Sequence[Sequence[int]] | np.ndarray,
    class_names: Sequence[str],
    title: str = "",
    normalize: bool = True,
) -> bytes:
    """Heatmap of ``matrix[true][predicted]`` with class labels on both axes.

    ``normalize``: colour by the share of each true class (rows sum to 1), so small classes show
    their errors as clearly as big ones; cells are annotated with the counts while there is room
    (up to 20 classes).
    """
    cm = np.asarray(matrix, dtype=float)
    n = len(class_names)
    if cm.shape != (n, n):
        raise ValueError(f"confusion matrix is {cm.shape}, expected {n} x {n} for {n} class names")
    shown = cm
    if normalize:
        totals = cm.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            shown = np.where(totals > 0, cm / totals, 0.0)
    side = min(14.0, max(4.0, 0.32 * n + 2.5))
    fig = Figure(figsize=(side + 1.2, side), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of true class" if normalize else "count")
    fontsize = 8 if n <= 12 else 6
    ax.set_xticks(range(n), class_names, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(n), class_names, fontsize=fontsize)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    ax.text(
                        j,
                        i,
                        f"{int(cm[i, j])}",
                        ha="center",
                        va="center",
                        fontsize=fontsize,
                        color="white" if shown[i, j] > 0.5 else "black",
                    )
    return to_png(fig)


@literal_text
def training_curves(history: Sequence[Mapping[str, Any]], title: str = "") -> bytes:
    """Loss and accuracy per epoch, training and validation, from a ``metrics.json`` history.

    ``history``: one mapping per epoch with ``epoch`` (else the position) and any of ``loss``,
    ``val_loss``, ``accuracy``, ``val_accuracy`` (the Keras names the train job records). A panel
    whose series are all absent says so instead of failing.
    """
    if not history:
        raise ValueError("empty training history: nothing to plot")
    epochs = [float(h.get("epoch", i + 1)) for i, h in enumerate(history)]
    fig = Figure(figsize=(9.0, 3.4), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, (name, keys) in zip(axes, (("loss", ("loss", "val_loss")), ("accuracy", ("accuracy", "val_accuracy")))):
        drawn = False
        for key, style in zip(keys, ("-o", "--s")):
            values = [h.get(key) for h in history]
            if all(v is None for v in values):
                continue
            y = np.array([np.nan if v is None else float(v) for v in values])
            ax.plot(epochs, y, style, markersize=3, label="validation" if key.startswith("val_") else "training")
            drawn = True
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, f"no {name} recorded", ha="center", va="center", transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    return to_png(fig)
