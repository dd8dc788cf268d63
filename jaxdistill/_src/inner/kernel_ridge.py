"""Kernel ridge regression as the inner solver: the T → ∞ limit of the inner loop (KIP-style).

Inner gradient descent on Def. 2.1 converges (under Lemma 2.4's bound) to the ridge solution on
the distilled data, θ_∞ = (FᵀF + mλ_I I)⁻¹FᵀỸ = Fᵀ(FFᵀ + mλ_I I)⁻¹Ỹ. Predictions on real inputs
are then K_BS (K_SS + mλ_I I)⁻¹ Ỹ with K = FFᵀ — and any kernel can replace FFᵀ (Nguyen et al.,
*Dataset Meta-Learning from Kernel Ridge-Regression*). η̃ and θ₀ play no part.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxdistill._src.components.kernels import Kernel
from jaxdistill._src.core.linalg import psd_solve
from jaxdistill._src.core.validate import check_float
from jaxdistill._src.inner.base import InnerSolver, KernelSolution


class KernelRidge(InnerSolver):
    """Exact (kernel) ridge solve on the distilled set, selectable next to [`UnrolledGD`][jaxdistill.UnrolledGD].

    The system (K_SS + mλ_I I)α = Ỹ is solved as a PSD system (Cholesky; with λ_I = 0 and no jitter the
    Hermitian pseudo-inverse, i.e. the minimum-norm interpolant even when K_SS is singular).

    Args:
      kernel: a [`Kernel`][jaxdistill.Kernel] on the model's featurized inputs (raw inputs for the default
        [`LinearModel`][jaxdistill.LinearModel]); ``None`` uses the model's explicit features, K = Φ(X̃)Φ(X̃)ᵀ.
      jitter: added to the diagonal, relative to the mean diagonal of K_SS.
    """

    uses_eta = False
    uses_theta0 = False

    def __init__(self, kernel: Kernel | None = None, jitter: float = 0.0):
        if kernel is not None and not isinstance(kernel, Kernel):
            raise ValueError(f"kernel must be a jaxdistill.Kernel (e.g. RBF(), ReLUNTK()), got {kernel!r}.")
        self.kernel = kernel
        self.jitter = check_float("jitter", jitter, lo=0.0)

    def check(self, model):
        if self.kernel is None and not model.linear_in_params:
            raise ValueError(f"KernelRidge() without a kernel needs a model linear in θ; {model!r} is not. "
                             "Pass kernel=... (e.g. ReLUNTK()) or use UnrolledGD().")

    def _K(self, A, B):
        return A @ B.T if self.kernel is None else self.kernel.matrix(A, B)

    def solve(self, model, support, theta0s, num_steps, max_steps):
        F, Y, lambda_inner = support.F, support.Y, support.lambda_inner      # an exact solve: no η̃, no steps
        m = F.shape[0]
        Kss = self._K(F, F)
        reg = m * lambda_inner
        if self.jitter:
            reg = reg + self.jitter * jnp.mean(jnp.diag(Kss))
        alpha = psd_solve(Kss, Y, reg)
        num = jax.tree_util.tree_leaves(theta0s)[0].shape[0]
        sol = KernelSolution(self._K, F, alpha, num)
        if self.kernel is None:
            sol.thetas = jnp.broadcast_to(F.T @ alpha, (num, F.shape[1], Y.shape[1]))
        return sol

    def describe(self, T, eta) -> str:
        return "exact ridge (T → ∞)" if self.kernel is None else f"exact kernel ridge, {self.kernel!r}"
