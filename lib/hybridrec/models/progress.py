"""Live training progress on the driver: rank 0's epoch lines, read from the checkpoint folder.

``horovod.spark.run`` relays each rank's stdout to the driver through a socket that the driver reads
in 64 KiB blocks, so a rank's ``print`` reaches the job's output only when that model's run ends.
Rank 0 therefore appends its epoch lines to ``progress.log`` beside its checkpoint
(``append_progress``), and the driver prints each whole new line within about a second.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import TextIO

from hybridrec.files import write_text_atomic

PROGRESS_FILE = "progress.log"


def append_progress(checkpoint_dir: str | Path, line: str) -> None:
    """Rank 0's epoch line, added to ``progress.log`` beside the checkpoint for ``EpochProgress`` to
    print. The file is rewritten whole and renamed into place (``write_text_atomic``), not opened for
    append: Databricks volumes do not support appending to a file. A failure to write it never stops
    training: the line then goes to stdout (late, but not lost)."""
    path = Path(checkpoint_dir) / PROGRESS_FILE
    text = line.replace("\n", " ") + "\n"
    try:
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
        write_text_atomic(path, old + text)
    except OSError as exc:
        print(f"{text.rstrip()} (progress.log not written: {exc})", flush=True)


class EpochProgress:
    """Prints the lines appended to ``<checkpoint_dir>/progress.log`` while the block runs.

    Lines already in the file when the block starts (an earlier, resumed run's) are not repeated;
    a line still being written is held back until its newline; on exit the rest is printed."""

    def __init__(self, checkpoint_dir: str | Path, stream: TextIO | None = None, interval_s: float = 0.5) -> None:
        self.path = Path(checkpoint_dir) / PROGRESS_FILE
        self.stream = stream if stream is not None else sys.stdout
        self.interval_s = interval_s
        self.offset = self.path.stat().st_size if self.path.is_file() else 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> int:
        """Print the whole lines added since the last poll; how many."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return 0
        if size < self.offset:  # the folder was cleared for a fresh start: read from the top
            self.offset = 0
        if size == self.offset:
            return 0
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read(size - self.offset)
        end = data.rfind(b"\n") + 1
        if not end:
            return 0
        self.offset += end
        text = data[:end].decode("utf-8", errors="replace")
        self.stream.write(text)
        self.stream.flush()
        return text.count("\n")

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.poll()
            except OSError:  # a transient read error must not stop training; the next poll retries
                continue

    def __enter__(self) -> EpochProgress:
        self._thread = threading.Thread(target=self._run, name="epoch-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()
