"""The shared budget's promise as a check: how far a list of send times goes past it."""

from __future__ import annotations

from cognigy_webhooks.budget import Budget


def excess(sends: list[float], budget: Budget) -> float:
    """The most requests any window [a, b] of ``sends`` holds beyond ``burst + (b - a) / interval``
    (0 when the budget was kept)."""
    ordered = sorted(sends)
    worst = 0.0
    for i, first in enumerate(ordered):
        for j in range(i, len(ordered)):
            worst = max(worst, (j - i + 1) - (budget.burst + (ordered[j] - first) / budget.interval))
    return worst
