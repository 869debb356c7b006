"""The report's statement about the interactions comes from interactions.simulated, and each
cutoff gets its own report folder."""

from __future__ import annotations

import json
from pathlib import Path

from hybridrec.evaluation.report import (
    SIMULATED_STATEMENT,
    Protocol,
    ReportData,
    data_statement,
    report_dir,
    write_report,
)


def _report(tmp_path: Path, simulated: bool, cutoff: str = "2011-10-18") -> tuple[str, dict]:
    statement = data_statement(simulated, "/somewhere/shared/data/online-retail/interactions.csv.gz")
    data = ReportData("t", Protocol(cutoff, 10, data=statement, simulated=simulated), [])
    index = write_report(report_dir(tmp_path / "report", cutoff), data)
    return index.read_text(encoding="utf-8"), json.loads((index.parent / "metrics.json").read_text("utf-8"))


def test_real_interactions_are_not_called_simulated(tmp_path: Path) -> None:
    html, saved = _report(tmp_path, simulated=False)
    assert "What is simulated." not in html and "The interactions are simulated" not in html
    assert "real, recorded behaviour (online-retail/interactions.csv.gz" in html
    assert "/somewhere" not in html, "no machine path in a shared report"
    assert saved["protocol"]["simulated"] is False
    assert saved["protocol"]["data"].startswith("The interactions are real")


def test_simulated_interactions_say_so(tmp_path: Path) -> None:
    html, saved = _report(tmp_path, simulated=True)
    assert "<strong>What is simulated.</strong>" in html
    assert "The interactions are simulated (hybridrec.demo.simulator, seeded)" in html
    assert saved["protocol"] == {**saved["protocol"], "simulated": True, "data": SIMULATED_STATEMENT}


def test_statement_without_a_path_names_no_file() -> None:
    assert "(the ingested log," in data_statement(False, None)


def test_one_report_folder_per_cutoff(tmp_path: Path) -> None:
    _report(tmp_path, simulated=False, cutoff="2011-10-18")
    _report(tmp_path, simulated=False, cutoff="2011-10-04")
    root = tmp_path / "report"
    assert sorted(p.name for p in root.iterdir()) == ["2011-10-04", "2011-10-18"]
    for cutoff in ("2011-10-04", "2011-10-18"):
        saved = json.loads((root / cutoff / "metrics.json").read_text("utf-8"))
        assert saved["protocol"]["cutoff"] == cutoff
    assert report_dir("r", "2011-10-18") == Path("r") / "2011-10-18"
