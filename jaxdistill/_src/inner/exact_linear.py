"""Exact, T-independent inner solver for models linear in θ with a fixed feature map.

With F = Φ(X̃) (m, p), A = FᵀF, B = FᵀỸ, β = 1 − η̃λ_I, γ = η̃/m, M = βI_p − γA, T inner steps of
gradient descent give exactly (corrected eq. 4, the errata on the docs' papers page)

    θ_T = M^T θ₀ + γ Σ_{k<T} M^k B.                                            (p-form)

By push-through, M Fᵀ = Fᵀ N with N = βI_m − γFFᵀ, so equivalently

    θ_T = β^T θ₀ − γ Fᵀ F_T F θ₀ + γ Fᵀ S_T Ỹ,                                  (m-form)
    S_T = Σ_{k<T} N^k,   F_T = Σ_{k<T} β^{T−1−k} N^k.

Two ways to the matrix series, both independent of T (which may be a traced value), picked by r = min(m, p):

- binary doubling — S_{a+b} = S_a + N^a S_b, F_{a+b} = β^b F_a + N^a F_b — about 5·⌈log₂ T⌉ r × r matmuls,
  differentiated by autodiff: cheapest for small r;
- one eigendecomposition of the r × r Gram matrix, the series applied to its eigenvalues, and the Daleckii–Krein
  derivative (`jaxdistill._src.inner.spectral`; exact at repeated eigenvalues, where autodiff through ``eigh``
  divides by zero): cheapest from r ≈ ``SPECTRAL_FROM`` (``benchmarks/results/fast_path.md``).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxdistill._src.inner.base import AffineSolution, InnerSolver
from jaxdistill._src.inner.spectral import doubling, spectral_apply

#: r = min(m, p) from which ``method="auto"`` takes one eigendecomposition instead of doubling (measured on 2 CPU
#: cores: benchmarks/results/fast_path.md)
SPECTRAL_FROM = 64


class ExactLinearGD(InnerSolver):
    r"""θ_T of T inner GD steps in closed form by doubling; the fast path for linear-in-θ models.

    Gives the same θ_T, outer loss and meta-gradient as [`UnrolledGD`][jaxdistill.UnrolledGD] (to rounding) at a cost
    O(r³ log T + r·(m + p)·Q) with r = min(m, p), flat in T. Picks the p×p form when p ≤ m and the
    m×m push-through form otherwise. Its meta-gradient is autodiff through the closed form. With A = Φ(X̃)ᵀΦ(X̃),
    B = Φ(X̃)ᵀỸ, β = 1 − η̃λ_I, γ = η̃/m and M = βI − γA (the regression paper's A.4, corrected: its eq. (4) is wrong),

    $$
    \theta_T = M^T\theta_0 + \gamma\sum_{k=0}^{T-1} M^k B
             = M^T\theta_0 + (A + m\lambda_I I)^{-1}(I - M^T)\,B .
    $$

    The matrix series come from binary doubling (about 5·⌈log₂ T⌉ r × r products) or, from r = ``SPECTRAL_FROM``,
    from one eigendecomposition of the r × r Gram matrix with the Daleckii–Krein derivative, which stays exact at
    repeated eigenvalues (both tested against the scan in float64).

    Args:
      expectation: shorthand kept from 0.1: distil with the objective
        [`ExpectedBatchLoss`][jaxdistill.ExpectedBatchLoss] (the analytic expectation over θ₀ ~ N(0, σ²I), Q → ∞).
      method: ``"auto"`` (by r, as above), ``"doubling"`` or ``"eigh"``; the result is the same to rounding.
    """

    def __init__(self, expectation: bool = False, method: str = "auto"):
        if method not in ("auto", "doubling", "eigh"):
            raise ValueError(f"ExactLinearGD(method={method!r}): use 'auto', 'doubling' or 'eigh'.")
        self.expectation = bool(expectation)
        self.method = method

    def uses_eigh(self, r: int) -> bool:
        """Whether the series of an r × r Gram matrix come from one eigendecomposition (else from doubling)."""
        return self.method == "eigh" or (self.method == "auto" and r >= SPECTRAL_FROM)

    def check(self, model):
        if not model.linear_in_params:
            raise ValueError(f"ExactLinearGD needs a model linear in θ (e.g. LinearModel); {model!r} is not. "
                             "Use inner_solver=UnrolledGD() for nonlinear models.")

    def solve(self, model, support, theta0s, num_steps, max_steps):
        F, Y, eta, lambda_inner = support
        m, p = F.shape
        beta = 1.0 - eta * lambda_inner
        gamma = eta / m
        bits = max(1, int(max_steps).bit_length())
        if self.uses_eigh(min(m, p)):
            return self._solve_spectral(F, Y, eta, lambda_inner, theta0s, num_steps, bits)
        if p <= m:
            M = beta * jnp.eye(p, dtype=F.dtype) - gamma * (F.T @ F)
            MT, S, _, _ = doubling(M, beta, num_steps, bits, weighted=False)
            return AffineSolution(lambda th: MT @ th, gamma * (S @ (F.T @ Y)), theta0s)
        N = beta * jnp.eye(m, dtype=F.dtype) - gamma * (F @ F.T)
        _, S, FT, bT = doubling(N, beta, num_steps, bits)
        return AffineSolution(lambda th: bT * th - gamma * (F.T @ (FT @ (F @ th))), gamma * (F.T @ (S @ Y)), theta0s)

    @staticmethod
    def _solve_spectral(F, Y, eta, lambda_inner, theta0s, num_steps, bits):
        """The p-form or m-form above with the series from one eigendecomposition (`spectral_apply`)."""
        m, p = F.shape
        a = jnp.asarray(eta * lambda_inner, F.dtype)
        gamma = jnp.asarray(eta / m, F.dtype)
        if p <= m:
            A = F.T @ F
            return AffineSolution(lambda th: spectral_apply(A, a, gamma, num_steps, th, bits, "power"),
                                  gamma * spectral_apply(A, a, gamma, num_steps, F.T @ Y, bits, "sum"), theta0s)
        K = F @ F.T
        beta = 1.0 - a
        bT = doubling(beta, beta, num_steps, bits, False, elementwise=True)[3]
        return AffineSolution(
            lambda th: bT * th - gamma * (F.T @ spectral_apply(K, a, gamma, num_steps, F @ th, bits, "weighted")),
            gamma * (F.T @ spectral_apply(K, a, gamma, num_steps, Y, bits, "sum")), theta0s)
