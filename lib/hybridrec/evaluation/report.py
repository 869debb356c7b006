"""The evaluation report: one self-contained ``index.html`` plus ``metrics.json``, and a console table.

Why self-contained: the report is opened from a file, a CI artefact or a mail attachment, with no
server and no network, so every figure and thumbnail is inline (``data:`` URIs, PNG/JPEG in
base64), the style sheet is inline and the only script is a few inline lines that mark on
``<body>`` whether every image decoded (``data-images-loaded``; read by the browser test).
All text from the data (titles, reasons, ids) is escaped.

What goes in is ``ReportData`` (typed dataclasses; the evaluate job fills it); thumbnails are read
from the catalog image paths given there, shrunk with Pillow and embedded as JPEG. A missing or
unreadable image becomes a neutral box with the product title, never an error.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from hybridrec.evaluation import plots
from hybridrec.files import write_text_atomic

THUMB_PX = 96
INDEX = "index.html"
METRICS_JSON = "metrics.json"


@dataclass(frozen=True)
class MetricRow:
    """One cell of the headline table: a metric's mean over a segment's users and its interval."""

    segment: str
    system: str
    metric: str
    mean: float
    lo: float
    hi: float
    n_users: int


@dataclass(frozen=True)
class SystemFigure:
    """A figure of a whole system (not a mean over users), e.g. ``coverage@10`` per segment."""

    segment: str
    system: str
    name: str
    value: float


@dataclass(frozen=True)
class PairedComparison:
    """mean(system_a) − mean(system_b) over the same users, with its paired bootstrap interval."""

    segment: str
    system_a: str
    system_b: str
    metric: str
    mean: float
    lo: float
    hi: float
    n_users: int


@dataclass
class ClassificationResult:
    """Test-split quality of one content model (image CNN, text LSTM, fusion)."""

    accuracy: float
    macro_f1: float
    class_names: list[str]
    confusion: list[list[int]]  # [true][predicted]
    history: list[dict[str, Any]] = field(default_factory=list)  # one dict per epoch (Keras names)
    examples: int | None = None
    note: str = ""


SIMULATED_STATEMENT = (
    "The interactions are simulated (hybridrec.demo.simulator, seeded): users with category and "
    "attribute preferences, Zipf popularity, sessions, a view → cart → purchase funnel and late-listed "
    "products. The catalog, titles, categories and photos are real; no person's behaviour is in these figures."
)


def data_statement(simulated: bool, interactions_path: str | None) -> str:
    """What the report says the interactions are, from ``interactions.simulated``.

    Why a setting and not a guess: a simulated log and a real one look alike to every job, and a
    reader must not take simulated figures for measured behaviour, nor real ones for a simulation.
    The real case names the file (its folder and name only: no machine path in a shared report).
    """
    if simulated:
        return SIMULATED_STATEMENT
    source = "/".join(Path(interactions_path).parts[-2:]) if interactions_path else "the ingested log"
    return (
        f"The interactions are real, recorded behaviour ({source}, ingested as is), not simulated: "
        "the figures measure what these users actually did after the cutoff."
    )


def report_dir(root: str | Path, cutoff: str) -> Path:
    """``<paths.report>/<cutoff YYYY-MM-DD>/``: one report per catalog (paths.report) and cutoff,
    so evaluating another cutoff keeps the earlier report beside it instead of overwriting it."""
    return Path(root) / cutoff


@dataclass
class Protocol:
    """How the numbers were made: cutoff, windows, counts, and what the data is.

    ``data`` is the statement about the interactions (``data_statement``); ``simulated`` says
    whether they are simulated (None: not stated).
    """

    cutoff: str
    k: int
    description: str = ""
    data: str = ""
    simulated: bool | None = None
    windows: dict[str, str] = field(default_factory=dict)
    counts: dict[str, float] = field(default_factory=dict)
    replicates: int | None = None
    level: float | None = None


@dataclass(frozen=True)
class GalleryItem:
    """A product shown in the gallery: ``source`` (the event of a history item, the source of a
    recommendation), ``reason`` for recommendations, ``score`` shown for similar items."""

    product_id: str
    title: str
    category: str | None = None
    image_path: str | Path | None = None
    source: str = ""
    reason: str = ""
    score: float | None = None


@dataclass
class GalleryUser:
    """A user's history next to the list the system recommended, with reasons."""

    user_id: str
    history: list[GalleryItem]
    recommended: list[GalleryItem]
    note: str = ""  # e.g. the segment, or "2 interactions"


