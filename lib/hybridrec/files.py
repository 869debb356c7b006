"""Small file helpers shared by the jobs."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``<path>.tmp`` and rename it over ``path``: a reader sees the old file or the
    new one, never half of one. A whole rewrite, never an append (Databricks volumes refuse appends)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
