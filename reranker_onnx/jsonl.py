"""JSON for line-oriented output (the CLI's JSON modes, the batch job's files): one value per line.

JSON allows U+0085, U+2028 and U+2029 raw inside strings, but line readers (Python's ``str.splitlines``,
JavaScript) break there, so they are escaped; NaN and Infinity are not JSON (strict readers refuse
them), so they raise ``ValueError`` instead of being written.
"""

from __future__ import annotations

import json
from typing import Any, Callable

_LINE_BREAKS = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def json_line(value: object, default: Callable[[Any], Any] | None = None) -> str:
    """``value`` as strict JSON on one line (no newline added); ``default`` as in ``json.dumps``."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, default=default).translate(_LINE_BREAKS)
