"""EpochProgress prints rank 0's epoch lines from progress.log as they are written."""

from __future__ import annotations

import io
import time
from pathlib import Path

from hybridrec.models.progress import PROGRESS_FILE, EpochProgress, append_progress


def test_prints_whole_new_lines_only_and_skips_an_earlier_runs_lines(tmp_path: Path) -> None:
    (tmp_path / PROGRESS_FILE).write_text("[train text] epoch 1/3: old run\n", encoding="utf-8")
    out = io.StringIO()
    watcher = EpochProgress(tmp_path, stream=out)
    assert watcher.poll() == 0 and out.getvalue() == ""
    with (tmp_path / PROGRESS_FILE).open("a", encoding="utf-8") as f:
        f.write("[train text] epoch 2/3: resumed\n[train text] epoch 3/3: half a li")
    assert watcher.poll() == 1
    assert out.getvalue() == "[train text] epoch 2/3: resumed\n"
    with (tmp_path / PROGRESS_FILE).open("a", encoding="utf-8") as f:
        f.write("ne\n")
    assert watcher.poll() == 1
    assert out.getvalue().splitlines() == ["[train text] epoch 2/3: resumed", "[train text] epoch 3/3: half a line"]


def test_lines_appear_while_the_block_runs_and_the_rest_on_exit(tmp_path: Path) -> None:
    out = io.StringIO()
    with EpochProgress(tmp_path, stream=out, interval_s=0.05):
        append_progress(tmp_path, "[train image] epoch 1/2: loss 1.0")
        deadline = time.monotonic() + 5
        while "epoch 1/2" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "epoch 1/2" in out.getvalue(), "the line was not printed while training ran"
        append_progress(tmp_path, "[train image] epoch 2/2: loss 0.5")
    assert out.getvalue().splitlines() == ["[train image] epoch 1/2: loss 1.0", "[train image] epoch 2/2: loss 0.5"]


def test_a_cleared_folder_is_read_from_the_top(tmp_path: Path) -> None:
    append_progress(tmp_path, "x" * 100)
    out = io.StringIO()
    watcher = EpochProgress(tmp_path, stream=out)
    (tmp_path / PROGRESS_FILE).unlink()
    assert watcher.poll() == 0
    append_progress(tmp_path, "[train text] epoch 1/1: fresh start")
    assert watcher.poll() == 1 and out.getvalue() == "[train text] epoch 1/1: fresh start\n"


def test_append_progress_keeps_earlier_lines_and_never_raises(tmp_path: Path, capsys) -> None:
    append_progress(tmp_path, "[train text] epoch 1/2: a")
    append_progress(tmp_path, "[train text] epoch 2/2: b\nwith a newline")
    assert (tmp_path / PROGRESS_FILE).read_text(encoding="utf-8").splitlines() == [
        "[train text] epoch 1/2: a",
        "[train text] epoch 2/2: b with a newline",
    ]
    assert not list(tmp_path.glob("*.tmp"))
    missing = tmp_path / "no-such-folder"
    append_progress(missing, "[train text] epoch 1/1: c")  # cannot write: printed instead
    assert "[train text] epoch 1/1: c (progress.log not written" in capsys.readouterr().out
