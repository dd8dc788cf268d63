"""Kernel ridge regression as the inner solver: the T → ∞ limit of the inner loop (KIP-style).

Inner gradient descent on Def. 2.1 converges (under Lemma 2.4's bound) to the ridge solution on
the distilled data, θ_∞ = (FᵀF + mλ_I I)⁻¹FᵀỸ = Fᵀ(FFᵀ + mλ_I I)⁻¹Ỹ. Predictions on real inputs
are then K_BS (K_SS + mλ_I I)⁻¹ Ỹ with K = FFᵀ — and any kernel can replace FFᵀ (Nguyen et al.,
*Dataset Meta-Learning from Kernel Ridge-Regression*). The outer loss of Def. 2.5 and the outer
loop are unchanged; η̃ and θ₀ play no part (every one of the Q entries holds the same loss).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxdistill._src.inner import InnerSolver
from jaxdistill._src.kernels import Kernel


class KernelRidge(InnerSolver):
    """Exact (kernel) ridge solve on the distilled set, selectable next to :class:`UnrolledGD`.

    Args:
      kernel: a :class:`Kernel` on the model's featurized inputs (raw inputs for the default
        :class:`LinearModel`); ``None`` uses the model's explicit features, K = Φ(X̃)Φ(X̃)ᵀ.
      jitter: added to the diagonal, relative to the mean diagonal of K_SS, for numerical safety
        when λ_I = 0.
    """

    def __init__(self, kernel: Kernel | None = None, jitter: float = 0.0):
        self.kernel = kernel
        self.jitter = float(jitter)

    def check(self, model):
        if self.kernel is None and not model.linear_in_params:
            raise ValueError(f"KernelRidge() without a kernel needs a model linear in θ; {model!r} is not. "
                             "Pass kernel=... (e.g. ReLUNTK()) or use UnrolledGD().")

    def _K(self, A, B):
        return A @ B.T if self.kernel is None else self.kernel.matrix(A, B)

    def predict(self, F, Y, lambda_inner, FB):
        """K_BS (K_SS + mλ_I I)⁻¹ Ỹ: predictions (b, d_out) of ridge on (F, Ỹ) at featurized FB."""
        m = F.shape[0]
        Kss = self._K(F, F)
        reg = m * lambda_inner + self.jitter * jnp.mean(jnp.diag(Kss))
        alpha = jnp.linalg.solve(Kss + reg * jnp.eye(m, dtype=F.dtype), Y)
        return self._K(FB, F) @ alpha

    def train(self, model, F, Y, eta, lambda_inner, theta0, num_steps, max_steps):
        if self.kernel is not None:
            raise NotImplementedError("A kernel without explicit features has no parameter vector θ; "
                                      "use KernelRidge.predict.")
        m = F.shape[0]
        return F.T @ jnp.linalg.solve(F @ F.T + m * lambda_inner * jnp.eye(m, dtype=F.dtype), Y)

    def data_losses(self, model, F, Y, eta, lambda_inner, theta0s, FB, YB, num_steps, max_steps):
        pred = self.predict(F, Y, lambda_inner, FB)
        loss = 0.5 / FB.shape[0] * jnp.sum((pred - YB) ** 2)
        return jnp.broadcast_to(loss, (jax.tree_util.tree_leaves(theta0s)[0].shape[0],))

    def __repr__(self):
        return f"KernelRidge(kernel={self.kernel!r})"
