"""The problem: what is distilled — the inner model, λ_I, λ_O and the outer objective.

A [`Problem`][jaxdistill.Problem] is an immutable pytree (its model's weights are leaves), passed to the compiled
outer step; the real data it is posed on come separately as a `TrainData` (host side, so the
data may be larger than device memory; batches are sent per compiled chunk).
"""

from __future__ import annotations

import numpy as np

from jaxdistill._src.components.models import InnerModel, LinearModel
from jaxdistill._src.core.component import Component
from jaxdistill._src.core.validate import check_float
from jaxdistill._src.problem.objectives import BatchLoss, Objective


class Problem(Component):
    """Inner model f_θ, inner and outer ridge penalties, and the outer objective.

    Args:
      model: the inner model (default [`LinearModel`][jaxdistill.LinearModel], identity features).
      lambda_inner: λ_I of the inner loss (Def. 2.1).
      lambda_outer: λ_O of the outer loss (Def. 2.5).
      objective: the outer objective (default [`BatchLoss`][jaxdistill.BatchLoss], Def. 2.5 on sampled batches).
      x_keep: optional (d,) array, 0 for the input columns that were constant over the training rows and 1 for the
        others: the outer step keeps those columns of X̃ at 0 (their training value, standardised), so that a column
        the data never varied can carry no weight in the distilled set (``distill`` sets it; None: no such column).
    """

    def __init__(self, model: InnerModel | None = None, lambda_inner: float = 1e-3, lambda_outer: float = 1e-3,
                 objective: Objective | None = None, x_keep=None):
        self.model = LinearModel() if model is None else model
        if not isinstance(self.model, InnerModel):
            raise ValueError(f"model must be a jaxdistill InnerModel (LinearModel, FlaxModel, or a subclass), "
                             f"got {type(model).__name__}.")
        self.objective = BatchLoss() if objective is None else objective
        if not isinstance(self.objective, Objective):
            raise ValueError(f"objective must be a jaxdistill Objective, got {type(objective).__name__}.")
        lam = check_float("lambda_inner", lambda_inner, lo=0.0)
        # λ_I > 0 is a leaf (a new value, e.g. one chosen by lambda_inner="auto" on other rows, reuses the compiled
        # step); exactly 0 stays a static setting because it selects another solve (the pseudo-inverse)
        self.lambda_inner = np.float64(lam) if lam > 0 else 0.0
        self.lambda_outer = check_float("lambda_outer", lambda_outer, lo=0.0)
        # a leaf where there are constant columns (other masks reuse the program); None changes nothing elsewhere
        self.x_keep = None if x_keep is None else np.asarray(x_keep, np.float64)
