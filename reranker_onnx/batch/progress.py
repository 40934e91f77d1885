"""The progress bar: pairs/s and an ETA on a terminal, nothing in a pipe (tqdm decides, from stderr)."""

from __future__ import annotations

import sys
import time

from .deps import need


class Progress:
    """Measured in input bytes (known before any row is parsed, so the ETA is there from the start);
    shards already done by an earlier run are taken off the total, so rate and ETA count new work."""

    def __init__(self, total: int, enabled: bool | None) -> None:
        tqdm = need("tqdm", "batch").tqdm
        self.bar = tqdm(
            total=total, unit="B", unit_scale=True, file=sys.stderr, dynamic_ncols=True,
            disable=None if enabled is None else not enabled, leave=True,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]",
        )
        self.pairs, self.started = 0, time.monotonic()

    def skip(self, size: int) -> None:
        self.bar.total -= size
        self.bar.refresh()

    def advance(self, size: int, pairs: int) -> None:
        self.pairs += pairs
        rate = self.pairs / max(time.monotonic() - self.started, 1e-9)
        self.bar.set_postfix_str(f"{self.pairs:,} pairs, {rate:,.0f} pairs/s", refresh=False)
        self.bar.update(size)

    def close(self) -> None:
        self.bar.close()
