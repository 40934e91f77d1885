"""The exceptions the runtime raises: one tree, each message says what went wrong and what to do.

Every error a user can cause derives from :class:`RerankerError`, so an application (or the CLI) can
catch that one class and show the message without a traceback.
"""

from __future__ import annotations


class RerankerError(Exception):
    """Base class: a problem the user can fix; the message says how."""


class InputError(RerankerError, ValueError):
    """A query or passage that cannot be scored (wrong type, empty query, ...)."""


class ModelNotFoundError(RerankerError, FileNotFoundError):
    """A model name or directory that does not exist locally."""


class ManifestError(RerankerError):
    """A manifest that is missing, malformed, or from a newer format than this runtime reads."""


class IntegrityError(RerankerError):
    """A model file that is missing, truncated or modified since export (sha256 or size mismatch)."""


class VariantError(RerankerError, ValueError):
    """An unknown variant name, or one the model directory does not ship."""


class DownloadError(RerankerError):
    """A pull that failed: network, offline mode, corrupted or interrupted transfer."""


# The errors the caller caused and fixes by changing the call (arguments, input): the CLI exits 2 for
# these and 1 for every other RerankerError; a server answers 4xx for these and 5xx for the others.
CALLER_ERRORS: tuple[type[RerankerError], ...] = (InputError, VariantError)
