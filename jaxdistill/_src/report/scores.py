"""Held-out scores, one formula for every row of an evaluation (the baselines' and the other learners')."""

from __future__ import annotations

import numpy as np


def scores(pred, Y) -> tuple[float, float]:
    """MSE (mean over rows and outputs) and R² = 1 − SSE/SST (pooled over outputs; NaN if SST = 0)."""
    sse = np.sum((pred - Y) ** 2)
    sst = np.sum((Y - Y.mean(axis=0)) ** 2)
    return sse / Y.size, (1.0 - sse / sst) if sst > 0 else float("nan")
