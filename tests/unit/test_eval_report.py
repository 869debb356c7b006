"""The report (evaluation.report): one self-contained HTML file, every image inline, text escaped;
metrics.json with the figures; the console table."""

from __future__ import annotations

import base64
import io
import json
import math
import re
from pathlib import Path

from PIL import Image

from hybridrec.evaluation.report import (
    ClassificationResult,
    GalleryColdProduct,
    GalleryItem,
    GalleryUser,
    MetricRow,
    PairedComparison,
    Protocol,
    ReportData,
    SystemFigure,
    classification_from_training,
    format_headline,
    thumbnail_data_uri,
    write_report,
)

EVIL = '<script>alert("x")</script> & Co'


def make_jpeg(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (240, 320)) -> Path:
    Image.new("RGB", size, colour).save(path, format="JPEG")
    return path


def sample_data(tmp: Path) -> ReportData:
    """Report data with generated photos, one missing photo and one corrupt file."""
    red = make_jpeg(tmp / "red.jpg", (200, 30, 30))
    green = make_jpeg(tmp / "green.jpg", (30, 200, 30))
    blue = make_jpeg(tmp / "blue.jpg", (30, 30, 200), size=(500, 120))
    corrupt = tmp / "corrupt.jpg"
    corrupt.write_bytes(b"not a jpeg")
    headline = [
        MetricRow(seg, sys, metric, 0.1 * (i + 1), 0.1 * (i + 1) - 0.02, 0.1 * (i + 1) + 0.02, 1000 - 10 * j)
        for j, seg in enumerate(["all users", "<=3 interactions", "cold items"])
        for i, sys in enumerate(["popularity", "als", "hybrid"])
        for metric in ["recall@10", "ndcg@10", "map@10", "n_categories", "novelty"]
    ]
    headline.append(MetricRow("cold items", "content", "recall@10", 0.2, math.nan, math.nan, 3))
    history = [
        {"epoch": e, "loss": 1 / e, "val_loss": 1.2 / e, "accuracy": 1 - 1 / (e + 1), "val_accuracy": 0.8 - 1 / (e + 3)}
        for e in range(1, 5)
    ]
    cm = [[8, 1, 1], [0, 9, 1], [2, 0, 8]]
    classes = ["Tshirts", "Shirts", EVIL]
    return ReportData(
        title="hybridrec offline evaluation",
        protocol=Protocol(
            cutoff="2025-12-25",
            k=10,
            description="Temporal split: last 7 days held out.",
            data="Interactions come from the seeded simulator.",
            simulated=True,
            windows={"train": "until 2025-12-25", "test": "2025-12-25 .. 2026-01-01"},
            counts={"test users": 1000, "catalog": 2000},
            replicates=200,
            level=0.95,
        ),
        headline=headline,
        system_figures=[
            SystemFigure("all users", s, "coverage@10", c) for s, c in (("popularity", 0.005), ("hybrid", 0.31))
        ],
        paired=[
            PairedComparison("all users", "hybrid", "als", "ndcg@10", 0.02, 0.01, 0.03, 990),
            PairedComparison("cold items", "hybrid", "als", "ndcg@10", -0.01, -0.03, 0.01, 12),
        ],
        classification={
            "image": ClassificationResult(0.83, 0.8, classes, cm, history, examples=30),
            "fusion": ClassificationResult(0.9, 0.88, classes, cm, [], examples=30, note="photo subset"),
        },
        gallery_users=[
            GalleryUser(
                "u0001",
                history=[
                    GalleryItem("p1", "Red shirt", "Shirts", red),
                    GalleryItem("p2", EVIL, "Tshirts", tmp / "missing.jpg"),
                ],
                recommended=[
                    GalleryItem("p3", "Green tee", "Tshirts", green, "als", "people who bought Red shirt"),
                    GalleryItem("p4", "Broken photo", "Shirts", corrupt, "content", EVIL),
                    GalleryItem("p5", "No photo", None, None, "popular", "popular in Shirts"),
                ],
                note="2 interactions",
            )
        ],
        gallery_cold=[
            GalleryColdProduct(
                "p9",
                "Blue jeans (new)",
                blue,
                [
                    GalleryItem("p1", "Red shirt", "Shirts", red, score=0.91),
                    GalleryItem("p3", "Green tee", "Tshirts", green, score=0.5),
                ],
            )
        ],
        generated_at="2026-01-01T00:00:00+00:00",
        extra={"k": 10},
    )


