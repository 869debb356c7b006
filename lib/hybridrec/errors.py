"""Errors meant for the person running a job: the message names the problem and the fix.

Jobs catch ``HybridrecError`` at the top, print its message and exit non-zero without a traceback;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class HybridrecError(Exception):
    """Base of the errors whose message is the whole story for the user."""


class MissingInputError(HybridrecError):
    """An upstream table or file does not exist yet; the message names the job to run first."""


class UnwritablePathError(HybridrecError):
    """A folder the job writes is a file or cannot be written; checked before Spark starts, so the
    message names the config key and the path instead of a Delta trace an hour into the run."""


class CorruptTableError(HybridrecError):
    """A Delta table's log cannot be read (a commit file cut short or damaged); the message names
    the table, the broken commit, its last good version and how to repair it."""


class ConcurrentRunError(HybridrecError):
    """Another run committed to the same table (the same night) first and this run's commit was
    refused by Delta; the winner's result stands."""

    def __init__(self, message: str, table: str) -> None:
        super().__init__(message)
        self.table = table
