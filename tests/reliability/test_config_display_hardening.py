"""Issue 22, items 4, 5, 6 and 12: config values that were silently mis-read or failed late, plot
labels that crashed the report, and titles that could steer the operator's terminal.

Each config case is a file or ``--set`` given to a job: it must exit 2 at start-up with one line on
stderr naming the key (and line, or value and allowed range) and no traceback, before any Spark work.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO_ROOT
from hybridrec.config import INT32_MAX, INT32_MIN, Config, ConfigError, Limit, load_config
from hybridrec.evaluation import plots
from hybridrec.reader import format_table, terminal_text

pytestmark = pytest.mark.unit


def _run(entry: str, tmp_path: Path, text: str, overrides: tuple[str, ...] = ()) -> int:
    """A job's entry point (``run_job``, as jobs/recommend.py) or the ``hybridrec`` command with
    ``text`` as the config file; neither may get past loading it."""
    conf = tmp_path / "job.yaml"
    conf.write_text(text, encoding="utf-8")
    argv = ["--config", str(conf)]
    for item in overrides:
        argv += ["--set", item]
    if entry == "cli":
        from hybridrec.cli import main as cli_main

        return cli_main(["demo-data", *argv])
    from hybridrec.job import run_job

    def main(ctx: object) -> None:  # pragma: no cover - reaching it is the failure
        raise AssertionError("the job ran with a config that should have been refused")

    return run_job("recommend", main, argv)


CONFIG_CASES = [
    pytest.param(
        "recommend:\n  top_n: 5\nals:\n  rank: 8\nrecommend:\n  exclude: none\n",
        (),
        "duplicate key recommend at line 5 (first at line 1)",
        id="section-twice",
    ),
    pytest.param(
        "als:\n  rank: 8\n  alpha: 2.0\n  rank: 16\n",
        (),
        "duplicate key als.rank at line 4 (first at line 2)",
        id="key-twice",
    ),
    pytest.param("", ("spark.conf={a: '1', a: '2'}",), "duplicate key a at line 1", id="override-key-twice"),
    pytest.param(
        "",
        ("recommend.top_n=99999999999999999999",),
        "recommend.top_n must be at most 1000, got 99999999999999999999 (allowed: 1 to 1000)",
        id="top-n-beyond-64-bit",
    ),
    pytest.param(
        "recommend:\n  top_n: 5000\n", (), "recommend.top_n must be at most 1000, got 5000", id="top-n-absurd"
    ),
    pytest.param(
        "",
        ("recommend.popular_days=.inf",),
        "recommend.popular_days must be a finite number, got inf (allowed: > 0 and at most 36500",
        id="popular-days-inf",
    ),
    pytest.param("als:\n  alpha: .nan\n", (), "als.alpha must be a finite number, got nan", id="alpha-nan"),
    pytest.param(
        "",
        ("spark.shuffle_partitions=3000000000",),
        "spark.shuffle_partitions must be at most 100000, got 3000000000",
        id="partitions-beyond-int32",
    ),
    pytest.param(
        "", ("als.tune_rank=[8, 99999]",), "als.tune_rank[1] must be at most 4096, got 99999", id="grid-value-absurd"
    ),
    pytest.param(
        "interactions:\n  event_weights: {view: 1.0, buy: -.inf}\n",
        (),
        "interactions.event_weights.buy must be a finite number, got -inf",
        id="weight-minus-inf",
    ),
    pytest.param(
        "", ("demo.seed=-1",), "demo.seed must be at least 0, got -1 (allowed: 0 to 2147483647)", id="negative-seed"
    ),
    pytest.param(
        "",
        ("als.event_weights={view: -1}",),
        "als.event_weights.view must be a number >= 0, got -1.0",
        id="negative-weight-wording-kept",
    ),
]


@pytest.mark.parametrize("entry", ["job", "cli"])
@pytest.mark.parametrize(("text", "overrides", "message"), CONFIG_CASES)
def test_a_bad_config_stops_the_job_at_start_with_one_line(
    tmp_path: Path, capsys, entry: str, text: str, overrides: tuple[str, ...], message: str
) -> None:
    assert _run(entry, tmp_path, text, overrides) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_a_merge_key_is_no_duplicate(tmp_path: Path) -> None:
    """``<<: *base`` then a key of the base: the explicit key overrides, as YAML means it to."""
    conf = tmp_path / "c.yaml"
    conf.write_text("x-base: &base {top_n: 7, history_items: 9}\n", encoding="utf-8")
    conf.write_text(conf.read_text() + "recommend:\n  <<: *base\n  top_n: 8\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown config key x-base"):  # anchors live in known keys only
        load_config(conf)
    conf.write_text("recommend: &r\n  top_n: 7\n  history_items: 9\nevaluate:\n  k: 5\n", encoding="utf-8")
    assert load_config(conf).recommend.top_n == 7


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "conf").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_under_the_new_rules(path: Path) -> None:
    load_config(path)


def _numeric(tp: object) -> bool:
    """int or float, also inside Optional, list and dict values."""
    if tp in (int, float):
        return True
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType, list):
        return any(_numeric(a) for a in args)
    if origin is dict:
        return _numeric(args[1])
    return False


@pytest.mark.parametrize(
    "section",
    [typing.get_type_hints(Config)[f.name] for f in dataclasses.fields(Config) if not f.metadata.get("internal")],
    ids=lambda c: c.__name__,
)
def test_every_numeric_setting_has_a_sane_range(section: type) -> None:
    """A new numeric setting without a Limit fails here, not in a night."""
    hints = typing.get_type_hints(section)
    limits = getattr(section, "LIMITS", {})
    numeric = {f.name for f in dataclasses.fields(section) if _numeric(hints[f.name])}
    assert numeric - set(limits) == set(), f"{section.__name__}: no LIMITS entry"
    assert set(limits) - numeric == set(), f"{section.__name__}: LIMITS names no numeric field"
    default = section()
    for name, limit in limits.items():
        assert isinstance(limit, Limit)
        assert limit.hi is not None and math.isfinite(limit.hi)
        if hints[name] is int or int in typing.get_args(hints[name]):
            assert INT32_MIN <= (limit.lo or 0) and limit.hi <= INT32_MAX, name
        value = getattr(default, name)
        values = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
        for v in values:
            if v is not None:
                limit.check(f"{section.__name__}.{name}", v)  # defaults lie inside their range


def test_an_int_without_its_own_limit_still_stops_at_32_bits() -> None:
    from hybridrec.config.loader import _coerce

    with pytest.raises(ConfigError, match=r"x must be an integer from -2147483648 to 2147483647 .*got 2147483648"):
        _coerce(int, 2**31, "x")
    assert _coerce(int, 2**31 - 1, "x") == 2**31 - 1


# ---- item 6: plot labels are literal text ---------------------------------------------------------

LABELS = ["$\\foo$", "a$b$c", "$x^{$", "\\frac{1}{0}", "50%_off"]


def test_metric_bars_draw_dollar_and_backslash_labels_literally() -> None:
    table = pd.DataFrame(
        [
            {"segment": s, "system": y, "metric": m, "mean": 0.1, "lo": 0.05, "hi": 0.2}
            for s in LABELS
            for y in LABELS[:2]
            for m in LABELS[:2]
        ]
    )
    assert plots.metric_bars(table).startswith(b"\x89PNG")


def test_confusion_heatmap_and_curves_draw_category_names_literally() -> None:
    assert plots.confusion_heatmap([[1] * 5] * 5, LABELS, title="$\\foo$").startswith(b"\x89PNG")
    assert plots.training_curves([{"loss": 1.0, "val_loss": 1.2}], title="$\\foo$").startswith(b"\x89PNG")


def test_a_figure_built_elsewhere_is_rendered_literally() -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    fig.subplots().set_title("$\\foo$")
    assert plots.to_png(fig).startswith(b"\x89PNG")


# ---- item 12: nothing from a title reaches the terminal raw ---------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J\x1b]0;pwned\x07Mug", "\\x1b[2J\\x1b]0;pwned\\x07Mug"),
        ("nul\x00byte", "nul\\x00byte"),
        ("photo\u202egpj.exe", "photo\\u202egpj.exe"),
        ("\u2066isolated\u2069", "\\u2066isolated\\u2069"),
        ("c1\x9bcontrol\x7f", "c1\\x9bcontrol\\x7f"),
        ("Café — 日本 🙂", "Café — 日本 🙂"),
    ],
)
def test_terminal_text_escapes_controls_and_bidi_overrides(raw: str, shown: str) -> None:
    assert terminal_text(raw) == shown


def test_format_table_prints_no_control_character() -> None:
    df = pd.DataFrame(
        {"product_id": ["p\x1b[31m1", "p2"], "title": ["\x1b[31mRED\x07", "evil\u202etxt.exe"], "score": [1.0, 0.5]}
    )
    out = format_table(df, max_width=12)
    assert not any(ch in out for ch in ("\x1b", "\x07", "\u202e", "\x00"))
    assert "\\x1b[31mR..." in out and "evil\\u202..." in out
    widths = {len(line) for line in out.splitlines()[:2]}
    assert len(widths) == 1  # header and rule line up: the escapes are counted as printed
