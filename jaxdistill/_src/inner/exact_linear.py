"""Exact, T-independent inner solver for models linear in θ with a fixed feature map.

With F = Φ(X̃) (m, p), A = FᵀF, B = FᵀỸ, β = 1 − η̃λ_I, γ = η̃/m, M = βI_p − γA, T inner steps of
gradient descent give exactly (corrected eq. 4, the errata on the docs' papers page)

    θ_T = M^T θ₀ + γ Σ_{k<T} M^k B.                                            (p-form)

By push-through, M Fᵀ = Fᵀ N with N = βI_m − γFFᵀ, so equivalently

    θ_T = β^T θ₀ − γ Fᵀ F_T F θ₀ + γ Fᵀ S_T Ỹ,                                  (m-form)
    S_T = Σ_{k<T} N^k,   F_T = Σ_{k<T} β^{T−1−k} N^k.

Both matrix series follow from binary doubling — S_{a+b} = S_a + N^a S_b,
F_{a+b} = β^b F_a + N^a F_b — in O(r³ log T) with r = min(m, p), independently of T (which may be
a traced value). The work is a handful of matmuls, differentiated by autodiff; no
eigendecomposition (their gradients break at repeated eigenvalues).
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxdistill._src.inner.base import AffineSolution, InnerSolver


def doubling(N: jnp.ndarray, beta, T, num_bits: int, weighted: bool = True):
    """Return (N^T, Σ_{k<T} N^k, Σ_{k<T} β^{T−1−k} N^k, β^T) for integer 0 ≤ T < 2**num_bits.

    ``T`` may be traced; every bit is processed and selected with ``where`` so shapes are static.
    With ``weighted=False`` the third output is not computed (returned as ``None``).
    """
    eye = jnp.eye(N.shape[0], dtype=N.dtype)
    T = jnp.asarray(T, jnp.int32)
    beta = jnp.asarray(beta, N.dtype)
    # Accumulated block of length a (initially 0) and the current power-of-two block of length 2^j.
    P, S, F, bp = eye, jnp.zeros_like(N), jnp.zeros_like(N), jnp.ones((), N.dtype)
    Pb, Sb, Fb, bb = N, eye, eye, beta
    for j in range(num_bits):
        take = ((T >> j) & 1) == 1
        S = jnp.where(take, S + P @ Sb, S)
        if weighted:
            F = jnp.where(take, bb * F + P @ Fb, F)
        P, bp = jnp.where(take, P @ Pb, P), jnp.where(take, bp * bb, bp)
        if j + 1 < num_bits:
            Sb = Sb + Pb @ Sb
            if weighted:
                Fb = bb * Fb + Pb @ Fb
            Pb, bb = Pb @ Pb, bb * bb
    return P, S, (F if weighted else None), bp


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

    Args:
      expectation: shorthand kept from 0.1: distil with the objective
        [`ExpectedBatchLoss`][jaxdistill.ExpectedBatchLoss] (the analytic expectation over θ₀ ~ N(0, σ²I), Q → ∞).
    """

    def __init__(self, expectation: bool = False):
        self.expectation = bool(expectation)

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
        if p <= m:
            M = beta * jnp.eye(p, dtype=F.dtype) - gamma * (F.T @ F)
            MT, S, _, _ = doubling(M, beta, num_steps, bits, weighted=False)
            return AffineSolution(lambda th: MT @ th, gamma * (S @ (F.T @ Y)), theta0s)
        N = beta * jnp.eye(m, dtype=F.dtype) - gamma * (F @ F.T)
        _, S, FT, bT = doubling(N, beta, num_steps, bits)
        return AffineSolution(lambda th: bT * th - gamma * (F.T @ (FT @ (F @ th))), gamma * (F.T @ (S @ Y)), theta0s)
