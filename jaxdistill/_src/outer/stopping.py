"""When a run ends and which state it returns: a stopping rule on the monitored loss, the best state,
and the run's status.

At every evaluation (every ``eval_every`` steps) the driver feeds the monitored loss — the training
objective from fixed θ₀ draws on fixed rows (the default), or the held-out loss (``monitor="held_out"``),
see :func:`~jaxdistill._src.outer.driver.monitor_mode` — to a :class:`Tracker`:

* it keeps the **best** parameters seen (lowest monitored loss, the initial set included), which is
  what the run returns when ``config.restore_best`` is set;
* **converged**: the best loss has not improved by a relative ``min_improvement`` for ``patience``
  evaluations in a row (``patience=None`` never stops early: ``steps`` is then the only end);
* **nonfinite**: the monitored loss is NaN/inf (the trained model's predictions are); the run stops;
* **diverged**: the monitored loss rose above ``divergence_factor`` × the best so far (a finite
  blow-up: a too large outer step, or T too long for its η̃); the run stops at once.

Statuses (:data:`STATUSES`): ``converged``; ``budget`` (all ``steps`` done while still improving —
raise ``steps`` for more); ``diverged``; ``no_progress`` (never better than the initial set);
``unstable`` (η̃ crossed the stability bound at some step); ``nonfinite`` (non-finite steps that
halving η̃ did not cure, or a non-finite monitored loss); ``exact`` for closed-form results (``distill_analytic``). Only
``converged``, ``budget`` and ``exact`` are successes (:data:`SUCCESS`).
The tracker is plain host-side Python with a dict-of-arrays form, saved in checkpoints, so a resumed
run makes the same decisions as an uninterrupted one.
"""

from __future__ import annotations

import numpy as np

STATUSES = ("converged", "budget", "exact", "diverged", "no_progress", "unstable", "nonfinite")
SUCCESS = ("converged", "budget", "exact")
#: statuses written by jaxdistill 0.2.0 files, still readable
LEGACY_STATUSES = ("success",)

_WHY = {
    "diverged": "the monitored loss rose above divergence_factor × its best value: lower lr_x / lr_y / lr_eta "
                "(or T), or use an adaptive optimizer",
    "no_progress": "the distilled set never beat its initial value: raise lr_x / lr_y or steps",
    "unstable": "η̃ crossed the stability bound of Lemma 2.4: keep eta_cap set (default 0.9)",
    "nonfinite": "a step met a non-finite loss or gradient: lower lr_x / lr_y / lr_eta or inner_lr, "
                 "or standardise the data (standardize=True)",
}


def advice(status: str) -> str:
    """What a failed status means and what to change."""
    return _WHY.get(status, "")


class Tracker:
    """Best state, patience counter and stop decision over the evaluations of one run."""

    def __init__(self, patience: int | None, min_improvement: float, divergence_factor: float):
        self.patience, self.min_improvement, self.divergence_factor = patience, min_improvement, divergence_factor
        self.best_value = np.inf
        self.best_step = -1
        self.best_params: tuple[np.ndarray, ...] | None = None
        self.since_best = 0
        self.stopped = ""          # "", "converged", "diverged" or "nonfinite"

    def update(self, step: int, value: float, params) -> None:
        """Record the monitored loss after ``step`` steps, with the parameters it belongs to."""
        if value is None:
            return
        if not np.isfinite(value):   # e.g. the inner loop diverges at evaluation: never a success
            self.stopped = "nonfinite"
            return
        if value > self.divergence_factor * self.best_value:
            self.stopped = "diverged"
            return
        if self.best_params is None or value < self.best_value * (1.0 - self.min_improvement):
            self.since_best = 0
        else:
            self.since_best += 1
        if value < self.best_value:
            self.best_value, self.best_step = float(value), int(step)
            self.best_params = tuple(np.array(a) for a in params)
        if self.patience is not None and self.since_best >= self.patience:
            self.stopped = "converged"

    def status(self, failed: bool, crossed_bound: bool) -> str:
        if failed or self.stopped == "nonfinite":
            return "nonfinite"
        if self.stopped == "diverged":
            return "diverged"
        if crossed_bound:
            return "unstable"
        if self.best_step == 0 and self.best_params is not None:
            return "no_progress"
        return self.stopped or "budget"

    # ---------------------------------------------------------------- checkpoints
    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {"best_value": np.float64(self.best_value), "best_step": np.int64(self.best_step),
               "since_best": np.int64(self.since_best), "stopped": np.str_(self.stopped)}
        for i, a in enumerate(self.best_params or ()):
            out[f"best_param_{i}"] = a
        return out

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.best_value = float(arrays["best_value"])
        self.best_step = int(arrays["best_step"])
        self.since_best = int(arrays["since_best"])
        self.stopped = str(arrays["stopped"])
        params = [arrays[k] for k in sorted(k for k in arrays if k.startswith("best_param_"))]
        self.best_params = tuple(params) if params else None
