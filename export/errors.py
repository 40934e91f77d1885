"""The export stage's error: a step that cannot proceed; the message says why and what to do."""

from __future__ import annotations


class ExportError(Exception):
    """An export that cannot proceed; the message says why and what to do."""