def test_report_is_self_contained_and_escaped(tmp_path: Path) -> None:
    index = write_report(tmp_path / "report", sample_data(tmp_path))
    assert index == tmp_path / "report" / "index.html"
    html = index.read_text(encoding="utf-8")
    srcs = re.findall(r'<img\b[^>]*\bsrc="([^"]*)"', html)
    # bar plot + 2 confusion matrices + 1 training curve + 3 distinct readable photos (red twice, green
    # twice, blue once: the same photo is read once but shown each time)
    assert len(srcs) == 4 + 5
    assert all(s.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for s in srcs)
    for s in srcs:
        Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))).load()
    assert not re.search(r"https?://", html)
    assert not re.search(r'\b(?:href|src)="(?!data:)', html)
    assert "<link" not in html
    # the only script is the report's own inline image check
    assert (
        html.count("<script") == 1
        and "<script>" in html
        and "src=" not in html.split("<script>")[1].split("</script>")[0]
    )
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in html
    # missing and corrupt photos: a placeholder box with the title instead
    assert html.count('class="ph"') == 3
    assert '<div class="ph" title="no image">Broken photo</div>' in html


def test_thumbnails_are_small_jpegs(tmp_path: Path) -> None:
    uri = thumbnail_data_uri(make_jpeg(tmp_path / "big.jpg", (10, 120, 240), size=(600, 800)), size=96)
    assert uri and uri.startswith("data:image/jpeg;base64,")
    im = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert im.format == "JPEG" and max(im.size) == 96 and im.size == (72, 96)
    assert thumbnail_data_uri(tmp_path / "nope.jpg") is None
    assert thumbnail_data_uri(None) is None
    png = tmp_path / "rgba.png"
    Image.new("RGBA", (50, 50), (0, 0, 0, 0)).save(png)
    assert thumbnail_data_uri(png)


def test_metrics_json_holds_the_figures(tmp_path: Path) -> None:
    data = sample_data(tmp_path)
    write_report(tmp_path / "r", data)
    saved = json.loads((tmp_path / "r" / "metrics.json").read_text(encoding="utf-8"))
    assert len(saved["headline"]) == len(data.headline)
    nan_row = [r for r in saved["headline"] if r["system"] == "content"][0]
    assert nan_row["lo"] is None and nan_row["mean"] == 0.2
    assert saved["paired"][0] == {
        "segment": "all users",
        "system_a": "hybrid",
        "system_b": "als",
        "metric": "ndcg@10",
        "mean": 0.02,
        "lo": 0.01,
        "hi": 0.03,
        "n_users": 990,
    }
    assert saved["classification"]["image"]["confusion"][0] == [8, 1, 1]
    assert saved["gallery"]["users"][0]["recommended"][0] == {
        "product_id": "p3",
        "source": "als",
        "reason": "people who bought Red shirt",
    }
    assert saved["protocol"]["cutoff"] == "2025-12-25"


def test_rewriting_replaces_the_report(tmp_path: Path) -> None:
    data = sample_data(tmp_path)
    write_report(tmp_path / "r", data)
    data.title = "second run"
    write_report(tmp_path / "r", data)
    assert "<title>second run</title>" in (tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["index.html", "metrics.json"]


def test_an_empty_report_still_renders(tmp_path: Path) -> None:
    html = write_report(tmp_path / "r", ReportData("empty", Protocol("2026-01-01", 10), [])).read_text("utf-8")
    assert "No evaluated users." in html and "No gallery entries." in html


def test_format_headline_is_a_plain_text_table() -> None:
    rows = [
        MetricRow("all users", "als", "recall@10", 0.3123, 0.3, 0.325, 1200),
        MetricRow("all users", "als", "ndcg@10", 0.2, 0.19, 0.21, 1200),
        MetricRow("all users", "hybrid", "recall@10", 0.35, 0.34, 0.36, 1200),
        MetricRow("cold items", "hybrid", "recall@10", 0.1, math.nan, math.nan, 7),
    ]
    text = format_headline(rows)
    lines = text.splitlines()
    assert lines[0] == "all users (1,200 users)"
    assert lines[1].split() == ["system", "recall@10", "ndcg@10"]
    assert lines[2].split() == ["als", "0.312", "[0.300,", "0.325]", "0.200", "[0.190,", "0.210]"]
    assert lines[3].split() == ["hybrid", "0.350", "[0.340,", "0.360]", "-"]
    assert "cold items (7 users)" in text and "0.100 [-, -]" in text
    assert format_headline([]) == "(no evaluated users)"


def test_classification_from_the_train_jobs_metrics() -> None:
    cm = {"classes": ["a", "b"], "rows_true_cols_predicted": [[3, 1], [0, 4]]}
    test = {"examples": 8, "accuracy": 0.875, "macro_f1": 0.87, "confusion_matrix": cm}
    metrics = {
        "models": {
            "image": {"test": test, "history": [{"epoch": 1, "loss": 1.0}]},
            "text": {"test": test, "history": []},
        },
        "fusion": {"history": [{"epoch": 1, "loss": 0.5}], "test": {"fusion": test, "image": test, "text": test}},
    }
    got = classification_from_training(metrics)
    assert list(got) == ["image", "text", "fusion"]
    assert got["image"].confusion == [[3, 1], [0, 4]] and got["image"].history == [{"epoch": 1, "loss": 1.0}]
    assert got["fusion"].accuracy == 0.875 and "photo" in got["fusion"].note
    assert classification_from_training({"models": {}}) == {}
