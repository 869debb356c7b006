"""Errors meant for the person running a job: the message names the problem and the fix.

Jobs catch ``HybridrecError`` at the top, print its message and exit non-zero without a traceback;
anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class HybridrecError(Exception):
    """Base of the errors whose message is the whole story for the user."""


class MissingInputError(HybridrecError):
    """An upstream table or file does not exist yet; the message names the job to run first."""
