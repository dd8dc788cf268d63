"""Outer objectives: how a trained inner solution is scored on real data (the data term of Def. 2.5).

The data term is written once here; the λ_O penalty and the reduction over the Q initialisations
are applied once, in the outer step. A new objective is a subclass with one method,
[`Objective.data_losses`][jaxdistill.Objective.data_losses]; inner solvers are untouched.

* [`BatchLoss`][jaxdistill.BatchLoss] — Def. 2.5 on a sampled batch: 1/(2b)‖f_{θ_T}(X_B) − Y_B‖² for each θ₀;
* [`ExpectedBatchLoss`][jaxdistill.ExpectedBatchLoss] — its exact expectation over θ₀ ~ N(0, σ²I) for affine solutions
  (linear models, gradient descent): E‖X_Bθ_T − Y_B‖² = ‖X_B D_T − Y_B‖² + σ² d_out ‖X_B M^T‖_F²
  (the errata on the docs' papers page); Q → ∞ with no sampling noise.
"""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp

from jaxdistill._src.components.models import InnerModel
from jaxdistill._src.core.component import Component
from jaxdistill._src.inner.base import AffineSolution, Solution
from jaxdistill._src.inner.exact_linear import ExactLinearGD


class Objective(Component):
    """Maps a solution and real data to the per-initialisation outer data losses, shape (Q,).

    ``needs_batch``: whether `data_losses` reads the sampled batch (False for objectives that
    carry their data, e.g. [`FullDataLoss`][jaxdistill.FullDataLoss]; the driver then sends none).
    """

    needs_batch = True

    @abc.abstractmethod
    def data_losses(self, solution: Solution, model: InnerModel, FB: jax.Array, YB: jax.Array) -> jax.Array:
        """Data term for each θ₀ on featurized real inputs FB (b, p) and targets YB (b, d_out)."""

    def check(self, model: InnerModel, inner_solver) -> None:
        """Raise ``ValueError`` if this objective cannot be used with ``model`` / ``inner_solver``."""
        return None

    def bind(self, model: InnerModel, data) -> Objective:
        """This objective prepared for a run on ``data`` (a ``TrainData``); most need nothing."""
        return self

    def row_objective(self) -> Objective:
        """The objective that scores explicit rows (used for the held-out loss)."""
        return self


class BatchLoss(Objective):
    r"""Def. 2.5's data term on a batch of real pairs: 1/(2b)‖f_{θ_T}(X_B) − Y_B‖² per θ₀,

    $$
    L_{\text{data}} = \frac{1}{2b}\lVert f_{\theta_T}(X_B) - Y_B\rVert^2 .
    $$
    """

    def data_losses(self, solution, model, FB, YB):
        pred = solution.predict(FB)                                       # (Q, b, d_out)
        return 0.5 / FB.shape[0] * jnp.sum((pred - YB[None]) ** 2, axis=(1, 2))


class ExpectedBatchLoss(Objective):
    """Exact E over θ₀ ~ N(0, σ²I) of [`BatchLoss`][jaxdistill.BatchLoss] for affine solutions (every entry the
    same)."""

    def check(self, model, inner_solver):
        if not model.linear_in_params or not hasattr(model, "init_scale"):
            raise ValueError("ExpectedBatchLoss needs a LinearModel (Gaussian θ₀ with an init_scale).")
        if not isinstance(inner_solver, ExactLinearGD):
            raise ValueError("ExpectedBatchLoss needs inner_solver=ExactLinearGD() (an affine solution in θ₀).")

    def data_losses(self, solution, model, FB, YB):
        if not isinstance(solution, AffineSolution):
            raise ValueError("ExpectedBatchLoss needs an affine inner solution (ExactLinearGD).")
        b = FB.shape[0]
        mean_resid = FB @ solution.D - YB
        XMT = solution.apply_MT(FB.T)          # (M^T X_Bᵀ); M^T is symmetric (a polynomial in A)
        var = model.init_scale ** 2 * YB.shape[1] * jnp.sum(XMT ** 2)
        loss = 0.5 / b * (jnp.sum(mean_resid ** 2) + var)
        return jnp.broadcast_to(loss, (solution.theta0s.shape[0],))
