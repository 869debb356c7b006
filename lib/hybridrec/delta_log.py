"""What a damaged Delta log looks like, and the one sentence that tells a user how to repair it.

Spark ("FAILED_READ_FILE ... _delta_log/00000000000000000002.json", a checksum error) and delta-rs
("Json error: Truncated record whilst reading string", no file named) both fail with hundreds of
lines when a commit file was cut short (a full disk, a crashed copy, a partial sync). Neither RESTORE
nor a write helps then: both replay the broken commit first. What does help is reading the last good
version by time travel, and moving the broken commit out of ``_delta_log`` when it is the newest.

Spark-free on purpose: the Spark jobs (``tables``) and the Spark-free reader (``reader``) share it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

_COMMIT = re.compile(r"^(\d{20})\.json$")
# A log file named in an error message (Spark quotes the file it failed to read).
_LOG_FILE_IN_TEXT = re.compile(r"(?P<table>[^\s'\"]+?)/_delta_log/(?P<version>\d{20})\.json")


@dataclass(frozen=True)
class BrokenCommit:
    """The first unreadable commit of a table's log and the newest commit there is."""

    table_path: str
    version: int
    latest: int

    @property
    def file_name(self) -> str:
        return f"{self.version:020d}.json"


def local_path(uri: str) -> Path | None:
    """The local folder of ``uri`` (a plain path or ``file:``), or None for a remote store."""
    if uri.startswith("file:"):
        return Path(re.sub(r"^file:/*", "/", uri))
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", uri):
        return None
    return Path(uri)


def _readable(path: Path) -> bool:
    """Every line of the commit file is a JSON object (a truncated file ends mid-object)."""
    try:
        text = path.read_text(encoding="utf-8")
        return all(isinstance(json.loads(line), dict) for line in text.splitlines() if line.strip())
    except (OSError, UnicodeDecodeError, ValueError):
        return False


def find_broken_commit(table_path: str) -> BrokenCommit | None:
    """The oldest commit file of a local table that does not parse, or None (remote, or all fine).

    Only called after a read failed, so reading every commit file once is acceptable.
    """
    folder = local_path(table_path)
    if folder is None or not (folder / "_delta_log").is_dir():
        return None
    versions = sorted(int(m.group(1)) for p in (folder / "_delta_log").iterdir() if (m := _COMMIT.match(p.name)))
    for version in versions:
        if not _readable(folder / "_delta_log" / f"{version:020d}.json"):
            return BrokenCommit(str(folder), version, versions[-1])
    return None


def broken_commit_in_text(text: str) -> BrokenCommit | None:
    """The commit file an error message names, if it names one under a ``_delta_log`` folder."""
    m = _LOG_FILE_IN_TEXT.search(text)
    if not m:
        return None
    table = m.group("table")
    folder = local_path(table)
    found = find_broken_commit(table) if folder is not None else None
    if found is not None:
        return found
    version = int(m.group("version"))
    return BrokenCommit(str(folder or table), version, version)


def repair_advice(name: str, broken: BrokenCommit) -> str:
    """One sentence: which table, which commit, the last good version and how to get back to it."""
    log_file = f"{broken.table_path}/_delta_log/{broken.file_name}"
    good = broken.version - 1
    if broken.version == 0:
        return (
            f"{name} at {broken.table_path} is corrupt: its first commit {log_file} is unreadable, "
            "so no version can be read; delete the folder and re-run the job that writes it"
        )
    read_good = f"read version {good} with time travel (versionAsOf {good})"
    if broken.version == broken.latest:
        return (
            f"{name} at {broken.table_path} is corrupt: its newest commit {log_file} is cut short or "
            f"damaged (RESTORE cannot read past it); {read_good}, or move that file (and its .crc, if any) "
            f"out of _delta_log so the table ends at version {good}, then re-run the job that wrote it"
        )
    return (
        f"{name} at {broken.table_path} is corrupt: commit {log_file} is cut short or damaged and "
        f"{broken.latest - broken.version} later commit(s) build on it; {read_good} and copy it to a "
        "new table, or put the file back from a backup"
    )


def corrupt_without_file(name: str, table_path: str, cause: str) -> str:
    """The sentence when the broken commit cannot be located (a remote store)."""
    return (
        f"{name} at {table_path} is corrupt: its Delta log cannot be read ({cause}); read the last "
        "good version with time travel (versionAsOf) and move the broken commit out of _delta_log "
        "if it is the newest, then re-run the job that wrote it"
    )