@dataclass
class GalleryColdProduct:
    """A product nobody interacted with before the cutoff, and the items found similar to it."""

    product_id: str
    title: str
    image_path: str | Path | None
    similar: list[GalleryItem]
    category: str | None = None


@dataclass
class ReportData:
    """Everything the report shows; ``extra`` goes to metrics.json only."""

    title: str
    protocol: Protocol
    headline: list[MetricRow]
    system_figures: list[SystemFigure] = field(default_factory=list)
    paired: list[PairedComparison] = field(default_factory=list)
    classification: dict[str, ClassificationResult] = field(default_factory=dict)
    gallery_users: list[GalleryUser] = field(default_factory=list)
    gallery_cold: list[GalleryColdProduct] = field(default_factory=list)
    generated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    extra: dict[str, Any] = field(default_factory=dict)


# ---- conversions from the evaluation and training outputs ---------------------------------------


def metric_rows(table: pd.DataFrame) -> list[MetricRow]:
    """``bootstrap_ci`` output with ``segment`` and ``system`` columns → headline rows."""
    return [
        MetricRow(str(r.segment), str(r.system), str(r.metric), float(r.mean), float(r.lo), float(r.hi), int(r.n_users))
        for r in table.itertuples(index=False)
    ]


def paired_rows(table: pd.DataFrame) -> list[PairedComparison]:
    """``paired_difference_ci`` output with a ``segment`` column → comparison rows."""
    return [
        PairedComparison(
            str(r.segment),
            str(r.system_a),
            str(r.system_b),
            str(r.metric),
            float(r.mean),
            float(r.lo),
            float(r.hi),
            int(r.n_users),
        )
        for r in table.itertuples(index=False)
    ]


def classification_from_training(metrics: Mapping[str, Any]) -> dict[str, ClassificationResult]:
    """The train job's ``metrics.json`` → one result per model (image, text, and fusion when fitted).

    The fusion is tested on the test products that have a photo; its note says so.
    """
    out: dict[str, ClassificationResult] = {}
    for model, m in (metrics.get("models") or {}).items():
        test = m.get("test") or {}
        if "confusion_matrix" in test:
            out[model] = _result(test, m.get("history") or [])
    fusion = metrics.get("fusion") or {}
    ftest = (fusion.get("test") or {}).get("fusion")
    if ftest and "confusion_matrix" in ftest:
        out["fusion"] = _result(
            ftest, fusion.get("history") or [], note="on the test products with a photo (image and text vectors)"
        )
    return out


def _result(test: Mapping[str, Any], history: list[dict[str, Any]], note: str = "") -> ClassificationResult:
    cm = test["confusion_matrix"]
    return ClassificationResult(
        accuracy=float(test["accuracy"]),
        macro_f1=float(test["macro_f1"]),
        class_names=list(cm["classes"]),
        confusion=[list(map(int, row)) for row in cm["rows_true_cols_predicted"]],
        history=list(history),
        examples=test.get("examples"),
        note=note,
    )


# ---- console --------------------------------------------------------------------------------------


def _order(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _num(v: float | None) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.3f}" if abs(v) < 1000 else f"{v:,.0f}"


def format_headline(rows: Sequence[MetricRow], metrics: Sequence[str] | None = None) -> str:
    """The headline table as plain text: per segment, one line per system, ``mean [lo, hi]`` per metric."""
    if not rows:
        return "(no evaluated users)"
    metrics = list(metrics or _order(r.metric for r in rows))
    cells = {(r.segment, r.system, r.metric): r for r in rows}
    systems = _order(r.system for r in rows)
    width_sys = max(len("system"), *(len(s) for s in systems))
    col = 22
    lines: list[str] = []
    for segment in _order(r.segment for r in rows):
        present = [s for s in systems if any((segment, s, m) in cells for m in metrics)]
        n = max(
            (cells[(segment, s, m)].n_users for s in present for m in metrics if (segment, s, m) in cells), default=0
        )
        lines.append(f"{segment} ({n:,} users)")
        lines.append("  " + "system".ljust(width_sys) + "".join(m.rjust(col) for m in metrics))
        for s in present:
            out = []
            for m in metrics:
                r = cells.get((segment, s, m))
                out.append((f"{_num(r.mean)} [{_num(r.lo)}, {_num(r.hi)}]" if r else "-").rjust(col))
            lines.append("  " + s.ljust(width_sys) + "".join(out))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# ---- images -----------------------------------------------------------------------------------------


def thumbnail_data_uri(path: str | Path | None, size: int = THUMB_PX) -> str | None:
    """The image at ``path`` shrunk to fit ``size`` px, as a JPEG ``data:`` URI; None if it cannot be read."""
    if path is None or str(path) == "":
        return None
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            im = im.convert("RGB")
            im.thumbnail((size, size))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=85)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# ---- HTML ------------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:24px;color:#222;
max-width:1200px}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ddd;padding:4px 8px;text-align:right;
font-size:.9em}th{background:#f4f4f4}td.l,th.l{text-align:left}.ci{color:#777;font-size:.85em}
.muted{color:#777}.fig{max-width:100%;height:auto;border:1px solid #eee}
.row{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}
.card{width:112px;font-size:.75em;line-height:1.2}.card img,.ph{width:96px;height:96px;object-fit:contain;
border:1px solid #ddd;background:#fafafa;display:block}
.ph{display:flex;align-items:center;justify-content:center;text-align:center;overflow:hidden;color:#666;
font-size:.85em;padding:2px;box-sizing:border-box}
.user{border:1px solid #e4e4e4;border-radius:6px;padding:8px 12px;margin:12px 0}
.lbl{font-weight:600;margin:6px 0 4px}.why{color:#555}.src{color:#06c}
.pos{color:#0a7d28}.neg{color:#b00020}
"""

_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.images, failed = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (!(imgs[i].complete && imgs[i].naturalWidth > 0)) { failed++; }
  }
  document.body.setAttribute('data-images-total', String(imgs.length));
  document.body.setAttribute('data-images-failed', String(failed));
  document.body.setAttribute('data-images-loaded', failed === 0 ? 'true' : 'false');
});
"""


class _Thumbs:
    """Thumbnails by path, each read once per report."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.cache: dict[str, str | None] = {}

    def card(self, item: GalleryItem, extra: str = "") -> str:
        key = "" if item.image_path is None else str(item.image_path)
        if key not in self.cache:
            self.cache[key] = thumbnail_data_uri(item.image_path, self.size)
        uri = self.cache[key]
        pic = (
            f'<img src="{uri}" alt="{_e(item.title)}" width="{self.size}" height="{self.size}">'
            if uri
            else f'<div class="ph" title="no image">{_e(item.title)}</div>'
        )
        cat = f'<div class="muted">{_e(item.category)}</div>' if item.category else ""
        return (
            f'<div class="card">{pic}<div>{_e(item.title)}</div>{cat}'
            f'<div class="muted">{_e(item.product_id)}</div>{extra}</div>'
        )


def _headline_html(rows: Sequence[MetricRow]) -> str:
    if not rows:
        return "<p>No evaluated users.</p>"
    metrics = _order(r.metric for r in rows)
    cells = {(r.segment, r.system, r.metric): r for r in rows}
    parts = []
    for segment in _order(r.segment for r in rows):
        systems = [s for s in _order(r.system for r in rows) if any((segment, s, m) in cells for m in metrics)]
        n = max(cells[(segment, s, m)].n_users for s in systems for m in metrics if (segment, s, m) in cells)
        head = "".join(f"<th>{_e(m)}</th>" for m in metrics)
        body = []
        for s in systems:
            tds = []
            for m in metrics:
                r = cells.get((segment, s, m))
                tds.append(
                    f'<td>{_num(r.mean)}<br><span class="ci">[{_num(r.lo)}, {_num(r.hi)}]</span></td>'
                    if r
                    else "<td>-</td>"
                )
            body.append(f'<tr><td class="l">{_e(s)}</td>{"".join(tds)}</tr>')
        parts.append(
            f'<h3>{_e(segment)} <span class="muted">({n:,} users)</span></h3>'
            f'<table><tr><th class="l">system</th>{head}</tr>{"".join(body)}</table>'
        )
    return "".join(parts)


def _system_figures_html(figures: Sequence[SystemFigure]) -> str:
    if not figures:
        return ""
    names = _order(f.name for f in figures)
    cells = {(f.segment, f.system, f.name): f.value for f in figures}
    keys = _order((f.segment, f.system) for f in figures)
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    body = "".join(
        f'<tr><td class="l">{_e(seg)}</td><td class="l">{_e(sys)}</td>'
        + "".join(f"<td>{_num(cells.get((seg, sys, n)))}</td>" for n in names)
        + "</tr>"
        for seg, sys in keys
    )
    return (
        f'<h3>System-level figures</h3><table><tr><th class="l">segment</th><th class="l">system</th>'
        f"{head}</tr>{body}</table>"
    )


def _paired_html(paired: Sequence[PairedComparison]) -> str:
    if not paired:
        return ""
    body = []
    for p in paired:
        verdict = "pos" if p.lo > 0 else "neg" if p.hi < 0 else "muted"
        body.append(
            f'<tr><td class="l">{_e(p.segment)}</td><td class="l">{_e(p.system_a)} − {_e(p.system_b)}</td>'
            f'<td class="l">{_e(p.metric)}</td><td class="{verdict}">{_num(p.mean)}</td>'
            f'<td class="ci">[{_num(p.lo)}, {_num(p.hi)}]</td><td>{p.n_users:,}</td></tr>'
        )
    return (
        '<h3>Paired differences</h3><p class="muted">The same users and bootstrap weights for both '
        'systems; an interval that excludes 0 is coloured.</p><table><tr><th class="l">segment</th>'
        '<th class="l">difference</th><th class="l">metric</th><th>mean</th><th>interval</th>'
        f"<th>users</th></tr>{''.join(body)}</table>"
    )


def _protocol_html(p: Protocol) -> str:
    rows = [("cutoff", p.cutoff), ("K", p.k)]
    rows += list(p.windows.items())
    if p.replicates:
        rows.append(
            (
                "bootstrap",
                f"{p.replicates} Poisson replicates over users, {(p.level or 0.95) * 100:g} % percentile intervals",
            )
        )
    table = "".join(f'<tr><th class="l">{_e(k)}</th><td class="l">{_e(v)}</td></tr>' for k, v in rows)
    counts = "".join(
        f'<tr><th class="l">{_e(k)}</th><td>{_e(f"{v:,}" if isinstance(v, (int, float)) else v)}</td></tr>'
        for k, v in p.counts.items()
    )
    out = f"<table>{table}</table>"
    if p.description:
        out += f"<p>{_e(p.description)}</p>"
    if p.data:
        heading = "What is simulated." if p.simulated else "The data."
        out += f"<p><strong>{heading}</strong> {_e(p.data)}</p>"
    if counts:
        out += f"<h3>Counts</h3><table>{counts}</table>"
    return out


def _classification_html(results: Mapping[str, ClassificationResult]) -> str:
    if not results:
        return "<p>No classification results.</p>"
    rows = "".join(
        f'<tr><td class="l">{_e(name)}</td><td>{_num(r.accuracy)}</td><td>{_num(r.macro_f1)}</td>'
        f'<td>{"" if r.examples is None else f"{r.examples:,}"}</td><td class="l">{_e(r.note)}</td></tr>'
        for name, r in results.items()
    )
    parts = [
        '<table><tr><th class="l">model</th><th>accuracy</th><th>macro-F1</th><th>test examples</th>'
        f'<th class="l">note</th></tr>{rows}</table>'
    ]
    for name, r in results.items():
        parts.append(f"<h3>{_e(name)}</h3>")
        cm = plots.confusion_heatmap(r.confusion, r.class_names, title=f"{name}: confusion matrix (test)")
        parts.append(f'<img class="fig" src="{png_data_uri(cm)}" alt="{_e(name)} confusion matrix">')
        if r.history:
            tc = plots.training_curves(r.history, title=f"{name}: training curves")
            parts.append(f'<br><img class="fig" src="{png_data_uri(tc)}" alt="{_e(name)} training curves">')
    return "".join(parts)


def _gallery_html(data: ReportData, thumbs: _Thumbs) -> str:
    parts = []
    for u in data.gallery_users:
        hist = (
            "".join(thumbs.card(i, f'<div class="src">{_e(i.source)}</div>' if i.source else "") for i in u.history)
            or '<span class="muted">no history</span>'
        )
        recs = (
            "".join(
                thumbs.card(
                    i,
                    (f'<div class="src">{_e(i.source)}</div>' if i.source else "")
                    + (f'<div class="why">{_e(i.reason)}</div>' if i.reason else ""),
                )
                for i in u.recommended
            )
            or '<span class="muted">no recommendations</span>'
        )
        note = f' <span class="muted">{_e(u.note)}</span>' if u.note else ""
        parts.append(
            f'<div class="user"><h3>user {_e(u.user_id)}{note}</h3>'
            f'<div class="lbl">history</div><div class="row">{hist}</div>'
            f'<div class="lbl">recommended</div><div class="row">{recs}</div></div>'
        )
    for c in data.gallery_cold:
        own = thumbs.card(GalleryItem(c.product_id, c.title, c.category, c.image_path))
        sims = (
            "".join(
                thumbs.card(i, f'<div class="muted">score {_num(i.score)}</div>' if i.score is not None else "")
                for i in c.similar
            )
            or '<span class="muted">no similar items</span>'
        )
        parts.append(
            f'<div class="user"><h3>cold product {_e(c.product_id)}</h3><div class="row">{own}</div>'
            f'<div class="lbl">similar items</div><div class="row">{sims}</div></div>'
        )
    return "".join(parts) or "<p>No gallery entries.</p>"


def render_html(data: ReportData, thumb_px: int = THUMB_PX) -> str:
    """The whole report as one HTML string (no file or network references)."""
    thumbs = _Thumbs(thumb_px)
    bars = ""
    if data.headline:
        table = pd.DataFrame([asdict(r) for r in data.headline])
        bars = f'<img class="fig" src="{png_data_uri(plots.metric_bars(table))}" alt="metrics per segment and system">'
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(data.title)}</title><style>{_CSS}</style></head>
<body data-images-loaded="pending">
<h1>{_e(data.title)}</h1>
<p class="muted">generated {_e(data.generated_at)}</p>
<h2>Protocol</h2>{_protocol_html(data.protocol)}
<h2>Ranking quality</h2>
<p class="muted">Mean per user, with the bootstrap interval in brackets.</p>
{_headline_html(data.headline)}{_system_figures_html(data.system_figures)}{_paired_html(data.paired)}
{bars}
<h2>Content models (test split)</h2>{_classification_html(data.classification)}
<h2>Gallery</h2>{_gallery_html(data, thumbs)}
<script>{_SCRIPT}</script>
</body></html>
"""


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value


def report_json(data: ReportData) -> dict[str, Any]:
    """What metrics.json holds: every figure of the report (NaN → null), the gallery as ids and reasons."""
    return _jsonable(
        {
            "title": data.title,
            "generated_at": data.generated_at,
            "protocol": asdict(data.protocol),
            "headline": [asdict(r) for r in data.headline],
            "system_figures": [asdict(f) for f in data.system_figures],
            "paired": [asdict(p) for p in data.paired],
            "classification": {k: asdict(v) for k, v in data.classification.items()},
            "gallery": {
                "users": [
                    {
                        "user_id": u.user_id,
                        "note": u.note,
                        "history": [i.product_id for i in u.history],
                        "recommended": [
                            {"product_id": i.product_id, "source": i.source, "reason": i.reason} for i in u.recommended
                        ],
                    }
                    for u in data.gallery_users
                ],
                "cold_products": [
                    {
                        "product_id": c.product_id,
                        "similar": [{"product_id": i.product_id, "score": i.score} for i in c.similar],
                    }
                    for c in data.gallery_cold
                ],
            },
            "extra": data.extra,
        }
    )


def write_report(out_dir: Path, data: ReportData, thumb_px: int = THUMB_PX) -> Path:
    """Write ``out_dir/index.html`` and ``out_dir/metrics.json``; returns the HTML path.

    Each file is replaced atomically, so a reader never sees half a report.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / INDEX
    write_text_atomic(out_dir / METRICS_JSON, json.dumps(report_json(data), indent=1, allow_nan=False))
    write_text_atomic(index, render_html(data, thumb_px))
    return index
